"""The usage stats page: /admin/logs/callrecord/stats/ and /portal/logs/callrecord/stats/.

The page reuses the call list's ChangeList, so its numbers are sums over
exactly the calls the list shows with the same filters: scoped (an owner sees
their own account only) and filtered (time range, model, key name, ...). Bad
filters answer with a message and no numbers, never with unfiltered data.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.safestring import mark_safe
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Account, ApiKey
from logs.admin.stats_page import (
    EXPLANATION,
    MAX_DAILY_BUCKETS,
    MAX_HOURLY_BUCKETS,
    default_interval,
    fill_buckets,
)
from logs.ingest.service import ingest_calls
from logs.models import CallRecord
from logs.periods import bucket_starts
from logs.read.filters import CallFilters
from logs.read.stats import scoped_usage_stats, usage_stats
from logs.templatetags.call_admin import chart_table_rows
from tests.clock import at_instants
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    UserFactory,
    make_call,
    owner_of,
    record_dict,
)

ADMIN_STATS = "/admin/logs/callrecord/stats/"
PORTAL_STATS = "/portal/logs/callrecord/stats/"
ADMIN_LIST = "/admin/logs/callrecord/"
PORTAL_LIST = "/portal/logs/callrecord/"
CHARTS = ("calls", "tokens", "usage", "cost", "error_rate")
EMPTY = "No calls match these filters"
CHART_SVG = 'class="chart" viewBox'


# --- the world -----------------------------------------------------------------------


@dataclass
class Side:
    account: Account
    owner: Any
    prod: ApiKey
    batch: ApiKey
    models: tuple[str, str]
    calls: list[CallRecord]


@dataclass
class World:
    a: Side
    b: Side
    start: datetime  # a whole hour; every call is within 30 hours after it

    @property
    def calls(self) -> list[CallRecord]:
        return [*self.a.calls, *self.b.calls]


def _side(slug: str, name: str, models: tuple[str, str], start: datetime, scale: int) -> Side:
    account = AccountFactory(name=name, slug=slug)
    owner = owner_of(account, username=f"stats-owner-{slug}")
    default, vip = GroupFactory(name="stats-default"), GroupFactory(name="stats-vip")
    prod = ApiKeyFactory(account=account, name=f"{slug}-prod-key", group=default)
    batch = ApiKeyFactory(account=account, name=f"{slug}-batch-key", group=vip)
    everyday, premium = models
    calls = [
        make_call(
            prod,
            model=everyday,
            created_at=start + timedelta(minutes=10),
            input_tokens=100 * scale,
            output_tokens=20 * scale,
            duration_ms=900,
            ttft_ms=100,
            usage="0.5",
            cost="0.00012",
        ),
        make_call(
            prod,
            model=everyday,
            created_at=start + timedelta(minutes=70),
            input_tokens=300 * scale,
            output_tokens=40 * scale,
            duration_ms=1_300,
            ttft_ms=300,
            usage="0.25",
            cost="0.00002",
        ),
        make_call(
            batch,
            model=premium,
            created_at=start + timedelta(minutes=130),
            status_code=429,
            error_reason="rate_limit_exceeded",
            input_tokens=50 * scale,
            output_tokens=0,
            duration_ms=40,
            ttft_ms=None,
            usage="0",
            cost="0",
        ),
        make_call(
            batch,
            model=premium,
            created_at=start + timedelta(hours=26),
            status_code=502,
            error_reason="upstream_unavailable",
            input_tokens=80 * scale,
            output_tokens=10 * scale,
            duration_ms=12_000,
            ttft_ms=2_000,
            usage="1.125",
            cost="0.0031",
        ),
    ]
    return Side(account, owner, prod, batch, models, calls)


@pytest.fixture
def world(db, clock) -> World:
    """Accounts A and B, two keys and two models each, no names in common.
    B's calls are the same times as A's plus 3 hours, with twice the tokens.
    ``start`` is the whole UTC hour two days before the test's instant."""
    start = (clock.now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    a = _side("stats-acme", "Stats Acme", ("acme-mini-model", "acme-large-model"), start, 1)
    b = _side(
        "stats-globex",
        "Stats Globex",
        ("globex-fast-model", "globex-smart-model"),
        start + timedelta(hours=3),
        2,
    )
    return World(a=a, b=b, start=start)


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(StaffUserFactory())
    return client


@pytest.fixture
def owner_a(world) -> Client:
    client = Client()
    client.force_login(world.a.owner)
    return client


def local(moment: datetime) -> str:
    """A datetime-local input value, in the current time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


# Where the world's hours and days fall in the site's zone moves with "now":
# the tests of buckets, the time range and the date drill-down run at these
# (besides the pinned instant the other tests run at).
at_bucket_edges = at_instants(
    "midnight UTC",
    "last minute of November",
    "last minute of Feb 29",
    "Berlin, 1 min after spring forward",
    "Berlin, 1 min before fall back",
    "St. John's, 1 min after fall back",
)


# --- reading the page ---------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
CONTEXT_ATTRS = ("data-chart", "data-top", "data-table")


class _Tables(HTMLParser):
    """Every <table>: the data-chart/-top/-table of its nearest marked ancestor, and
    its rows as lists of cell texts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.tables: list[tuple[str | None, list[list[str]]]] = []
        self.cell_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        attrs = dict(attrs)
        self.stack.append((tag, attrs))
        if tag == "table":
            marker = next(
                (a[name] for _, a in reversed(self.stack) for name in CONTEXT_ATTRS if name in a),
                None,
            )
            self.tables.append((marker, []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th") and self.tables:
            self.tables[-1][1][-1].append("")
            self.cell_depth += 1

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                closed = [t for t, _ in self.stack[index:]]
                self.cell_depth -= sum(1 for t in closed if t in ("td", "th"))
                del self.stack[index:]
                return

    def handle_data(self, data):
        if self.cell_depth > 0 and self.tables and self.tables[-1][1]:
            self.tables[-1][1][-1][-1] += data


def _cells_shown(rows_html: str) -> list[list[str]]:
    """The cell texts of a table's rows, as a browser shows them (whitespace kept)."""
    parser = _Tables()
    parser.feed(f"<table>{rows_html}</table>")
    parser.close()
    return parser.tables[0][1]


# Cell texts: anything, and often what HTML or the table's own joins could trip on.
_CELL_TEXT = st.one_of(st.text(), st.text(alphabet=st.sampled_from("09,.- <>&\"'\x00\x01")))


@given(st.lists(st.lists(_CELL_TEXT, min_size=1, max_size=4), max_size=6))
def test_a_charts_table_shows_every_cell_as_it_is_whatever_it_holds(rows):
    assert _cells_shown(chart_table_rows(_ChartRows(rows))) == rows


def test_a_charts_table_keeps_safe_html_in_a_cell_as_html():
    shown = chart_table_rows(_ChartRows([["2026-11-03", mark_safe("<b>12</b>"), "<i>"]]))
    assert shown == '<tr><th scope="row">2026-11-03</th><td><b>12</b></td><td>&lt;i&gt;</td></tr>'


@dataclass
class _ChartRows:
    rows: list[list[str]]


def tables(html: str) -> dict[str, list[list[str]]]:
    """Tables by their marker (chart slug, top list, "models"): header row first."""
    parser = _Tables()
    parser.feed(html)
    found = {}
    for marker, rows in parser.tables:
        if marker is not None:
            found[marker] = [[" ".join(cell.split()) for cell in row] for row in rows if row]
    return found


def totals(html: str) -> dict[str, str]:
    return {
        name: " ".join(unescape(re.sub(r"<[^>]+>", "", text)).split())
        for name, text in re.findall(r'<dd data-total="(\w+)">(.*?)</dd>', html, re.S)
    }


def messages(html: str) -> list[str]:
    block = re.search(r'<ul class="messagelist">(.*?)</ul>', html, re.S)
    if not block:
        return []
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", "", item)).split())
        for item in re.findall(r"<li[^>]*>(.*?)</li>", block.group(1), re.S)
    ]


def chart_sections(html: str) -> dict[str, str]:
    return dict(
        re.findall(
            r'<section class="stats-chart"[^>]*data-chart="(\w+)">(.*?)</section>', html, re.S
        )
    )


def number(text: str) -> int:
    return int(text.replace(",", ""))


def get(client: Client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response
    return response.content.decode()


def expected(calls: list[CallRecord]) -> dict[str, Any]:
    return {
        "calls": len(calls),
        "errors": sum(1 for c in calls if c.status_code >= 400),
        "input_tokens": sum(c.input_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
        "usage": sum((c.usage for c in calls), Decimal(0)),
        "cost": sum((c.cost for c in calls), Decimal(0)),
    }


def assert_numbers_match(html: str, calls: list[CallRecord]) -> None:
    """Totals and every chart's table add up to the sums of ``calls``."""
    want = expected(calls)
    shown = totals(html)
    assert number(shown["calls"]) == want["calls"]
    assert number(shown["errors"].split()[0]) == want["errors"]
    assert number(shown["input_tokens"]) == want["input_tokens"]
    assert number(shown["output_tokens"]) == want["output_tokens"]
    assert Decimal(shown["usage"]) == want["usage"]
    assert Decimal(shown["cost"]) == want["cost"]

    found = tables(html)
    body = {slug: found[slug][1:] for slug in CHARTS}
    assert sum(number(row[1]) for row in body["calls"]) == want["calls"]
    assert sum(number(row[1]) for row in body["tokens"]) == want["input_tokens"]
    assert sum(number(row[2]) for row in body["tokens"]) == want["output_tokens"]
    assert sum(Decimal(row[1]) for row in body["usage"]) == want["usage"]
    assert sum(Decimal(row[1]) for row in body["cost"]) == want["cost"]
    assert sum(number(row[2]) for row in body["error_rate"]) == want["errors"]

    models = {row[0]: row for row in found["models"][1:]}
    assert set(models) == {c.model for c in calls}
    for model, row in models.items():
        mine = [c for c in calls if c.model == model]
        assert number(row[1]) == len(mine)
        assert row[2] == f"{sum(c.input_tokens for c in mine) / len(mine):,.1f}"
        assert row[3] == f"{sum(c.output_tokens for c in mine) / len(mine):,.1f}"


# --- pages answer ----------------------------------------------------------------------------


@at_bucket_edges
def test_staff_page(staff, world):
    html = get(staff, ADMIN_STATS)
    assert "<h1>Usage stats</h1>" in html
    assert_numbers_match(html, world.calls)


def test_portal_page_shows_the_owners_account_only(owner_a, world):
    html = get(owner_a, PORTAL_STATS)
    assert "<h1>Usage stats</h1>" in html
    assert_numbers_match(html, world.a.calls)


def test_each_chart_is_an_svg_image_with_a_table_of_its_numbers(staff, world):
    html = get(staff, ADMIN_STATS)
    sections = chart_sections(html)
    assert set(sections) == set(CHARTS)
    for slug, section in sections.items():
        svg = re.search(r"<svg.*?</svg>", section, re.S).group(0)
        root = ET.fromstring(svg)
        assert root.get("role") == "img", slug
        assert root.get("aria-label"), slug
        assert "<table" in section, slug
    assert set(CHARTS) <= set(tables(html))


BAR = re.compile(r"M([\d.]+),([\d.]+)V([\d.]+)h([\d.]+)V[\d.]+z")
SVG_NS = "{http://www.w3.org/2000/svg}"


def chart_svg(html: str, slug: str) -> ET.Element:
    return ET.fromstring(re.search(r"<svg.*?</svg>", chart_sections(html)[slug], re.S).group(0))


def series_paths(root: ET.Element, kind: str) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG_NS}path") if kind in p.get("class").split()]


@at_bucket_edges
def test_each_bar_chart_draws_its_tables_numbers_one_path_per_series(staff, world):
    """One ``<path>`` per series, a rectangle in it per bucket with calls, as
    tall as the table's number says; hovering a column (few columns) shows it."""
    html = get(staff, ADMIN_STATS)
    found = tables(html)
    charts = {
        "calls": [(1, "Calls")],
        "usage": [(1, "Usage")],
        "cost": [(1, "Cost")],
        "tokens": [(1, "Input tokens"), (2, "Output tokens")],
    }
    for slug, columns in charts.items():
        root = chart_svg(html, slug)
        body = found[slug][1:]
        paths = series_paths(root, "chart-bar")
        assert len(paths) == len(columns), slug
        for path, (column, name) in zip(paths, columns, strict=True):
            values = [Decimal(row[column].replace(",", "")) for row in body]
            bars = BAR.findall(path.get("d"))
            assert len(bars) == sum(1 for v in values if v > 0), slug
            heights = [float(base) - float(top) for _, base, top, _ in bars]
            drawn = [v for v in values if v > 0]
            scale = max(heights) / float(max(drawn))  # the tallest bar: least rounding
            for height, value in zip(heights, drawn, strict=True):
                assert height == pytest.approx(float(value) * scale, abs=0.15), slug
            assert path.find(f"{SVG_NS}title").text.startswith(f"{name}: highest "), slug
    calls = found["calls"][1:]
    hover = [
        r.find(f"{SVG_NS}title").text
        for r in chart_svg(html, "calls").iter(f"{SVG_NS}rect")
        if "chart-hit" in (r.get("class") or "")
    ]
    assert hover == [f"{row[0]}: Calls {row[1]}" for row in calls]


def test_the_error_rate_is_one_line_through_the_buckets_with_calls(staff, world):
    html = get(staff, ADMIN_STATS)
    body = tables(html)["error_rate"][1:]
    (line,) = series_paths(chart_svg(html, "error_rate"), "chart-line")
    (dots,) = series_paths(chart_svg(html, "error_rate"), "chart-point")
    rates = [row[3] for row in body]
    # Runs of buckets with calls (a rate); "—" (no calls) breaks the line.
    with_calls = [len(list(run)) for has, run in itertools.groupby(r != "—" for r in rates) if has]
    drawn = [
        len(re.findall(r"[\d.]+,[\d.]+", part)) for part in re.findall(r"M[^M]+", line.get("d"))
    ]
    assert drawn == [n for n in with_calls if n > 1]
    # Few buckets: a dot on every rate.
    assert len(re.findall(r"M", dots.get("d"))) == sum(with_calls)
    assert sum(with_calls) > 1


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (6, ["00:00", "01:00", "02:00", "03:00", "04:00", "05:00"]),
        (30, ["Nov 02", *[""] * 11, "12:00", *[""] * 11, "Nov 03", *[""] * 5]),
        (
            24 * 30,
            [
                "" if i % 24 else f"{datetime(2026, 11, 2) + timedelta(hours=i):%b %d}"
                for i in range(24 * 30)
            ],
        ),
    ],
)
def test_hourly_time_axis_labels_hours_then_midnights(settings, hours, expected):
    from logs.admin.stats_page import tick_labels

    settings.TIME_ZONE = "UTC"
    first = datetime(2026, 11, 2, tzinfo=UTC)
    starts = [first + timedelta(hours=i) for i in range(hours)]
    assert tick_labels(starts, "hour") == expected
    days = [first + timedelta(days=i) for i in range(3)]
    assert tick_labels(days, "day") == ["Nov 02", "Nov 03", "Nov 04"]


def test_explanation_of_long_prompts_and_loaded_models(staff, world):
    html = get(staff, ADMIN_STATS)
    assert EXPLANATION in unescape(html)
    header = tables(html)["models"][0]
    assert header == [
        "Model",
        "Calls",
        "Avg input tokens / call",
        "Avg output tokens / call",
        "Avg duration",
        "p50 duration",
        "p95 duration",
        "Output speed",
    ]


def test_model_table_durations_and_speed(staff, world):
    html = get(staff, ADMIN_STATS, model="acme-mini-model")
    (row,) = tables(html)["models"][1:]
    # 900 ms and 1,300 ms; 20 + 40 output tokens over 800 + 1,000 ms of generation.
    assert row[4] == "1,100 ms"
    assert row[7] == f"{60 * 1000 / 1800:,.1f} tok/s"
    assert row[5].endswith(" ms") and row[6].endswith(" ms")


def test_anonymous_and_outsiders_are_sent_to_log_in(db, world):
    response = Client().get(ADMIN_STATS)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    outsider = Client()
    outsider.force_login(UserFactory())
    response = outsider.get(PORTAL_STATS)
    assert response.status_code == 302
    assert "/portal/login/" in response["Location"]


def test_staff_without_view_permission_is_refused(db, world):
    client = Client()
    client.force_login(StaffUserFactory(permissions=[]))
    assert client.get(ADMIN_STATS).status_code == 403


# --- filters ---------------------------------------------------------------------------------


def test_model_filter(staff, world):
    html = get(staff, ADMIN_STATS, model="acme-large-model")
    assert_numbers_match(html, [c for c in world.calls if c.model == "acme-large-model"])


def test_key_name_filter(staff, world):
    html = get(staff, ADMIN_STATS, key_name="stats-globex-prod-key")
    assert_numbers_match(html, [c for c in world.calls if c.api_key_id == world.b.prod.pk])


@at_bucket_edges
def test_time_range_filter(staff, world):
    start, end = world.start, world.start + timedelta(hours=4)
    html = get(staff, ADMIN_STATS, start=local(start), end=local(end))
    assert_numbers_match(html, [c for c in world.calls if start <= c.created_at < end])
    # The axis covers the whole range, hour by hour, empty hours included: four
    # hours, or five local hours in a zone whose offset is not whole hours.
    local_hours = bucket_starts(start, end - timedelta(microseconds=1), "hour")
    assert len(local_hours) in (4, 5)
    assert [row[0] for row in tables(html)["calls"][1:]] == [
        h.strftime("%Y-%m-%d %H:%M") for h in local_hours
    ]


def test_account_filter_for_staff(staff, world):
    html = get(staff, ADMIN_STATS, account=world.b.account.pk)
    assert_numbers_match(html, world.b.calls)


def test_filters_combine(owner_a, world):
    html = get(
        owner_a, PORTAL_STATS, model="acme-mini-model", end=local(world.start + timedelta(hours=1))
    )
    assert_numbers_match(html, world.a.calls[:1])


def test_bad_interval_gives_a_message_and_the_default(staff, world):
    html = get(staff, ADMIN_STATS, interval="fortnight")
    assert any("Interval “fortnight” is not one of: hour, day" in m for m in messages(html))
    assert tables(html)["calls"][0][0] == "Hour"  # the calls span about 30 hours
    assert_numbers_match(html, world.calls)


@pytest.mark.parametrize("interval, first_column", [("hour", "Hour"), ("day", "Day")])
@at_bucket_edges
def test_interval_is_not_rejected_as_a_lookup(staff, world, interval, first_column):
    html = get(staff, ADMIN_STATS, interval=interval)
    assert not messages(html)
    assert tables(html)["calls"][0][0] == first_column
    assert_numbers_match(html, world.calls)


@at_bucket_edges
def test_default_interval_is_days_beyond_three_days(staff, world):
    html = get(
        staff,
        ADMIN_STATS,
        start=local(world.start - timedelta(days=5)),
        end=local(world.start + timedelta(days=1)),
    )
    rows = tables(html)["calls"]
    assert rows[0][0] == "Day"
    assert len(rows) - 1 in (6, 7)  # six days, seven day buckets when not at midnight
    assert_numbers_match(
        html, [c for c in world.calls if c.created_at < world.start + timedelta(days=1)]
    )


@at_bucket_edges
def test_too_many_hours_fall_back_to_days(staff, world):
    html = get(
        staff,
        ADMIN_STATS,
        interval="hour",
        start=local(world.start - timedelta(hours=MAX_HOURLY_BUCKETS + 24)),
    )
    assert any("Too many hours" in m for m in messages(html))
    assert tables(html)["calls"][0][0] == "Day"
    assert_numbers_match(html, world.calls)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "yesterday-ish"},
        {"end": "2026-13-45"},
        {"start": "2026-11-28T10:00", "end": "2026-11-28T09:00"},
    ],
)
def test_bad_time_range_gives_a_message_and_no_numbers(staff, world, params):
    html = get(staff, ADMIN_STATS, **params)
    assert any(m.startswith("Time range") for m in messages(html))
    assert totals(html)["calls"] == "0"
    assert EMPTY in html
    assert CHART_SVG not in html
    assert 'data-table="models"' not in html
    for name in (*world.a.models, *world.b.models):
        assert f'data-model="{name}"' not in html


