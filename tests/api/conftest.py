"""Fixtures of the REST API tests.

``catalog``: two accounts with calls at fixed times (so hour and day buckets,
ties on created_at, microseconds and partial hours are known in advance).
Initech (owner ``initech_owner``) has keys ``initech-prod`` (group default),
``initech-batch`` (vip) and ``ci`` (default); Umbrella has ``umbrella-main``
(default) and also a key named ``ci`` (vip). Calls are ingested through the
ingest service, like every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from accounts.models import Account, ApiKey
from logs.ingest.service import ingest_calls
from logs.models import CallRecord
from tests.api.helpers import service_user, token_for
from tests.factories import (
    OMIT,
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    owner_of,
    record_dict,
)


@pytest.fixture
def support(db):
    """Support staff (sees every account)."""
    return StaffUserFactory(username="api-support")


@pytest.fixture
def ingester(db):
    """A service user: the ingest permission, no account."""
    return service_user(username="gateway-bot")


@pytest.fixture
def ingest_token(ingester) -> str:
    return token_for(ingester, can_ingest=True, name="gateway")


@dataclass
class Catalog:
    initech: Account
    umbrella: Account
    initech_owner: Any
    umbrella_owner: Any
    keys: dict[str, ApiKey]
    records: dict[str, dict]  # request id -> the ingest record as sent
    calls: list[CallRecord] = field(default_factory=list)  # newest first

    def call(self, request_id: str) -> CallRecord:
        return next(c for c in self.calls if c.request_id == request_id)

    def ids(self, predicate=lambda call: True) -> list[str]:
        """Request ids of the calls that match, newest first (the API's order)."""
        return [call.request_id for call in self.calls if predicate(call)]


# (request id, created_at, key, overrides)
CATALOG_CALLS: list[tuple[str, str, str, dict]] = [
    ("cat-01", "2024-03-09T23:55:00+00:00", "initech-prod", {}),
    (
        "cat-02",
        "2024-03-10T09:50:00+00:00",
        "initech-prod",
        {"usage": "0.25", "cost": "0.00002"},
    ),
    (
        "cat-03",
        "2024-03-10T09:59:59.999999+00:00",
        "initech-batch",
        {
            "model": "gpt-4o",
            "status_code": 429,
            "error_reason": "rate_limit_exceeded",
            "duration_ms": 35,
            "ttft_ms": OMIT,
            "input_tokens": 0,
            "output_tokens": 0,
            "usage": "0",
            "cost": "0",
            "response": OMIT,
            "error": {"type": "rate_limit_exceeded", "message": "Slow down."},
        },
    ),
    (
        "cat-04",
        "2024-03-10T10:00:00+00:00",
        "initech-batch",
        {
            "model": "gpt-4o",
            "duration_ms": 4200,
            "ttft_ms": 300,
            "input_tokens": 2000,
            "output_tokens": 400,
            "usage": "1.125",
            "cost": "0.0031",
        },
    ),
    (
        "cat-05",
        "2024-03-10T10:00:00+00:00",
        "initech-prod",
        {
            "model": "text-embedding-3-small",
            "call_type": "embedding",
            "endpoint": "/v1/embeddings",
            "duration_ms": 120,
            "ttft_ms": OMIT,
            "input_tokens": 512,
            "output_tokens": 0,
            "usage": "0.01",
            "cost": "0.00000005",
        },
    ),
    (
        "cat-06",
        "2024-03-10T10:00:00+00:00",
        "umbrella-main",
        {
            "model": "gpt-4o",
            "status_code": 500,
            "error_reason": "internal_error",
            "duration_ms": 30000,
            "ttft_ms": OMIT,
            "input_tokens": 900,
            "output_tokens": 0,
            "usage": "0",
            "cost": "0",
        },
    ),
    (
        "cat-07",
        "2024-03-10T10:15:30.250000+00:00",
        "umbrella-main",
        {
            "model": "claude-3-5-sonnet",
            "stream": True,
            "duration_ms": 2500,
            "ttft_ms": 400,
            "input_tokens": 800,
            "output_tokens": 200,
            "usage": "2",
            "cost": "0.004",
            "upstream": "aws-us-east-1",
        },
    ),
    (
        "cat-08",
        "2024-03-10T10:45:00+00:00",
        "initech-ci",
        {
            "call_type": "completion",
            "status_code": 400,
            "error_reason": "invalid_request",
            "duration_ms": 60,
            "ttft_ms": OMIT,
            "input_tokens": 10,
            "output_tokens": 0,
            "usage": "0",
            "cost": "0",
        },
    ),
    (
        "cat-09",
        "2024-03-10T11:00:00+00:00",
        "umbrella-ci",
        {
            "call_type": "completion",
            "duration_ms": 900,
            "ttft_ms": OMIT,
            "input_tokens": 300,
            "output_tokens": 100,
            "usage": "0.3",
            "cost": "0.0003",
        },
    ),
    (
        "cat-10",
        "2024-03-10T11:30:00+00:00",
        "initech-batch",
        {
            "model": "gpt-4o",
            "call_type": "image",
            "status_code": 503,
            "error_reason": "upstream_unavailable",
            "duration_ms": 70000,
            "ttft_ms": OMIT,
            "input_tokens": 50,
            "output_tokens": 0,
            "usage": "0",
            "cost": "0",
        },
    ),
    (
        "cat-11",
        "2024-03-10T11:30:00+00:00",
        "initech-prod",
        {
            "duration_ms": 1000,
            "ttft_ms": 1000,
            "input_tokens": 10,
            "output_tokens": 5,
            "usage": "0.000001",
            "cost": "0.00000001",
        },
    ),
    (
        "cat-12",
        "2024-03-10T12:05:00+00:00",
        "umbrella-main",
        {
            "model": "claude-3-5-sonnet",
            "call_type": "rerank",
            "endpoint": "/v1/rerank",
            "duration_ms": 300,
            "ttft_ms": OMIT,
            "input_tokens": 40,
            "output_tokens": 0,
            "usage": "0.04",
            "cost": "0.00004",
        },
    ),
    # Sent with an offset: 13:00+05:30 is 07:30 UTC.
    ("cat-13", "2024-03-10T13:00:00+05:30", "initech-prod", {"duration_ms": 2100}),
    (
        "cat-14",
        "2024-03-11T00:05:00+00:00",
        "initech-batch",
        {"model": "gpt-4o", "duration_ms": 9000, "ttft_ms": 900, "output_tokens": 600},
    ),
    (
        "cat-15",
        "2024-03-11T00:05:00+00:00",
        "umbrella-main",
        {
            "model": "gpt-4o",
            "status_code": 502,
            "error_reason": "bad_gateway",
            "duration_ms": 15000,
            "ttft_ms": OMIT,
            "input_tokens": 70,
            "output_tokens": 0,
            "usage": "0",
            "cost": "0",
        },
    ),
]


@pytest.fixture
def catalog(db) -> Catalog:
    default = GroupFactory(name="default")
    vip = GroupFactory(name="vip")
    initech = AccountFactory(name="Initech", slug="initech")
    umbrella = AccountFactory(name="Umbrella", slug="umbrella")
    keys = {
        "initech-prod": ApiKeyFactory(account=initech, name="initech-prod", group=default),
        "initech-batch": ApiKeyFactory(account=initech, name="initech-batch", group=vip),
        "initech-ci": ApiKeyFactory(account=initech, name="ci", group=default),
        "umbrella-main": ApiKeyFactory(account=umbrella, name="umbrella-main", group=default),
        "umbrella-ci": ApiKeyFactory(account=umbrella, name="ci", group=vip),
    }
    records = {}
    for request_id, created_at, key, overrides in CATALOG_CALLS:
        records[request_id] = record_dict(
            keys[key], request_id=request_id, created_at=created_at, **overrides
        )
    ingest_calls(list(records.values()))
    calls = list(
        CallRecord.objects.select_related("account", "api_key", "group").order_by(
            "-created_at", "-id"
        )
    )
    assert len(calls) == len(CATALOG_CALLS)
    return Catalog(
        initech=initech,
        umbrella=umbrella,
        initech_owner=owner_of(initech, username="initech-owner"),
        umbrella_owner=owner_of(umbrella, username="umbrella-owner"),
        keys=keys,
        records=records,
        calls=calls,
    )
