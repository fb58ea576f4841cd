"""``import_history --from litellm``: LiteLLM_SpendLogs as calls, mapped by the live
integration, so imported history and live calls of one key land on one key."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import psycopg
import pytest
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from accounts.models import Account, ApiKey, Source
from logs.integrations.litellm import NO_TEAM_NAME, ingest_litellm
from logs.models import CallPayload, CallRecord, DailyCallRollup
from tests.logs.imports.sources import (
    LITELLM_COLUMNS,
    LITELLM_POSTGRES_DDL,
    litellm_as_text,
    litellm_rows,
    litellm_sums,
    write_jsonl,
    write_litellm_sqlite,
)
from tests.logs.imports.test_newapi import run

pytestmark = pytest.mark.django_db


def stored_sums() -> dict:
    sums: dict = defaultdict(Counter)
    for row in (
        CallRecord.objects.annotate(day=TruncDate("created_at", tzinfo=None))
        .values("day", "model", "api_key__external_id")
        .annotate(
            calls=Count("id"),
            input=Sum("input_tokens"),
            output=Sum("output_tokens"),
            cost=Sum("cost"),
        )
    ):
        slot = sums[(row["day"], row["model"], row["api_key__external_id"])]
        slot.update(
            calls=row["calls"],
            input_tokens=row["input"],
            output_tokens=row["output"],
            cost=row["cost"],
        )
    return dict(sums)


def rollup_sums() -> dict:
    sums: dict = defaultdict(Counter)
    for row in DailyCallRollup.objects.values(
        "day", "model", "api_key__external_id", "calls", "input_tokens", "output_tokens", "cost"
    ):
        slot = sums[(row["day"].date(), row["model"], row["api_key__external_id"])]
        for name in ("calls", "input_tokens", "output_tokens", "cost"):
            slot[name] += row[name]
    return dict(sums)


def test_a_spend_logs_dump_adds_up_to_what_litellm_counted(tmp_path):
    rows = litellm_rows(300)
    path = write_litellm_sqlite(tmp_path / "litellm.db", rows)

    out, _, error = run("--from", "litellm", str(path), "--batch-size", "64")

    assert error is None, error
    assert f"Done: {len(rows)} imported, 0 already present, 0 skipped, 0 refused." in out
    assert stored_sums() == litellm_sums(rows)
    assert rollup_sums() == litellm_sums(rows)


def test_each_column_lands_where_the_live_integration_puts_it(tmp_path):
    rows = litellm_rows(60)
    write_jsonl(tmp_path / "spend.jsonl", [litellm_as_text(r) for r in rows])
    run("--from", "litellm", str(tmp_path / "spend.jsonl"))

    row = next(r for r in rows if r["team_id"] and r["end_user"] and r["request_tags"])
    call = CallRecord.objects.get(request_id=row["request_id"])
    assert call.account.source == Source.LITELLM
    assert call.account.external_id == row["team_id"]
    assert call.account.name == row["metadata"]["user_api_key_team_alias"]
    assert call.api_key.external_id == row["api_key"]
    assert call.api_key.secret_hash == row["api_key"]
    assert call.api_key.name == row["metadata"]["user_api_key_alias"]
    assert call.model == row["model_group"]
    assert call.usage == 0
    assert call.duration_ms == round((row["endTime"] - row["startTime"]).total_seconds() * 1000)
    assert call.end_user == row["end_user"]
    assert call.tags == ["prod", "batch"]
    assert call.client_ip == row["requester_ip_address"]
    streamed = next(r for r in rows if r["completionStartTime"] < r["endTime"])
    call = CallRecord.objects.get(request_id=streamed["request_id"])
    assert call.is_stream
    expected_ttft = (streamed["completionStartTime"] - streamed["startTime"]).total_seconds()
    assert call.ttft_ms == round(expected_ttft * 1000)

    failed = next(r for r in rows if r["status"] == "failure")
    call = CallRecord.objects.get(request_id=failed["request_id"])
    assert call.status_code == 429
    assert call.error_reason == "litellm.RateLimitError: too many requests"
    detail = json.loads(CallPayload.objects.get(call=call).error_detail)
    assert detail["error_class"] == "RateLimitError"

    no_team = next(r for r in rows if r["team_id"] is None)
    call = CallRecord.objects.get(request_id=no_team["request_id"])
    assert call.account.name == NO_TEAM_NAME


def test_live_and_imported_calls_of_one_key_land_on_one_key(tmp_path):
    rows = litellm_rows(20)
    live = rows[0]
    assert live["team_id"] is not None
    # The proxy posted this call live: the payload its generic_api logger sends.
    ingest_litellm(
        [
            {
                "id": live["request_id"],
                "call_type": "acompletion",
                "stream": False,
                "status": "success",
                "startTime": live["startTime"].timestamp(),
                "endTime": live["endTime"].timestamp(),
                "model": live["model"],
                "model_group": live["model_group"],
                "custom_llm_provider": "openai",
                "api_base": live["api_base"],
                "prompt_tokens": live["prompt_tokens"],
                "completion_tokens": live["completion_tokens"],
                "total_tokens": live["total_tokens"],
                "response_cost": live["spend"],
                "messages": [{"role": "user", "content": "hello"}],
                "response": {"choices": []},
                "metadata": {
                    "user_api_key_hash": live["api_key"],
                    "user_api_key_team_id": live["team_id"],
                    "user_api_key_alias": live["metadata"]["user_api_key_alias"],
                },
            }
        ]
    )
    path = write_litellm_sqlite(tmp_path / "litellm.db", rows)

    out, _, error = run("--from", "litellm", str(path))

    assert error is None, error
    assert f"Done: {len(rows) - 1} imported, 1 already present" in out
    assert ApiKey.objects.filter(external_id=live["api_key"]).count() == 1
    assert Account.objects.filter(source=Source.LITELLM, external_id=live["team_id"]).count() == 1
    key = ApiKey.objects.get(external_id=live["api_key"])
    assert CallRecord.objects.filter(api_key=key).count() == sum(
        1 for r in rows if r["api_key"] == live["api_key"]
    )
    # the live record, with its messages, is the one kept
    body = CallPayload.objects.get(call__request_id=live["request_id"]).request_body
    assert "hello" in body


def test_a_spend_log_without_a_key_hash_is_refused_by_that_column(tmp_path):
    rows = litellm_rows(10)
    rows[4]["api_key"] = ""
    path = write_litellm_sqlite(tmp_path / "litellm.db", rows)

    _, _, error = run("--from", "litellm", str(path))

    assert f"row {rows[4]['request_id']}: api_key: is required" in str(error)
    assert CallRecord.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_litellm_postgresql_database_is_read_by_url(tmp_path):
    from django.db import connection

    from tests.logs.imports.test_postgresql import _server_url

    name = f"{connection.settings_dict['NAME']}_litellm"
    with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _server_url(name)
    rows = litellm_rows(550)
    columns = ", ".join(f'"{c}"' for c in LITELLM_COLUMNS)

    def fill(batch):
        with (
            psycopg.connect(url) as source,
            source.cursor().copy(f'COPY "LiteLLM_SpendLogs" ({columns}) FROM STDIN') as copy,
        ):
            for row in batch:
                copy.write_row([litellm_as_text(row)[c] for c in LITELLM_COLUMNS])

    try:
        with psycopg.connect(url) as source:
            source.execute(LITELLM_POSTGRES_DDL)
        fill(rows[:500])

        out, _, error = run("--from", "litellm", url, "--batch-size", "100", "--workers", "2")

        assert error is None, error
        assert "Done: 500 imported" in out
        assert stored_sums() == litellm_sums(rows[:500])
        assert rollup_sums() == litellm_sums(rows[:500])

        # The proxy logged more calls since: the next run reads on from (startTime, request_id).
        fill(rows[500:])
        out, _, error = run("--from", "litellm", url)
        assert "Done: 50 imported, 0 already present" in out
        assert stored_sums() == litellm_sums(rows)
    finally:
        with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