def test_unknown_choice_gives_a_message_and_no_numbers(owner_a, world):
    html = get(owner_a, PORTAL_STATS, model="globex-fast-model")
    assert any("is not one you can filter on here" in m for m in messages(html))
    assert totals(html)["calls"] == "0"
    assert EMPTY in html


@pytest.mark.parametrize(
    "params",
    [
        {"created_at__year": "twenty"},
        {"created_at__year": "9999"},
        {"created_at__year": "9999", "created_at__month": "12", "created_at__day": "31"},
        {"created_at__year": "9" * 40},
        {"created_at__year": "2026", "created_at__month": "13"},
    ],
)
def test_bad_date_drilldown_gives_a_message_and_no_numbers(staff, world, params):
    response = staff.get(ADMIN_STATS, params)
    assert response.status_code == 200
    html = response.content.decode()
    assert any(m.startswith("The date “created_at__year=") for m in messages(html))
    assert totals(html)["calls"] == "0"
    assert EMPTY in html
    assert CHART_SVG not in html


@at_bucket_edges
def test_date_drilldown_narrows_the_range(staff, world):
    day = timezone.localtime(world.a.calls[0].created_at).date()
    html = get(
        staff,
        ADMIN_STATS,
        created_at__year=day.year,
        created_at__month=day.month,
        created_at__day=day.day,
    )
    on_that_day = [c for c in world.calls if timezone.localtime(c.created_at).date() == day]
    assert_numbers_match(html, on_that_day)
    assert len(tables(html)["calls"]) - 1 in (23, 24, 25)  # a day drill-down: its hours


