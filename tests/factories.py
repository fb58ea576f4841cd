"""Test data, in one place.

Accounts, users, groups and memberships are plain factory-boy factories. Two
things are not, on purpose, because the app has one way to make them:

* API keys go through ``accounts.services.create_api_key`` (real prefix and
  hash). ``ApiKeyFactory()`` returns the saved ``ApiKey`` with the full key it
  was issued with on its ``secret`` attribute (never stored in the database).
* Calls go through the ingest service ``logs.ingest.ingest_calls``.
  ``record_dict(api_key, **overrides)`` builds one valid ingest record (the
  JSON object a gateway sends); ``make_call(api_key, **overrides)`` ingests one
  and returns the stored ``CallRecord``; ``make_calls`` ingests several in one
  batch. ``CallRecordFactory`` wraps the same two for factory-boy style:
  ``CallRecordFactory(api_key=key, model="x")`` stores a call,
  ``CallRecordFactory.build(api_key=key)`` gives the record dict.
* Rollups: ingest leaves what calls add to them pending until a fold (reads
  are exact either way); ``fold_rollups()`` folds everything pending, for
  tests that look at the rollup levels themselves.

Overrides in ``record_dict``: any ingest field by name; ``OMIT`` removes a
field; a ``datetime`` for ``created_at`` is written as ISO 8601 (a naive one
stays naive, so it is refused, as it should be); ``usage``/``cost`` may be
``Decimal``; ``api_key`` may be an ``ApiKey`` or a prefix string; ``group`` an
``Group`` or a name.
"""

from __future__ import annotations

import hashlib
import itertools
from base64 import b64decode
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from factory.django import DjangoModelFactory
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from accounts.models import Account, ApiKey, Group, Membership
from accounts.services import create_api_key, revoke_api_key
from logs.ingest.service import IngestResult, ingest_calls
from logs.models import CallRecord, ImportRun, ModelPrice
from logs.rollups.fold import fold_pending_rollups

User = get_user_model()

TEST_PASSWORD = "test-password-123"

# Permissions a support-staff login needs to read the back office.
SUPPORT_PERMISSIONS = (
    "logs.view_callrecord",
    "accounts.view_account",
    "accounts.view_membership",
    "accounts.view_group",
    "accounts.view_apikey",
)


def grant(user, *permissions: str) -> None:
    """Give ``user`` permissions named ``"app_label.codename"``."""
    for name in permissions:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # Django caches permissions on the instance.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)


# --- people and accounts ------------------------------------------------------------


class UserFactory(DjangoModelFactory):
    """An ordinary login (no staff flag). Password: ``TEST_PASSWORD``.

    ``UserFactory(permissions=["logs.view_callrecord"])`` grants permissions.
    """

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)
    is_active = True
    is_staff = False
    is_superuser = False

    @factory.post_generation
    def permissions(self, create: bool, extracted: Iterable[str] | None, **kwargs):
        if create and extracted:
            grant(self, *extracted)


class StaffUserFactory(UserFactory):
    """Support staff: ``is_staff`` with the view permissions of the back office."""

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True

    @factory.post_generation
    def permissions(self, create: bool, extracted: Iterable[str] | None, **kwargs):
        if create:
            grant(self, *(SUPPORT_PERMISSIONS if extracted is None else extracted))


class SuperuserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class AccountFactory(DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    slug = factory.Sequence(lambda n: f"account-{n}")
    is_active = True


class GroupFactory(DjangoModelFactory):
    """A pricing group. Names are unique: ``GroupFactory(name="vip")`` reuses an existing one."""

    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")
    price_ratio = Decimal("1")


class ModelPriceFactory(DjangoModelFactory):
    """A price of the price list, for every group unless ``group`` is given."""

    class Meta:
        model = ModelPrice

    model = "gpt-4o-mini"
    group = None
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)
    input_per_million = Decimal("2.50")
    cached_input_per_million = Decimal("1.25")
    cache_write_per_million = Decimal("3.125")
    output_per_million = Decimal("10")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(AccountFactory)
    role = Membership.Role.OWNER


class ImportRunFactory(DjangoModelFactory):
    """A history import's run row, as ``import_history`` leaves it (finished by default)."""

    class Meta:
        model = ImportRun

    kind = "newapi"
    location = factory.Sequence(lambda n: f"/srv/new-api/one-api-{n}.db (logs)")
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=20))
    updated_at = factory.LazyAttribute(lambda run: run.started_at + timedelta(seconds=100))
    finished_at = factory.LazyAttribute(lambda run: run.updated_at)
    imported = 180_000
    already_present = 12_000
    refused = 0
    skipped = factory.LazyFunction(lambda: {"type 1 (top-up)": 5_000, "type 3 (management)": 3_000})


def owner_of(account: Account, **user_fields) -> Any:
    """A new user who owns ``account``."""
    user = UserFactory(**user_fields)
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    return user


