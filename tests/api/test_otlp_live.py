"""The real OpenTelemetry SDK exporting GenAI spans over OTLP/HTTP to a running
server (pytest-django's ``live_server``): what support staff then see in the
admin and the API, and what each account's owner sees in the portal."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from logs.models import CallPayload, CallRecord, HourlyCallRollup
from tests.api.helpers import session_client, walk
from tests.factories import (
    OMIT,
    GenAiSpan,
    chat_span,
    genai_spans,
    otlp_json,
    start_spans,
)
from tests.pages import detail_fields, payload_parts, result_rows

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/integrations/otlp"  # an exporter's endpoint; it appends /v1/traces


def exporter_for(live_server, token: str, **options) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{live_server.url}{PATH}/v1/traces",
        headers={"Authorization": f"Bearer {token}"},
        **options,
    )


@pytest.fixture
def provider(live_server, ingest_token):
    """A TracerProvider exporting in batches (protobuf, the SDK's default) to the server."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(BatchSpanProcessor(exporter_for(live_server, ingest_token)))
    yield provider
    provider.shutdown()


def otel_calls() -> list[CallRecord]:
    return list(
        CallRecord.objects.filter(request_id__startswith="otel-")
        .select_related("api_key", "account")
        .order_by("created_at")
    )


def stored() -> tuple[int, int, int]:
    return (
        CallRecord.objects.count(),
        CallPayload.objects.count(),
        HourlyCallRollup.objects.count(),
    )


def test_spans_of_two_accounts_show_up_for_staff_and_each_owner(
    provider, two_accounts, staff_user, clock
):
    a, b = two_accounts.a, two_accounts.b
    start = clock.now - timedelta(minutes=10)
    specs = [
        chat_span(a.key, **{"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 900}),
        chat_span(
            a.vip_key,
            **{
                "error.type": "RateLimitError",
                "gen_ai.usage.input_tokens": OMIT,
                "gen_ai.usage.output_tokens": OMIT,
                "usagelogs.cost": "0",
            },
        ),
        chat_span(
            b.key,
            **{
                "gen_ai.operation.name": "embeddings",
                "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.input_tokens": 512,
                "gen_ai.usage.output_tokens": OMIT,
                "usagelogs.cost": "0.00000512",
            },
        ),
        GenAiSpan({"http.request.method": "POST", "url.path": "/tickets"}, kind="SERVER"),
    ]
    for offset, spec in enumerate(specs):
        spec.start = start + timedelta(minutes=offset)
    specs[1].error = "Rate limit reached for gpt-4o-mini"
    start_spans(provider, *specs)
    assert provider.force_flush(10_000)

    calls = otel_calls()
    assert [(c.account_id, c.api_key_id, c.model, c.status_code) for c in calls] == [
        (a.account.pk, a.key.pk, "gpt-4o", 200),
        (a.account.pk, a.vip_key.pk, "gpt-4o-mini", 429),
        (b.account.pk, b.key.pk, "text-embedding-3-small", 200),
    ]

    # The API, as support staff read it.
    rows = {row["request_id"]: row for row in walk(session_client(staff_user))}
    first, failed, embedding = (rows[c.request_id] for c in calls)
    assert (first["input_tokens"], first["output_tokens"], first["cost"]) == (900, 30, "0.00012000")
    assert first["account_name"] == a.account.name and first["key_name"] == a.key.name
    assert (failed["status_code"], failed["error_reason"]) == (429, "RateLimitError")
    assert (embedding["call_type"], embedding["input_tokens"]) == ("embedding", 512)
    assert len(rows) == len(two_accounts.calls) + 3  # the non-GenAI span is not a call

    # The admin, as support staff read it.
    staff = Client()
    staff.force_login(staff_user)
    listed = result_rows(staff.get("/admin/logs/callrecord/", {"q": calls[0].request_id}))
    assert [(row["account"], row["key_name"], row["tokens"]) for row in listed] == [
        (a.account.name, a.key.name, "930 (900 / 30)")
    ]
    page = staff.get(f"/admin/logs/callrecord/{calls[1].pk}/change/")
    detail = detail_fields(page)
    assert (detail["status_code"], detail["error_reason"]) == ("429", "RateLimitError")
    assert detail["upstream"] == "openai"
    assert "Rate limit reached for gpt-4o-mini" in payload_parts(page)["error_detail"]

    # The portal, as each owner reads it: their own OpenTelemetry calls, no one else's.
    for world, mine in ((a, calls[:2]), (b, calls[2:])):
        owner = Client()
        owner.force_login(world.owner)
        page = owner.get("/portal/logs/callrecord/")
        assert page.status_code == 200
        shown = {call.request_id for call in page.context["cl"].result_list}
        assert {c.request_id for c in mine} <= shown
        assert not {c.request_id for c in calls if c not in mine} & shown
        # ... and through the API, with their own session.
        through_api = {row["request_id"] for row in walk(session_client(world.owner))}
        assert {c.request_id for c in calls} & through_api == {c.request_id for c in mine}


def test_a_replayed_batch_changes_nothing(live_server, ingest_token, api_key):
    spans = genai_spans(chat_span(api_key), chat_span(api_key))
    exporter = exporter_for(live_server, ingest_token)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    before = stored()
    assert before[0] == 2
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert stored() == before


def test_a_batch_with_a_bad_span_fails_and_writes_nothing(live_server, ingest_token, api_key):
    spans = genai_spans(chat_span(api_key), chat_span(api_key, **{"gen_ai.usage.input_tokens": -3}))
    exporter = exporter_for(live_server, ingest_token)
    assert exporter.export(spans) == SpanExportResult.FAILURE  # 400: not retried
    assert stored() == (0, 0, 0)


def test_the_documented_environment_variables(live_server, ingest_token, api_key, monkeypatch):
    """docs/integrations/opentelemetry.md: endpoint, headers and gzip from the environment."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{live_server.url}{PATH}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{ingest_token}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    exporter = OTLPSpanExporter()
    assert exporter.export(genai_spans(chat_span(api_key))) == SpanExportResult.SUCCESS
    assert [c.api_key_id for c in otel_calls()] == [api_key.pk]


def test_deflate_compression(live_server, ingest_token, api_key):
    exporter = exporter_for(live_server, ingest_token, compression=Compression.Deflate)
    assert exporter.export(genai_spans(chat_span(api_key))) == SpanExportResult.SUCCESS
    assert len(otel_calls()) == 1


def test_json_encoding_over_http(live_server, ingest_token, api_key):
    spans = genai_spans(chat_span(api_key, **{"usagelogs.cost": "0.5"}))
    request = urllib.request.Request(
        f"{live_server.url}{PATH}/v1/traces",
        data=json.dumps(otlp_json(spans)).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ingest_token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.read()) == {}  # full success: no partialSuccess
    (call,) = otel_calls()
    assert call.cost == Decimal("0.5")
    assert (
        call.request_id == f"otel-{spans[0].context.trace_id:032x}-{spans[0].context.span_id:016x}"
    )