def test_empty_data_shows_the_empty_message(staff, db):
    html = get(staff, ADMIN_STATS)
    assert EMPTY in html
    assert CHART_SVG not in html
    assert totals(html)["calls"] == "0"


def test_range_without_calls_shows_the_empty_message(owner_a, world):
    html = get(
        owner_a,
        PORTAL_STATS,
        start=local(world.start - timedelta(days=10)),
        end=local(world.start - timedelta(days=9)),
    )
    assert EMPTY in html
    assert CHART_SVG not in html
    assert not messages(html)


# --- isolation -------------------------------------------------------------------------------


def b_names(world: World) -> list[str]:
    return [
        world.b.account.name,
        world.b.prod.name,
        world.b.batch.name,
        *world.b.models,
    ]


@pytest.mark.parametrize(
    "params",
    [{}, {"interval": "day"}, {"status": "server_error"}, {"key_name": "stats-acme-batch-key"}],
)
def test_owner_never_sees_another_accounts_keys_or_models(owner_a, world, params):
    html = get(owner_a, PORTAL_STATS, **params)
    for name in b_names(world):
        assert name not in html
    assert world.a.prod.name in html or params.get("key_name")


def test_owner_cannot_reach_another_account_by_parameter(owner_a, world):
    html = get(owner_a, PORTAL_STATS, account=world.b.account.pk)
    for name in b_names(world):
        assert name not in html
    # The portal's one account is the scope: the parameter is ignored or empties the page.
    assert number(totals(html)["calls"]) in (0, len(world.a.calls))


