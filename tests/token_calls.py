"""Calls with token parts, tags and end users in two accounts, for the tests of
the pages and the API that show them. (Not a test module.)"""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.models import Account
from logs.models import CallRecord
from tests.factories import AccountFactory, ApiKeyFactory, ingest, record_dict


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC)


def build_token_calls() -> tuple[dict[str, CallRecord], Account]:
    """Two accounts: Acme's calls with cached input and reasoning, tags and end
    users; Globex's with tags and an end user of its own."""
    acme, globex = AccountFactory(name="Acme"), AccountFactory(name="Globex")
    acme_key = ApiKeyFactory(account=acme, name="acme-key")
    globex_key = ApiKeyFactory(account=globex, name="globex-key")
    ingest(
        record_dict(
            acme_key,
            request_id="acme-cached",
            created_at=at(9),
            model="claude-sonnet",
            input_tokens=1000,
            output_tokens=200,
            cached_input_tokens=600,
            cache_write_tokens=300,
            reasoning_tokens=50,
            end_user="customer-7",
            tags=["support", "eu"],
        ),
        record_dict(
            acme_key,
            request_id="acme-plain",
            created_at=at(9, 30),
            model="claude-sonnet",
            input_tokens=1000,
            output_tokens=100,
        ),
        record_dict(
            acme_key,
            request_id="acme-other-model",
            created_at=at(10),
            model="gpt-4o",
            input_tokens=400,
            output_tokens=10,
            cached_input_tokens=100,
            tags=["eu"],
        ),
        record_dict(
            globex_key,
            request_id="globex-1",
            created_at=at(10, 30),
            model="gpt-4o",
            input_tokens=500,
            output_tokens=10,
            cached_input_tokens=500,
            end_user="globex-user",
            tags=["globex-only", "eu"],
        ),
    )
    return {c.request_id: c for c in CallRecord.objects.all()}, acme
