"""Helpers for the REST API tests: clients, tokens, and reading responses as a client does."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from rest_framework.test import APIClient

from accounts.services import create_access_token
from tests.factories import UserFactory, grant
from tests.pages import whole_export_rows

LIST_URL = "/api/v1/calls/"
EXPORT_URL = "/api/v1/calls/export/"
INGEST_URL = "/api/v1/calls/ingest/"
STATS_URL = "/api/v1/stats/"
ADMIN_EXPORT_URL = "/admin/logs/callrecord/export/"

# The query parameters every read endpoint filters by.
FILTER_PARAMETERS = (
    "start",
    "end",
    "model",
    "key_name",
    "group",
    "call_type",
    "status",
    "request_id",
    "account",
    "tag",
    "end_user",
    "last",
    "status_code",
    "slower_than_ms",
    "cost_above",
    "client_ip",
    "endpoint",
    "streamed",
)

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def detail_url(call_id: int) -> str:
    return f"{LIST_URL}{call_id}/"


def client() -> APIClient:
    """A client that answers server errors with their 500 response (never raises),
    so a test can assert on the status code like any HTTP client would."""
    return APIClient(raise_request_exception=False)


def session_client(user) -> APIClient:
    api = client()
    api.force_login(user)
    return api


def token_for(user, *, can_ingest: bool = False, name: str = "test token") -> str:
    return create_access_token(user=user, name=name, can_ingest=can_ingest).secret


def token_client(secret: str) -> APIClient:
    api = client()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def service_user(**fields):
    """A user that programs act as: the ingest permission and no account membership."""
    user = UserFactory(**fields)
    grant(user, "logs.ingest_callrecord")
    return user


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def csv_rows(response) -> list[list[str]]:
    """The rows of a complete export (the header first), the closing line checked and left off."""
    return whole_export_rows(body_of(response).decode("utf-8"))


def walk(api: APIClient, params: dict[str, Any] | None = None, *, page_size: int = 1000):
    """Every row of the list for ``params``, following next links."""
    response = api.get(LIST_URL, {**(params or {}), "page_size": page_size})
    assert response.status_code == 200, response.content
    rows = list(response.json()["results"])
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        assert response.status_code == 200, response.content
        rows.extend(response.json()["results"])
    return rows


def request_ids(rows: Iterable[dict]) -> list[str]:
    return [row["request_id"] for row in rows]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the CSV writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def escaped(value: str) -> str:
    """What a CSV cell must hold so a spreadsheet does not run it as a formula."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def expected_csv_cells(row: dict) -> list[str]:
    """The CSV cells of a call, derived from how the list API shows it."""
    return [
        str(row["id"]),
        escaped(row["request_id"]),
        utc_z(parse_time(row["created_at"])),
        escaped(row["account_name"]),
        escaped(row["key_name"]),
        escaped(row["key_prefix"]),
        escaped(row["group"]),
        row["call_type"],
        escaped(row["model"]),
        escaped(row["endpoint"]),
        "yes" if row["stream"] else "no",
        str(row["status_code"]),
        escaped(row["error_reason"]),
        str(row["duration_ms"]),
        "" if row["ttft_ms"] is None else str(row["ttft_ms"]),
        str(row["input_tokens"]),
        str(row["output_tokens"]),
        str(row["total_tokens"]),
        str(row["cached_input_tokens"]),
        str(row["cache_write_tokens"]),
        str(row["reasoning_tokens"]),
        row["usage"],
        row["cost"],
        escaped(row["end_user"]),
        json.dumps(row["tags"], ensure_ascii=False) if row["tags"] else "",
    ]


def json_body(records: Any) -> str:
    return json.dumps(records)


def decimal(text: str) -> Decimal:
    return Decimal(text)


PLUS_0530 = timezone(timedelta(hours=5, minutes=30))
MINUS_0800 = timezone(timedelta(hours=-8))


def iso_in(moment: datetime, zone=UTC, *, offset: timedelta = timedelta(0)) -> str:
    """``moment`` (plus ``offset``) as ISO 8601 in ``zone``."""
    return (moment + offset).astimezone(zone).isoformat()