def test_top_keys_by_name_with_the_account_for_staff(staff, world):
    found = tables(get(staff, ADMIN_STATS))
    by_calls = found["keys-calls"]
    assert by_calls[0][:3] == ["#", "Key name", "Account"]
    keys = {(row[1], row[2]): number(row[3]) for row in by_calls[1:]}
    assert keys == {
        ("stats-acme-prod-key", "Stats Acme"): 2,
        ("stats-acme-batch-key", "Stats Acme"): 2,
        ("stats-globex-prod-key", "Stats Globex"): 2,
        ("stats-globex-batch-key", "Stats Globex"): 2,
    }
    by_cost = found["keys-cost"][1:]
    assert [row[1] for row in by_cost[:2]] == ["stats-acme-batch-key", "stats-globex-batch-key"]
    assert [Decimal(row[4]) for row in by_cost] == sorted(
        (Decimal(row[4]) for row in by_cost), reverse=True
    )


def test_top_keys_for_an_owner_have_no_account_column(owner_a, world):
    found = tables(get(owner_a, PORTAL_STATS))
    assert found["keys-calls"][0][:3] == ["#", "Key name", "Calls"]
    assert {row[1] for row in found["keys-calls"][1:]} == {
        "stats-acme-prod-key",
        "stats-acme-batch-key",
    }