class ApiKeyFactory(DjangoModelFactory):
    """An API key made by ``create_api_key``; the full key is on ``.secret``.

    ``ApiKeyFactory(secret="sk-...")`` fixes the key; ``ApiKeyFactory(revoked=True)``
    or ``revoked_at=...`` revokes it after creation.
    """

    class Meta:
        model = ApiKey

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"key-{n}")
    group = factory.SubFactory(GroupFactory)
    secret = None
    revoked_at = None
    revoked = False

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError("API keys only exist through create_api_key: use ApiKeyFactory()")

    @classmethod
    def _create(cls, model_class, *args, secret=None, revoked_at=None, revoked=False, **kwargs):
        issued = create_api_key(secret=secret, **kwargs)
        api_key = issued.api_key
        if revoked_at is not None:
            api_key.revoked_at = revoked_at
            api_key.save(update_fields=["revoked_at"])
        elif revoked:
            revoke_api_key(api_key)
        api_key.secret = issued.secret
        return api_key


# --- calls (through the ingest service) -----------------------------------------------


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""``record_dict(key, model=OMIT)`` leaves the field out of the record."""

_request_ids = itertools.count(1)


def next_request_id() -> str:
    return f"req-test-{next(_request_ids):07d}"


def iso(moment: datetime) -> str:
    """ISO 8601 as a gateway sends it (a naive datetime stays naive)."""
    return moment.isoformat()


def record_dict(api_key: ApiKey | str, /, **overrides: Any) -> dict[str, Any]:
    """One valid ingest record for ``api_key`` (an ApiKey or its prefix)."""
    prefix = api_key.prefix if isinstance(api_key, ApiKey) else api_key
    record: dict[str, Any] = {
        "request_id": next_request_id(),
        "created_at": timezone.now() - timedelta(minutes=5),
        "api_key": prefix,
        "call_type": "chat",
        "model": "gpt-4o-mini",
        "endpoint": "/v1/chat/completions",
        "stream": False,
        "status_code": 200,
        "duration_ms": 1500,
        "ttft_ms": 250,
        "input_tokens": 120,
        "output_tokens": 30,
        "usage": "0.5",
        "cost": "0.00012",
        "client_ip": "203.0.113.7",
        "request": {
            "params": {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 256},
            "headers": {"User-Agent": "openai-python/1.54"},
            "body": {"messages": [{"role": "user", "content": "Hello there"}]},
        },
        "response": {"choices": [{"message": {"role": "assistant", "content": "Hi!"}}]},
    }
    record.update(overrides)
    for name, value in list(record.items()):
        if value is OMIT:
            del record[name]
        elif isinstance(value, datetime):
            record[name] = iso(value)
        elif isinstance(value, Decimal):
            record[name] = str(value)
        elif isinstance(value, Group):
            record[name] = value.name
        elif isinstance(value, ApiKey):
            record[name] = value.prefix
    return record


def ingest(*records: dict[str, Any]) -> IngestResult:
    """Ingest records as one batch (a thin alias that reads well in tests)."""
    return ingest_calls(list(records))


def make_call(api_key: ApiKey | None = None, **overrides: Any) -> CallRecord:
    """Ingest one record and return the stored CallRecord (a new key if none is given)."""
    api_key = api_key if api_key is not None else ApiKeyFactory()
    record = record_dict(api_key, **overrides)
    ingest_calls([record])
    return CallRecord.objects.get(request_id=record["request_id"])


def make_calls(api_key: ApiKey, count: int, **overrides: Any) -> list[CallRecord]:
    """Ingest ``count`` records (same overrides, fresh request ids) in one batch."""
    records = [record_dict(api_key, **overrides) for _ in range(count)]
    result = ingest_calls(records)
    return list(CallRecord.objects.filter(pk__in=result.created_ids).order_by("pk"))


def fold_rollups() -> int:
    """Fold every pending rollup delta into the rollup levels, as the folder does
    shortly after each ingest (after its commit: never inside a test's
    transaction). Returns how many deltas were folded."""
    folded = 0
    while (result := fold_pending_rollups()) is not None and result.deltas:
        folded += result.deltas
    return folded


_litellm_ids = itertools.count(1)


def litellm_key_hash(key: str) -> str:
    """LiteLLM's ``user_api_key_hash`` of a proxy key: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def litellm_payload(*, metadata: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """One StandardLoggingPayload as a LiteLLM proxy posts it (the shape of
    litellm 1.x's, trimmed of the fields the mapping never reads): a successful
    chat call of key ``alpha-prod`` of team ``team-alpha``, five minutes ago.
    ``metadata`` entries are merged into the payload's metadata; ``OMIT``
    removes a field. The live tests (tests/logs/integrations/test_litellm_live.py)
    post the real library's payloads."""
    start = timezone.now().timestamp() - 300
    call_id = f"chatcmpl-test-{next(_litellm_ids):07d}"
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    payload: dict[str, Any] = {
        "id": call_id,
        "litellm_call_id": f"call-{call_id}",
        "trace_id": f"trace-{call_id}",
        "call_type": "acompletion",
        "cache_hit": None,
        "stream": None,
        "status": "success",
        "custom_llm_provider": "openai",
        "startTime": start,
        "endTime": start + 1.5,
        "completionStartTime": start + 1.5,
        "response_time": 1.5,
        "model": "gpt-4o-mini",
        "metadata": {
            "user_api_key_hash": litellm_key_hash("sk-alpha-prod"),
            "user_api_key_alias": "alpha-prod",
            "user_api_key_team_id": "team-alpha",
            "user_api_key_team_alias": "Alpha",
            "user_api_key_user_id": None,
            "user_api_key_request_route": "/chat/completions",
            "requester_ip_address": None,
            "usage_object": usage,
        },
        "response_cost": 0.0000135,
        "total_tokens": 150,
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "request_tags": [],
        "end_user": None,
        "api_base": "https://api.openai.com",
        "model_group": "gpt-4o-mini",
        "model_id": "deployment-1",
        "requester_ip_address": "203.0.113.7",
        "messages": [{"role": "user", "content": "Hello there"}],
        "response": {
            "id": call_id,
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}}],
            "usage": usage,
        },
        "model_parameters": {"temperature": 0.2, "max_tokens": 256},
        "hidden_params": {"model_id": "deployment-1", "api_base": "https://api.openai.com"},
        "error_str": None,
        "error_information": None,
    }
    payload["metadata"].update(metadata or {})
    payload.update(overrides)
    for container in (payload, payload["metadata"]):
        for name, value in list(container.items()):
            if value is OMIT:
                del container[name]
    return payload


