"""Query strings for the pages' property tests: a small world of calls at fixed
times, what a generated query string holds, and what each parameter means.
(Not a test module; used by tests/logs/test_query_strings.py and
tests/api/test_query_strings.py.)

The strategies draw parameter names from those the pages read, and from
names they do not, and values from good ones (whose meaning is known here),
garbage (out-of-range numbers, dates that are not, offsets beyond ±15:59,
years past 9998), unicode, NUL characters, 5,000-character values and empty
values; names repeat now and then. A query string is judged from what Django
itself parses out of it (``QueryDict``), so the judgement sees what the page sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from hypothesis import strategies as st

from accounts.models import Account, Group
from logs.ingest.service import ingest_calls
from logs.models import CallRecord, CallType, StatusClass
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    owner_of,
    record_dict,
)

T0 = datetime(2026, 11, 19, 21, 0, tzinfo=UTC)  # calls run from here past midnight

FILTER_NAMES = (
    "start",
    "end",
    "account",
    "model",
    "key_name",
    "group",
    "call_type",
    "status",
    "streamed",
    # Token accounting.
    "tag",
    "end_user",
)
# Typed values (raw calls only), and the recent-span preset of the time range.
DETAIL_NAMES = ("status_code", "slower_than_ms", "cost_above", "client_ip", "endpoint")
PRESET = "last"
PRESETS = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DRILL_DOWN = ("created_at__year", "created_at__month", "created_at__day")

# (account slug, key, model, call type, status code, minutes after T0)
CALLS = [
    ("acme", "acme-prod", "gpt-4o-mini", "chat", 200, 0),
    ("globex", "globex-prod", "gemini-1.5-flash", "chat", 200, 30),
    ("acme", "acme-prod", "gpt-4o-mini", "embedding", 200, 60),
    ("acme", "acme-batch", "gpt-4o", "chat", 429, 120),
    ("globex", "globex-prod", "gemini-1.5-flash", "chat", 500, 150),
    ("acme", "acme-batch", "gpt-4o", "chat", 502, 180),
    ("globex", "globex-prod", "gpt-4o-mini", "completion", 200, 210),
    ("acme", "acme-prod", "gpt-4o-mini", "chat", 200, 240),
]
# Tags and end users of some of those calls (by index): "prod" and "ana" in both
# accounts, the rest in one (an owner must not be offered Globex's).
TAGS = {0: ["prod", "nightly"], 1: ["prod", "globex-eu"], 3: ["prod"], 6: ["globex-eu"]}
END_USERS = {0: "ana", 1: "ana", 2: "bo", 4: "gus", 7: "ana"}


CLIENT_IPS = ["203.0.113.7", "2001:db8::1", "198.51.100.20"]
ENDPOINTS = {
    "chat": "/v1/chat/completions",
    "completion": "/v1/completions",
    "embedding": "/v1/embeddings",
}


@dataclass
class Viewer:
    """A user and what their pages offer and show."""

    user: AbstractBaseUser
    calls: list[CallRecord]  # the calls they may see, oldest first
    choices: dict[str, set[str]] = field(default_factory=dict)  # sidebar filter -> values


@dataclass
class QueryWorld:
    staff: Viewer
    owner: Viewer  # of Acme, the portal's current account
    accounts: dict[str, Account]
    groups: dict[str, Group]
    calls: list[CallRecord]  # oldest first

    def call(self, request_id: str) -> CallRecord:
        return next(c for c in self.calls if c.request_id == request_id)


def build_world() -> QueryWorld:
    groups = {"default": GroupFactory(name="default"), "vip": GroupFactory(name="vip")}
    accounts = {
        "acme": AccountFactory(name="Acme Robotics", slug="acme"),
        "globex": AccountFactory(name="Globex", slug="globex"),
    }
    keys = {
        "acme-prod": ApiKeyFactory(
            account=accounts["acme"], name="acme-prod", group=groups["default"]
        ),
        "acme-batch": ApiKeyFactory(
            account=accounts["acme"], name="acme-batch", group=groups["vip"]
        ),
        "globex-prod": ApiKeyFactory(
            account=accounts["globex"], name="globex-prod", group=groups["default"]
        ),
    }
    records = [
        record_dict(
            keys[key],
            request_id=f"qs-{index}",
            model=model,
            call_type=call_type,
            status_code=status,
            error_reason="upstream" if status >= 400 else "",
            created_at=T0 + timedelta(minutes=minutes),
            tags=TAGS.get(index, []),
            end_user=END_USERS.get(index, ""),
            # What the investigation filters read, different from call to call.
            duration_ms=500 + 400 * index,
            cost=f"0.{index}5",
            client_ip=CLIENT_IPS[index % len(CLIENT_IPS)],
            endpoint=ENDPOINTS[call_type],
            stream=index % 3 == 0,
        )
        for index, (_, key, model, call_type, status, minutes) in enumerate(CALLS)
    ]
    ingest_calls(records)
    calls = list(
        CallRecord.objects.select_related("account", "api_key", "group").order_by("created_at")
    )
    staff_user = StaffUserFactory(username="qs-support")
    owner = owner_of(accounts["acme"], username="qs-owner")
    acme_calls = [c for c in calls if c.account_id == accounts["acme"].pk]
    fixed = {
        "call_type": set(CallType.values),
        "status": {*StatusClass.values, "error"},
        "streamed": {"yes", "no"},
    }
    staff = Viewer(
        staff_user,
        calls,
        {
            "account": {str(a.pk) for a in accounts.values()},
            "model": {c.model for c in calls},
            "key_name": set(keys),
            "group": set(groups),
            "tag": {tag for c in calls for tag in c.tags},
            "end_user": {c.end_user for c in calls if c.end_user},
            **fixed,
        },
    )
    own = Viewer(
        owner,
        acme_calls,
        {
            "account": set(),  # the portal shows one account and offers no choice
            "model": {c.model for c in acme_calls},
            "key_name": {"acme-prod", "acme-batch"},
            "group": {"default", "vip"},
            "tag": {tag for c in acme_calls for tag in c.tags},
            "end_user": {c.end_user for c in acme_calls if c.end_user},
            **fixed,
        },
    )
    return QueryWorld(staff=staff, owner=own, accounts=accounts, groups=groups, calls=calls)


# --- values ------------------------------------------------------------------------

LONG = "x" * 5000
# Times with a known meaning (the instant they name).
GOOD_TIMES = {
    "2026-11-19T21:30:00+00:00": datetime(2026, 11, 19, 21, 30, tzinfo=UTC),
    "2026-11-20T00:00:00Z": datetime(2026, 11, 20, 0, 0, tzinfo=UTC),
    "2026-11-20T02:00+02:00": datetime(2026, 11, 20, 0, 0, tzinfo=UTC),
    "2026-11-19T23:15:00-01:00": datetime(2026, 11, 20, 0, 15, tzinfo=UTC),
    "2026-11-20T01:00:00+14:00": datetime(2026, 11, 19, 11, 0, tzinfo=UTC),
}
BAD_TIMES = [
    "yesterday",
    "2026-13-45",
    "28/11/2026",
    "2026-01-01T00:00+16:00",
    "2026-01-01T00:00-22:37",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-11-20T25:00",
]
GARBAGE = [
    "0",
    "-1",
    "999999",
    "9" * 40,
    "abcd",
    "1.5",
    "1e9",
    "ünïcødé ✓",
    "\x00",
    "a\x00b",
    " ",
    LONG,
    "<script>",
    "%00",
]


def good_values(name: str, world: QueryWorld) -> list[str]:
    """Values of ``name`` that a page may well accept (for one viewer or the other)."""
    good: list[str] = [""]
    if name in ("start", "end"):
        good += list(GOOD_TIMES)
    elif name in FILTER_NAMES:
        good += sorted(set().union(world.staff.choices[name], world.owner.choices[name]))
        good += ["never-ingested"]
    elif name == "status_code":
        good += ["200", "429", "500", "502", "404", "99", "600", " 500 ", "5xx"]
    elif name == "slower_than_ms":
        good += ["0", "1000", "2499", "2500", "100000", "2147483648", "-5", "1.5"]
    elif name == "cost_above":
        good += ["0", "0.3", "0.35", "0.350000001", "1", "1e3", "-1", "0.", ".5", "1_0"]
    elif name == "client_ip":
        good += [*CLIENT_IPS, "2001:DB8:0::1", "10.0.0.1", "300.1.1.1", "::1"]
    elif name == "endpoint":
        good += [*ENDPOINTS.values(), "/v1/chat", " /v1/embeddings "]
    elif name == PRESET:
        good += [*PRESETS, "2h", "1H", " 1h"]
    elif name == "q":
        good += [c.request_id for c in world.calls] + [" qs-0 ", '"qs-0"', "qs-0 qs-1"]
    elif name == "o":
        good += ["0", "-0", "1", "0.-0", "7", "8", "-8", "9", "10", "11", "12.-0", "-11.8"]
    elif name == "p":
        good += ["1", "2", "01"]
    elif name == "created_at__year":
        good += ["2026", "2025", "1899", "9998", "9999"]
    elif name == "created_at__month":
        good += ["11", "12", "1", "13"]
    elif name == "created_at__day":
        good += ["19", "20", "31", "0"]
    elif name in ("interval", "group_by"):
        good += ["hour", "day", "model", "key_name", "group", "call_type"]
    elif name == "page_size":
        good += ["1", "3", "1000", "1001"]
    elif name == "account":
        good += [str(a.pk) for a in world.accounts.values()]
    return good


def values_for(name: str, world: QueryWorld) -> st.SearchStrategy[str]:
    """Good values of ``name``, garbage, and anything."""
    anything = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
    return st.one_of(
        st.sampled_from(good_values(name, world)),
        st.sampled_from(GARBAGE + BAD_TIMES),
        anything,
    )


def query_strings(names: tuple[str, ...], world: QueryWorld) -> st.SearchStrategy[str]:
    """Query strings of up to five parameters. Two in three are tidy (distinct
    names among ``names``, plausible values); the rest mix in any name and
    value, a name more than once, and now and then a raw fragment Django
    parses its own way."""
    other_names = st.one_of(
        st.sampled_from(
            [
                "e",
                "foo",
                "status_code__gte",
                "account__name",
                "all",
                "_popup",
                "_facets",
                "_to_field",
                "_changelist_filters",
                "created_at__gte",
                "p\x00",
                "",
                # Names another page reads (the admin's on the API, the API's on the admin).
                "p",
                "o",
                "q",
                "request_id",
                "page_size",
                "cursor",
                "interval",
                "group_by",
                "format",
                *DRILL_DOWN,
            ]
        ),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    )

    @st.composite
    def tidy(draw) -> str:
        chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
        return urlencode([(n, draw(st.sampled_from(good_values(n, world)))) for n in chosen])

    @st.composite
    def mixed(draw) -> str:
        pairs = []
        for _ in range(draw(st.integers(0, 5))):
            name = draw(st.one_of(st.sampled_from(names), st.sampled_from(names), other_names))
            pairs.append((name, draw(values_for(name, world))))
        query = urlencode(pairs)
        fragment = draw(st.sampled_from(["", "", "", "&", "p", "&%FF=%FE", "q=%E2%82"]))
        return "&".join(part for part in (query, fragment) if part)

    return st.one_of(tidy(), tidy(), mixed())


def in_order(calls: list[CallRecord], newest_first: bool = True) -> list[str]:
    ordered = sorted(calls, key=lambda c: (c.created_at, c.pk), reverse=newest_first)
    return [c.request_id for c in ordered]


def describe(query: str) -> dict[str, Any]:
    """What a failing example sent, for the assertion message."""
    from django.http import QueryDict

    return {name: [v[:40] for v in values] for name, values in QueryDict(query).lists()}


# --- what the investigation filters mean ------------------------------------------------


def detail_predicate(name: str, value: str):
    """For a value of one of DETAIL_NAMES: None for no filter, False for a value
    the pages refuse, else which calls it selects (from the pages' promises:
    an HTTP status 100-599, whole milliseconds up to 2**31 - 1, a plain amount
    in USD with up to 8 decimals, an IP address, a printable path)."""
    import re
    from decimal import Decimal
    from ipaddress import ip_address

    text = value.strip()
    if not text:
        return None
    if name == "status_code":
        if not re.fullmatch(r"[0-9]{3}", text) or not 100 <= int(text) <= 599:
            return False
        return lambda c: c.status_code == int(text)
    if name == "slower_than_ms":
        if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > 2**31 - 1:
            return False
        return lambda c: c.duration_ms > int(text)
    if name == "cost_above":
        if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{0,8})?|\.[0-9]{1,8}", text):
            return False
        return lambda c: c.cost > Decimal(text)
    if name == "client_ip":
        try:
            address = ip_address(text)
        except ValueError:
            return False
        return lambda c: c.client_ip is not None and ip_address(c.client_ip) == address
    if name == "endpoint":
        if not text.isprintable() or len(text) > 255:
            return False
        return lambda c: c.endpoint == text
    raise KeyError(name)


def streamed_predicate(value: str):
    return lambda c: c.is_stream == (value == "yes")