def test_top_models_by_calls_and_by_cost(staff, world):
    found = tables(get(staff, ADMIN_STATS))
    by_calls = {row[1]: number(row[2]) for row in found["models-calls"][1:]}
    assert by_calls == {name: 2 for side in (world.a, world.b) for name in side.models}
    by_cost = [row[1] for row in found["models-cost"][1:]]
    assert by_cost[0] == "acme-large-model"  # 0.0031, the same as globex-smart-model
    assert set(by_cost[:2]) == {"acme-large-model", "globex-smart-model"}


def test_same_key_name_in_two_accounts_is_two_rows_for_staff(staff, world):
    other = AccountFactory(name="Stats Initech", slug="stats-initech")
    twin = ApiKeyFactory(account=other, name="stats-acme-prod-key", group=world.a.prod.group)
    make_call(twin, model="acme-mini-model", created_at=world.start + timedelta(minutes=5))
    rows = tables(get(staff, ADMIN_STATS))["keys-calls"][1:]
    twins = sorted((row[2], number(row[3])) for row in rows if row[1] == "stats-acme-prod-key")
    assert twins == [("Stats Acme", 2), ("Stats Initech", 1)]


# --- navigation ------------------------------------------------------------------------------


def test_list_links_to_stats_with_its_filters(staff, owner_a, world):
    html = get(staff, ADMIN_LIST, model="acme-mini-model")
    assert "Export CSV" in html
    assert f'href="{ADMIN_STATS}?model=acme-mini-model"' in html
    html = get(owner_a, PORTAL_LIST, key_name="stats-acme-prod-key")
    assert "Export CSV" in html
    assert f'href="{PORTAL_STATS}?key_name=stats-acme-prod-key"' in html