class CallRecordFactory(factory.Factory):
    """``CallRecordFactory(api_key=key, **fields)`` ingests one record and returns
    the stored CallRecord; ``.build(...)`` returns the record dict instead."""

    class Meta:
        model = dict

    api_key = factory.LazyFunction(lambda: ApiKeyFactory())

    @classmethod
    def _build(cls, model_class, *args, api_key, **overrides):
        return record_dict(api_key, **overrides)

    @classmethod
    def _create(cls, model_class, *args, api_key, **overrides):
        return make_call(api_key, **overrides)


# --- OpenTelemetry GenAI spans -------------------------------------------------------------
#
# Spans are made by the real OpenTelemetry SDK (never hand-written protobuf):
# ``genai_spans(GenAiSpan(...), ...)`` ends each span at its given times and
# returns the SDK's finished spans; ``otlp_request(spans)`` is the
# ExportTraceServiceRequest the SDK's OTLP exporters send for them.


@dataclass
class GenAiSpan:
    """One span as an instrumented client would make it: ``attributes`` are the
    span's (GenAI semantic conventions and ours), ``error`` sets an ERROR status
    with that message and records an exception event."""

    attributes: dict[str, Any]
    name: str = ""
    start: datetime | None = None  # default: five minutes ago
    duration_ms: float = 1500
    error: str | None = None
    kind: str = "CLIENT"


def chat_span(api_key: ApiKey | str | None, **attributes: Any) -> GenAiSpan:
    """A successful chat call's span (GenAI conventions), for ``api_key``
    (an ApiKey or a prefix; None: no key attribute). ``attributes`` are added
    to or override the defaults; a value of OMIT removes one."""
    values: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": f"chatcmpl-{next_request_id()}",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "api.openai.com",
        "server.port": 443,
        "usagelogs.cost": "0.00012",
    }
    if api_key is not None:
        values["usagelogs.api_key"] = api_key.prefix if isinstance(api_key, ApiKey) else api_key
    values.update(attributes)
    return GenAiSpan({k: v for k, v in values.items() if v is not OMIT})


def genai_spans(*specs: GenAiSpan, resource: dict[str, Any] | None = None) -> list:
    """The SDK's finished spans (ReadableSpan) for ``specs``, in order."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot", **(resource or {})})
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    start_spans(provider, *specs)
    provider.shutdown()
    return list(memory.get_finished_spans())


def start_spans(provider, *specs: GenAiSpan) -> None:
    """Make and end the spans of ``specs`` with ``provider``'s tracer (an SDK
    TracerProvider with whatever processors the test set up)."""

    tracer = provider.get_tracer("tests.factories")
    for spec in specs:
        start = spec.start or timezone.now() - timedelta(minutes=5)
        start_ns = int(start.timestamp() * 1_000_000) * 1000
        operation = spec.attributes.get("gen_ai.operation.name", "")
        model = spec.attributes.get("gen_ai.request.model", "")
        span = tracer.start_span(
            spec.name or f"{operation} {model}".strip() or "work",
            kind=SpanKind[spec.kind],
            attributes=spec.attributes,
            start_time=start_ns,
        )
        if spec.error is not None:
            span.set_status(Status(StatusCode.ERROR, spec.error))
            span.record_exception(RuntimeError(spec.error), timestamp=start_ns)
        span.end(end_time=start_ns + int(spec.duration_ms * 1_000_000))


def otlp_request(spans: list):
    """The ExportTraceServiceRequest the SDK's OTLP exporters send for ``spans``."""

    return encode_spans(spans)


def otlp_json(spans: list) -> dict[str, Any]:
    """``otlp_request(spans)`` in OTLP's JSON encoding: protobuf's JSON mapping
    with trace and span ids in hex, as the OTLP specification has it."""

    document = json_format.MessageToDict(otlp_request(spans))
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = b64decode(span[name]).hex()
    return document
