"""How filters narrow the calls a user sees, and what they add up to, from
raw calls and from rollups. Expected answers are computed from the inputs
(the calls each test ingests), never written down by hand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest

from accounts.models import Account
from logs.ingest.service import ingest_calls
from logs.models import CallRecord
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from logs.read.totals import call_totals, scoped_totals
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    make_call,
    owner_of,
    record_dict,
)

pytestmark = pytest.mark.django_db


def ids(calls) -> set[int]:
    return {call.pk for call in calls}


T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    """One call as a test sends it."""

    minute: float
    key: str  # "a-alpha", "a-beta" or "b-alpha"
    model: str
    call_type: str
    status: int
    input_tokens: int
    output_tokens: int
    usage: str
    cost: str
    duration_ms: int

    @property
    def created_at(self) -> datetime:
        return T0 + timedelta(minutes=self.minute)


SPECS = [
    Spec(0, "a-alpha", "gpt-4o", "chat", 200, 100, 20, "0.1", "0.00000001", 800),
    Spec(15, "a-alpha", "gpt-4o", "chat", 429, 90, 0, "0", "0", 30),
    Spec(30, "a-beta", "gpt-4o-mini", "completion", 201, 50, 50, "0.2", "0.00012", 1200),
    Spec(59.99, "a-beta", "gpt-4o", "embedding", 500, 10, 0, "0.000001", "0.1", 5000),
    Spec(60, "a-alpha", "gpt-4o-mini", "chat", 404, 7, 0, "0.3", "0.2", 90),
    Spec(61, "a-beta", "gpt-4o", "chat", 399, 1000, 900, "123.456789", "12.34567891", 20000),
    Spec(125, "a-alpha", "gpt-4o", "chat", 503, 5, 5, "0.5", "0.3", 60000),
    Spec(130, "b-alpha", "gpt-4o", "chat", 200, 300, 100, "1.5", "0.004", 700),
    Spec(181, "b-alpha", "claude-3-5-sonnet", "completion", 499, 12, 0, "0.000002", "0", 120),
]


def status_class(status: int) -> str:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"


@dataclass
class Catalog:
    staff: object
    owner_a: object
    calls: dict[int, Spec]  # CallRecord pk -> what was sent
    accounts: dict[str, Account]  # "a" / "b"
    request_ids: dict[int, str]

    def expected(self, predicate, *, account: str | None = None) -> set[int]:
        return {
            pk
            for pk, spec in self.calls.items()
            if predicate(spec) and (account is None or spec.key.startswith(account))
        }


@pytest.fixture
def catalog(db) -> Catalog:
    default, vip = GroupFactory(name="default"), GroupFactory(name="vip")
    account_a, account_b = AccountFactory(name="A"), AccountFactory(name="B")
    keys = {
        "a-alpha": ApiKeyFactory(account=account_a, name="alpha", group=default),
        "a-beta": ApiKeyFactory(account=account_a, name="beta", group=vip),
        # Same key name in another account: filters must not widen the scope.
        "b-alpha": ApiKeyFactory(account=account_b, name="alpha", group=default),
    }
    records = [
        record_dict(
            keys[spec.key],
            created_at=spec.created_at,
            model=spec.model,
            call_type=spec.call_type,
            status_code=spec.status,
            input_tokens=spec.input_tokens,
            output_tokens=spec.output_tokens,
            usage=spec.usage,
            cost=spec.cost,
            duration_ms=spec.duration_ms,
            ttft_ms=None,
        )
        for spec in SPECS
    ]
    ingest_calls(records)
    stored = dict(CallRecord.objects.values_list("request_id", "pk"))
    calls = {stored[r["request_id"]]: spec for r, spec in zip(records, SPECS, strict=True)}
    request_ids = {stored[r["request_id"]]: r["request_id"] for r in records}
    return Catalog(
        staff=StaffUserFactory(),
        owner_a=owner_of(account_a),
        calls=calls,
        accounts={"a": account_a, "b": account_b},
        request_ids=request_ids,
    )


def filtered(user, **filters) -> set[int]:
    return ids(filter_calls(visible_calls(user), CallFilters(**filters)))


GROUP_OF_KEY = {"a-alpha": "default", "a-beta": "vip", "b-alpha": "default"}


KEY_NAME = {"a-alpha": "alpha", "a-beta": "beta", "b-alpha": "alpha"}


def test_no_filter_is_everything_visible(catalog):
    assert filtered(catalog.staff) == catalog.expected(lambda s: True)
    assert CallFilters().is_empty()


def test_start_is_inclusive_and_end_exclusive_at_a_calls_exact_time(catalog):
    for spec in SPECS:
        moment = spec.created_at

        from_it = filtered(catalog.staff, start=moment)
        until_it = filtered(catalog.staff, end=moment)

        assert from_it == catalog.expected(lambda s, m=moment: s.created_at >= m), spec
        assert until_it == catalog.expected(lambda s, m=moment: s.created_at < m), spec
        assert from_it | until_it == set(catalog.calls) and not from_it & until_it
        assert filtered(catalog.staff, start=moment, end=moment) == set()
        just_it = filtered(catalog.staff, start=moment, end=moment + timedelta(microseconds=1))
        assert [catalog.calls[pk] for pk in just_it] == [spec]


def test_a_time_window_in_another_zone_means_the_same_instants(catalog):
    plus_two = dt_timezone(timedelta(hours=2))
    start, end = T0 + timedelta(minutes=15), T0 + timedelta(minutes=61)

    local = filtered(catalog.staff, start=start.astimezone(plus_two), end=end.astimezone(plus_two))

    assert local == catalog.expected(lambda s: start <= s.created_at < end)


@pytest.mark.parametrize("model", sorted({s.model for s in SPECS}))
def test_filter_by_model(catalog, model):
    assert filtered(catalog.staff, model=model) == catalog.expected(lambda s: s.model == model)


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_filter_by_key_name(catalog, name):
    assert filtered(catalog.staff, key_name=name) == catalog.expected(
        lambda s: KEY_NAME[s.key] == name
    )


def test_a_key_name_shared_with_another_account_does_not_widen_an_owners_view(catalog):
    assert filtered(catalog.owner_a, key_name="alpha") == catalog.expected(
        lambda s: KEY_NAME[s.key] == "alpha", account="a"
    )


@pytest.mark.parametrize("group", ["default", "vip"])
def test_filter_by_group(catalog, group):
    assert filtered(catalog.staff, group=group) == catalog.expected(
        lambda s: GROUP_OF_KEY[s.key] == group
    )


@pytest.mark.parametrize("call_type", ["chat", "completion", "embedding", "image"])
def test_filter_by_call_type(catalog, call_type):
    assert filtered(catalog.staff, call_type=call_type) == catalog.expected(
        lambda s: s.call_type == call_type
    )


@pytest.mark.parametrize("status", ["success", "client_error", "server_error"])
def test_filter_by_status_class(catalog, status):
    assert filtered(catalog.staff, status=status) == catalog.expected(
        lambda s: status_class(s.status) == status
    )


def test_filter_by_request_id(catalog):
    pk, request_id = next(iter(catalog.request_ids.items()))

    assert filtered(catalog.staff, request_id=request_id) == {pk}
    assert filtered(catalog.staff, request_id="no-such-request") == set()


def test_filter_by_account(catalog):
    account_b = catalog.accounts["b"].pk

    assert filtered(catalog.staff, account_id=account_b) == catalog.expected(
        lambda s: True, account="b"
    )
    # An owner asking for another account's calls gets none, not those calls.
    assert filtered(catalog.owner_a, account_id=account_b) == set()


@pytest.mark.parametrize(("name", "value"), [("call_type", "chatty"), ("status", "teapot")])
def test_an_unknown_choice_is_an_error_not_an_unfiltered_list(catalog, name, value):
    with pytest.raises(ValueError):
        list(filter_calls(visible_calls(catalog.staff), CallFilters(**{name: value})))


WINDOWS = [None, (T0 + timedelta(minutes=15), T0 + timedelta(minutes=125))]


@pytest.mark.parametrize("user", ["staff", "owner_a"])
def test_filters_combine_as_and(catalog, user):
    viewer = getattr(catalog, user)
    account = "a" if user == "owner_a" else None
    options = itertools.product(
        WINDOWS,
        [None, "gpt-4o"],
        [None, "alpha"],
        [None, "default"],
        [None, "chat"],
        [None, "client_error", "success"],
    )
    checked = 0
    for window, model, key_name, group, call_type, status in options:

        def matches(s, window=window, model=model, key_name=key_name, group=group,
                    call_type=call_type, status=status):  # fmt: skip
            return (
                (window is None or window[0] <= s.created_at < window[1])
                and (model is None or s.model == model)
                and (key_name is None or KEY_NAME[s.key] == key_name)
                and (group is None or GROUP_OF_KEY[s.key] == group)
                and (call_type is None or s.call_type == call_type)
                and (status is None or status_class(s.status) == status)
            )

        got = filtered(
            viewer,
            start=window and window[0],
            end=window and window[1],
            model=model,
            key_name=key_name,
            group=group,
            call_type=call_type,
            status=status,
        )
        assert got == catalog.expected(matches, account=account), (
            window,
            model,
            key_name,
            group,
            call_type,
            status,
        )
        checked += 1
    assert checked == 2 * 2 * 2 * 2 * 2 * 3


def expected_totals(specs: list[Spec]) -> dict:
    return {
        "calls": len(specs),
        "errors": sum(1 for s in specs if s.status >= 400),
        "input_tokens": sum(s.input_tokens for s in specs),
        "output_tokens": sum(s.output_tokens for s in specs),
        "total_tokens": sum(s.input_tokens + s.output_tokens for s in specs),
        "usage": sum((Decimal(s.usage) for s in specs), Decimal(0)),
        "cost": sum((Decimal(s.cost) for s in specs), Decimal(0)),
        "duration_ms_sum": sum(s.duration_ms for s in specs),
    }


def as_dict(totals) -> dict:
    return {name: getattr(totals, name) for name in expected_totals([])}


def test_call_totals_add_up_the_selection(catalog):
    totals = call_totals(visible_calls(catalog.staff))

    assert as_dict(totals) == expected_totals(SPECS)
    assert totals.average_duration_ms == sum(s.duration_ms for s in SPECS) / len(SPECS)
    assert totals.error_rate == sum(1 for s in SPECS if s.status >= 400) / len(SPECS)


def test_call_totals_follow_scope_and_filters(catalog):
    owners = call_totals(
        filter_calls(visible_calls(catalog.owner_a), CallFilters(model="gpt-4o", status="success"))
    )

    specs = [
        s
        for s in SPECS
        if s.key.startswith("a") and s.model == "gpt-4o" and status_class(s.status) == "success"
    ]
    assert as_dict(owners) == expected_totals(specs)


def test_totals_of_nothing_are_zero(catalog, outsider):
    totals = call_totals(visible_calls(outsider))

    assert as_dict(totals) == expected_totals([])
    assert isinstance(totals.usage, Decimal) and isinstance(totals.cost, Decimal)
    assert totals.average_duration_ms is None
    assert totals.error_rate is None


def test_totals_ignore_the_querysets_ordering(catalog):
    calls = visible_calls(catalog.staff).order_by("model", "-created_at")

    assert as_dict(call_totals(calls)) == expected_totals(SPECS)


# scoped_totals reads whole hours from rollups and the edges from raw calls: it
# must agree with call_totals over the same scoped, filtered calls.
TOTALS_WINDOWS = [
    (None, None),
    (T0, None),
    (None, T0 + timedelta(hours=2)),
    (T0, T0 + timedelta(hours=1)),  # exactly one whole hour
    (T0 + timedelta(minutes=15), T0 + timedelta(minutes=125)),  # ragged on both sides
    (T0 + timedelta(minutes=59.99), T0 + timedelta(minutes=61)),  # across an hour boundary
    (T0 + timedelta(minutes=60), T0 + timedelta(minutes=60, microseconds=1)),
    (T0 - timedelta(days=1), T0 + timedelta(days=1)),
    (T0 + timedelta(minutes=20), T0 + timedelta(minutes=25)),  # inside one hour, no call
]


NARROWINGS = [
    {},
    {"model": "gpt-4o"},
    {"status": "client_error"},
    {"key_name": "alpha", "group": "default"},
]


@pytest.mark.parametrize("user", ["staff", "owner_a"])
def test_scoped_totals_agree_with_call_totals(catalog, user):
    viewer = getattr(catalog, user)
    for (start, end), narrowing in itertools.product(TOTALS_WINDOWS, NARROWINGS):
        filters = CallFilters(start=start, end=end, **narrowing)

        from_rollups = scoped_totals(viewer, filters=filters)
        from_calls = call_totals(filter_calls(visible_calls(viewer), filters))

        assert from_rollups == from_calls, filters


def test_scoped_totals_of_an_owner_never_include_another_account(two_accounts):
    a = two_accounts.a

    totals = scoped_totals(a.owner)

    assert totals.calls == len(a.calls)
    assert totals.usage == sum((call.usage for call in a.calls), Decimal(0))
    assert scoped_totals(a.owner, account=two_accounts.b.account).calls == 0


def test_a_call_ingested_later_is_in_the_totals_at_once(catalog):
    key = ApiKeyFactory(account=catalog.accounts["a"], name="gamma")
    before = scoped_totals(catalog.staff)

    make_call(key, created_at=T0 + timedelta(minutes=30), usage="2.5", cost="0.5")

    after = scoped_totals(catalog.staff)
    assert after.calls == before.calls + 1
    assert after.usage == before.usage + Decimal("2.5")
    assert after.cost == before.cost + Decimal("0.5")


def test_a_replayed_call_is_not_counted_twice(catalog):
    before = scoped_totals(catalog.staff)
    key = ApiKeyFactory(account=catalog.accounts["b"], name="delta")
    record = record_dict(key, created_at=T0 + timedelta(minutes=5), usage="1")

    ingest_calls([record])
    ingest_calls([record])

    after = scoped_totals(catalog.staff)
    assert after.calls == before.calls + 1
    assert after.usage == before.usage + 1
    assert CallRecord.objects.filter(request_id=record["request_id"]).count() == 1