def test_stats_links_back_to_the_list_without_the_interval(owner_a, world):
    html = get(owner_a, PORTAL_STATS, model="acme-mini-model", interval="day")
    assert f'href="{PORTAL_LIST}?model=acme-mini-model" class="viewlink" data-link="calls"' in html
    # A chosen interval stays when another filter is picked in the sidebar.
    assert "?interval=day&amp;key_name=stats-acme-batch-key&amp;model=acme-mini-model" in html
    # The interval switch keeps the filters.
    assert 'href="?interval=hour&amp;model=acme-mini-model" data-interval="hour"' in html


def test_time_range_form_keeps_the_other_filters_as_plain_values(staff, world):
    html = get(staff, ADMIN_STATS, model="acme-mini-model")
    assert '<input type="hidden" name="model" value="acme-mini-model">' in html
    assert "[&#x27;" not in html


# --- buckets ---------------------------------------------------------------------------------


def test_default_interval_is_hours_up_to_three_days():
    start = datetime(2026, 11, 1, tzinfo=timezone.get_current_timezone())
    assert default_interval(start, start + timedelta(days=3)) == "hour"
    assert default_interval(start, start + timedelta(days=3, seconds=1)) == "day"


def test_hour_buckets_follow_daylight_saving_time():
    with timezone.override("Europe/Berlin"):
        zone = timezone.get_current_timezone()
        # 29 March 2026: clocks go from 02:00 to 03:00; the day has 23 hours.
        first = datetime(2026, 3, 29, 0, 0, tzinfo=zone)
        last = datetime(2026, 3, 29, 23, 59, tzinfo=zone)
        hours = bucket_starts(first, last, "hour")
        assert len(hours) == 23
        assert [h.hour for h in hours[:4]] == [0, 1, 3, 4]
        days = bucket_starts(first, first + timedelta(days=2), "day")
        assert [d.date() for d in days] == [date(2026, 3, 29), date(2026, 3, 30), date(2026, 3, 31)]
        assert all((d.hour, d.minute) == (0, 0) for d in days)


@at_bucket_edges
def test_fill_buckets_puts_zeros_where_no_calls(world):
    calls = CallRecord.objects.filter(account=world.a.account)
    rows = usage_stats(calls, interval="hour")
    filled = fill_buckets(rows, world.start, world.start + timedelta(hours=29), "hour")
    assert len(filled) == 30
    counts = [row.calls if row else 0 for _, row in filled]
    assert counts[:4] == [1, 1, 1, 0]
    assert counts[26] == 1
    assert sum(counts) == 4
    # In the current time zone, hour after hour.
    starts = [start for start, _ in filled]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))


def test_fill_buckets_with_one_bucket_and_with_none(world):
    calls = CallRecord.objects.filter(account=world.a.account)
    rows = usage_stats(calls, interval="day")
    one = fill_buckets(rows[:1], world.start, world.start, "day")
    assert len(one) == 1
    assert one[0][1] == rows[0]
    assert fill_buckets([], world.start, world.start - timedelta(days=1), "day") == []


def test_index_pages_link_to_the_stats(staff, owner_a, world):
    assert f'href="{ADMIN_STATS}" data-link="stats"' in get(staff, "/admin/")
    assert f'href="{PORTAL_STATS}" data-link="stats"' in get(owner_a, "/portal/")


def test_a_time_range_that_no_call_can_fall_in_shows_no_calls_not_an_error(staff_client, db):
    """A start after the drill-down's whole year: the two select nothing together."""
    response = staff_client.get(
        "/admin/logs/callrecord/stats/?start=2026-11-19T21:30:00%2B00:00&created_at__year=2025"
    )
    assert response.status_code == 200
    assert response.context["stats"].totals.calls == 0
    assert scoped_usage_stats(
        StaffUserFactory(),
        filters=CallFilters(
            start=datetime(2026, 1, 2, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC)
        ),
        interval=None,
    ) == usage_stats(CallRecord.objects.none(), interval=None)


# --- a range of decades -------------------------------------------------------------------


@pytest.fixture
def decades(db) -> tuple[Side, list[CallRecord]]:
    """One account whose calls begin on the first day ingest accepts (2000-01-01 UTC)
    and go on in 2026: a default time axis of nearly 10,000 days."""
    account = AccountFactory(name="Decades", slug="decades")
    owner = owner_of(account, username="decades-owner")
    key = ApiKeyFactory(account=account, name="decades-key", group=GroupFactory(name="d"))
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    moments = [datetime(2000, 1, 1, 0, 30, tzinfo=UTC), datetime(2025, 11, 2, 9, 0, tzinfo=UTC)]
    moments += [now - timedelta(days=d) for d in (40, 3, 0)]
    records = [record_dict(key, created_at=moment, model="decades-model") for moment in moments]
    ingest_calls(records, now=now)
    calls = list(CallRecord.objects.filter(account=account).order_by("created_at"))
    side = Side(account, owner, key, key, ("decades-model", "decades-model"), calls)
    return side, calls


@pytest.mark.parametrize(
    "params",
    [{}, {"interval": "day"}, {"interval": "hour"}, {"start": "1990-01-01T00:00"}],
    ids=["default", "days", "hours", "explicit-wide-range"],
)
def test_a_range_of_decades_draws_a_year_of_days_and_says_so(decades, params):
    side, calls = decades
    client = Client()
    client.force_login(side.owner)

    response = client.get(PORTAL_STATS, params)

    assert response.status_code == 200
    assert len(response.content) < 1_500_000  # was 17.8 MB
    html = response.content.decode()
    rows = tables(html)["calls"][1:]
    assert len(rows) == MAX_DAILY_BUCKETS
    last_day = timezone.localtime(calls[-1].created_at).date()
    assert rows[-1][0] == last_day.isoformat()
    assert rows[0][0] == (last_day - timedelta(days=MAX_DAILY_BUCKETS - 1)).isoformat()
    # The charts hold the calls of their days; the totals and tables all of them.
    drawn = [c for c in calls if timezone.localtime(c.created_at).date().isoformat() >= rows[0][0]]
    assert sum(number(row[1]) for row in rows) == len(drawn) == 3
    assert number(totals(html)["calls"]) == len(calls) == 5
    shortened = [m for m in messages(html) if "days" in m and "charts show" in m]
    assert len(shortened) == 1, messages(html)
    assert f"the last {MAX_DAILY_BUCKETS} days" in shortened[0]
    assert "2000-01-01" in shortened[0]  # where the calls begin
    assert "narrow the time range" in shortened[0].lower()


def test_a_wide_range_with_recent_calls_only_is_not_shortened(decades):
    """A selected range of years whose calls span weeks: the axis covers the calls."""
    side, calls = decades
    client = Client()
    client.force_login(side.owner)

    html = get(client, PORTAL_STATS, start="2026-01-01T00:00", end="2030-01-01T00:00")

    assert not [m for m in messages(html) if "charts show" in m]
    assert_numbers_match(html, calls[2:])
    rows = tables(html)["calls"][1:]
    assert rows[0][0] == timezone.localtime(calls[2].created_at).date().isoformat()
    assert rows[-1][0] == timezone.localtime(calls[-1].created_at).date().isoformat()


def test_the_stats_of_one_call_found_by_its_request_id_span_that_call(staff_client, db):
    """A request id is read from raw calls alone: the chart covers the call's day."""
    key = ApiKeyFactory()
    moment = datetime(2026, 11, 3, 8, 30, tzinfo=UTC)
    record = record_dict(key, created_at=moment)
    ingest_calls([record, record_dict(key, created_at=moment - timedelta(days=9))], now=moment)

    response = staff_client.get(ADMIN_STATS, {"q": record["request_id"], "interval": "day"})

    assert response.status_code == 200
    stats = response.context["stats"]
    assert stats.totals.calls == 1
    assert [row[0] for row in stats.charts[0].rows] == ["2026-11-03"]
