"""The usage stats page: what it shows, computed from one queryset.

The admin view (``CallRecordAdmin.stats_view``) hands in the call list's
filtered, scoped queryset (``ChangeList.queryset``) and the time range its
filters selected; everything here is a sum over that queryset, so the page can
never show a call the list would not. Charts are drawn by ``logs.admin.charts``;
each comes with a table of the same numbers.

Time buckets are hours or days in the current time zone, the same buckets
``usage_stats`` groups by; buckets without calls are filled with zeros so the
time axis has no gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.safestring import SafeString

from accounts.admin_lists import quoted
from logs.admin import charts
from logs.admin.formatting import decimal, integer, milliseconds, per_call, rate, tokens_per_second
from logs.periods import bucket_count, bucket_starts
from logs.read.stats import STATS_INTERVALS, StatsRow, sum_stats_rows
from logs.read.stats_sources import KeyUsage, RawCallStats, ScopedCallStats

INTERVAL_VAR = "interval"


INTERVAL_LABELS = {"hour": "Per hour", "day": "Per day"}


# The default interval: hours for a range of up to three days, else days.
HOURLY_UP_TO = timedelta(days=3)


# Beyond this many hours an hourly chart is a smear: days instead.
MAX_HOURLY_BUCKETS = 24 * 31


# At most this many days on a chart: a year. Beyond that the time axis covers the
# calls in the selected range only and, if they still span more, their last year (a
# page drawing all of 26 years of days was 17.8 MB).
MAX_DAILY_BUCKETS = 366


TOP = 10


# The sums the time charts draw (``time_charts``): a month of hours reads only these.
CHART_SUMS = ("calls", "errors", "input_tokens", "output_tokens", "usage", "cost")


EXPLANATION = (
    "A long prompt shows as many input tokens per call with a long duration but a normal "
    "output speed; a loaded model shows as a low output speed or a high p95 duration for "
    "similar token counts."
)


def default_interval(first: datetime, last: datetime) -> str:
    """Hours when the range is at most three days long, else days."""
    return "hour" if last - first <= HOURLY_UP_TO else "day"


def fill_buckets(
    rows: Sequence[StatsRow], first: datetime, last: datetime, interval: str
) -> list[tuple[datetime, StatsRow | None]]:
    """One entry per bucket from ``first`` to ``last`` (widened to take in every
    row), with the row for that bucket or ``None`` where there were no calls."""
    by_instant = {row.bucket.astimezone(UTC): row for row in rows if row.bucket is not None}
    if by_instant:
        first = min(first, min(by_instant))
        last = max(last, max(by_instant))
    return [
        (start, by_instant.get(start.astimezone(UTC)))
        for start in bucket_starts(first, last, interval)
    ]


def full_labels(starts: Sequence[datetime], interval: str) -> list[str]:
    """Each bucket's name, in the table and where hovering shows a value."""
    zone = timezone.get_current_timezone()
    local = [start.astimezone(zone) for start in starts]
    if interval != "hour":
        return [moment.strftime("%Y-%m-%d") for moment in local]
    labels = []
    for moment in local:
        label = moment.strftime("%Y-%m-%d %H:%M")
        if moment.replace(fold=1 - moment.fold).utcoffset() != moment.utcoffset():
            # The hour a daylight-saving change repeats: say which of the two it is.
            label += f" {moment.tzname()}"
        labels.append(label)
    return labels


def tick_labels(starts: Sequence[datetime], interval: str) -> list[str]:
    """The time axis labels, one per bucket, empty where a bucket gets no tick:
    the chart thins what is left to what fits. Hours: each hour within a day,
    midnights (the date) and noons over a few days, midnights only beyond."""
    zone = timezone.get_current_timezone()
    local = [start.astimezone(zone) for start in starts]
    if interval != "hour":
        return [moment.strftime("%b %d") for moment in local]
    several_days = bool(local) and local[0].date() != local[-1].date()
    hours: set[int] | None = None  # every hour
    if len(local) > 4 * 24:
        hours = {0}
    elif len(local) > 24:
        hours = {0, 12}
    labels = []
    for moment in local:
        if hours is not None and (moment.hour not in hours or moment.minute):
            labels.append("")
        elif several_days and moment.hour == 0 and not moment.minute:
            labels.append(moment.strftime("%b %d"))
        else:
            labels.append(moment.strftime("%H:%M"))
    return labels


def selected_time_range(changelist) -> tuple[datetime | None, datetime | None]:
    """The [start, end) the call list's filters select: the time range filter
    and the date drill-down, whichever is narrower at each end."""
    from logs.admin.filters import TimeRangeFilter

    starts, ends = [], []
    for spec in changelist.filter_specs:
        if isinstance(spec, TimeRangeFilter) and not spec.error:
            starts.append(spec.start)
            ends.append(spec.end)
    if changelist.date_range is not None:  # the drill-down, checked by the list
        starts.append(changelist.date_range[0])
        ends.append(changelist.date_range[1])
    start = max((s for s in starts if s is not None), default=None)
    end = min((e for e in ends if e is not None), default=None)
    return start, end


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = True


@dataclass
class Chart:
    """A chart and the table of its numbers (``rows`` are display strings)."""

    slug: str
    title: str
    svg: SafeString
    columns: list[Column]
    rows: list[list[str]]


@dataclass
class Ranked:
    """One line of a top-10 table."""

    name: str
    detail: str  # the account, for keys on the staff site
    calls: int
    cost: Decimal
    share: float  # of the ranking measure's total, 0..1
    query: dict[str, str]  # filter parameters that narrow the page to it
    url: str = ""  # this page's query string with ``query`` applied (set by the view)


@dataclass(frozen=True)
class ModelSpeed:
    """One line of the per-model table, formatted for display."""

    name: str
    calls: str
    avg_input_tokens: str
    avg_output_tokens: str
    avg_duration: str
    p50: str
    p95: str
    speed: str

    @classmethod
    def of(cls, row: StatsRow) -> ModelSpeed:
        return cls(
            name=row.key or "",
            calls=integer(row.calls),
            avg_input_tokens=per_call(row.input_tokens, row.calls),
            avg_output_tokens=per_call(row.output_tokens, row.calls),
            avg_duration=milliseconds(row.average_duration_ms),
            p50=milliseconds(row.duration_percentile(0.5)),
            p95=milliseconds(row.duration_percentile(0.95)),
            speed=tokens_per_second(row.output_tokens_per_second),
        )


@dataclass(frozen=True)
class ModelCaching:
    """One line of the per-model token accounting table, formatted for display."""

    name: str
    input_tokens: str
    cached_input_tokens: str
    cached_share: str
    cache_write_tokens: str
    reasoning_tokens: str
    cache_savings: str

    @classmethod
    def of(cls, row: StatsRow) -> ModelCaching:
        return cls(
            name=row.key or "",
            input_tokens=integer(row.input_tokens),
            cached_input_tokens=integer(row.cached_input_tokens),
            cached_share=rate(row.cached_input_share),
            cache_write_tokens=integer(row.cache_write_tokens),
            reasoning_tokens=integer(row.reasoning_tokens),
            cache_savings=decimal(row.cache_savings),
        )


@dataclass
class UsageStats:
    interval: str
    totals: StatsRow
    first: datetime | None = None
    last: datetime | None = None
    charts: list[Chart] = field(default_factory=list)
    model_speed: list[ModelSpeed] = field(default_factory=list)
    model_caching: list[ModelCaching] = field(default_factory=list)
    top_models_by_calls: list[Ranked] = field(default_factory=list)
    top_models_by_cost: list[Ranked] = field(default_factory=list)
    top_keys_by_calls: list[Ranked] = field(default_factory=list)
    top_keys_by_cost: list[Ranked] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def has_calls(self) -> bool:
        return self.totals.calls > 0

    @property
    def has_token_parts(self) -> bool:
        """Whether any call reported cache or reasoning tokens (else no table of them)."""
        totals = self.totals
        return bool(
            totals.cached_input_tokens or totals.cache_write_tokens or totals.reasoning_tokens
        )

    @property
    def cached_share(self) -> str:
        return rate(self.totals.cached_input_share)

    @property
    def cache_savings(self) -> str:
        return decimal(self.totals.cache_savings)

    @property
    def interval_label(self) -> str:
        return INTERVAL_LABELS[self.interval]

    @property
    def p50(self) -> str:
        return milliseconds(self.totals.duration_percentile(0.5))

    @property
    def p95(self) -> str:
        return milliseconds(self.totals.duration_percentile(0.95))


def build_usage_stats(
    source: RawCallStats | ScopedCallStats,
    *,
    requested_interval: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    keys_with_account: bool = False,
) -> UsageStats:
    """Everything the stats page shows for the calls ``source`` answers for
    (already scoped and filtered: ``ScopedCallStats`` reads rollups,
    ``RawCallStats`` a queryset).

    ``start`` (inclusive) and ``end`` (exclusive) are the time range the
    filters selected, if any: the time axis covers it even where it has no
    calls. ``requested_interval`` is the ``interval`` parameter as given; a
    bad one falls back to the default with a message in ``messages``.
    """
    messages = []
    requested = (requested_interval or "").strip()
    if requested and requested not in STATS_INTERVALS:
        messages.append(
            f"Interval {quoted(requested)} is not one of: {', '.join(STATS_INTERVALS)}. "
            "Showing the default for the selected range instead."
        )
        requested = ""

    # The totals are the per-model rows added up: one read fewer than asking for both.
    models = sorted(source.usage_stats(interval=None, group_by="model"), key=_by_calls)
    totals = sum_stats_rows(models) if models else source.usage_stats(interval=None)[0]
    if not totals.calls:
        return UsageStats(interval=requested or "hour", totals=totals, messages=messages)

    extent_first, extent_last = source.extent()
    first = start or extent_first
    last = end - timedelta(microseconds=1) if end else extent_last
    interval = requested or default_interval(first, last + timedelta(microseconds=1))
    if interval == "hour" and bucket_count(first, last, "hour") > MAX_HOURLY_BUCKETS:
        messages.append(
            f"Too many hours for an hourly chart (more than {MAX_HOURLY_BUCKETS:,}): "
            "showing days. Narrow the time range to see hours."
        )
        interval = "day"
    series_source = source
    if interval == "day" and bucket_count(first, last, "day") > MAX_DAILY_BUCKETS:
        first, last = extent_first, extent_last
        days = bucket_count(first, last, "day")
        if days > MAX_DAILY_BUCKETS:
            last_day = timezone.localtime(last).date()
            first_day = last_day - timedelta(days=MAX_DAILY_BUCKETS - 1)
            since = timezone.localtime(extent_first)
            messages.append(
                f"These calls span {days:,} days, from {since:%Y-%m-%d}: "
                f"the charts show the last {MAX_DAILY_BUCKETS} days ({first_day:%Y-%m-%d} to "
                f"{last_day:%Y-%m-%d}); the totals and the tables of models and keys cover them "
                f"all. To chart earlier days, narrow the time range to at most "
                f"{MAX_DAILY_BUCKETS} days."
            )
            first = timezone.make_aware(datetime.combine(first_day, time.min))
            series_source = source.since(first)

    # The time charts show no percentiles: the series is read without histograms.
    series = fill_buckets(
        series_source.usage_stats(interval=interval, histogram=False, sums=CHART_SUMS),
        first,
        last,
        interval,
    )
    return UsageStats(
        interval=interval,
        totals=totals,
        first=first,
        last=last,
        charts=time_charts(series, interval),
        model_speed=[ModelSpeed.of(row) for row in models],
        model_caching=[ModelCaching.of(row) for row in models],
        top_models_by_calls=[_ranked_model(row, row.calls, totals.calls) for row in models[:TOP]],
        top_models_by_cost=[
            _ranked_model(row, row.cost, totals.cost)
            for row in sorted(models, key=lambda r: (-r.cost, -r.calls, r.key or ""))[:TOP]
        ],
        top_keys_by_calls=[
            _ranked_key(key, key.calls, totals.calls, keys_with_account)
            for key in source.top_keys(order_by="calls", limit=TOP)
        ],
        top_keys_by_cost=[
            _ranked_key(key, key.cost, totals.cost, keys_with_account)
            for key in source.top_keys(order_by="cost", limit=TOP)
        ],
        messages=messages,
    )


def _by_calls(row: StatsRow):
    return (-row.calls, row.key or "")


def _share(part, whole) -> float:
    return float(part / whole) if whole else 0.0


def _ranked_model(row: StatsRow, measure, total) -> Ranked:
    name = row.key or ""
    return Ranked(
        name=name,
        detail="",
        calls=row.calls,
        cost=row.cost,
        share=_share(measure, total),
        query={"model": name},
    )


def _ranked_key(key: KeyUsage, measure, total, with_account: bool) -> Ranked:
    query = {"key_name": key.key_name}
    if with_account:
        query["account"] = str(key.account_id)
    return Ranked(
        name=key.key_name,
        detail=key.account_name if with_account else "",
        calls=key.calls,
        cost=key.cost,
        share=_share(measure, total),
        query=query,
    )


def time_charts(series: list[tuple[datetime, StatsRow | None]], interval: str) -> list[Chart]:
    """Calls, tokens (input and output), usage, cost and error rate per bucket."""
    starts = [start for start, _ in series]
    rows = [row for _, row in series]
    labels = full_labels(starts, interval)
    ticks = tick_labels(starts, interval)
    unit = "Hour" if interval == "hour" else "Day"

    def values(measure: Callable[[StatsRow], object], empty=0) -> list:
        return [empty if row is None else measure(row) for row in rows]

    calls = values(lambda r: r.calls)
    errors = values(lambda r: r.errors)
    input_tokens = values(lambda r: r.input_tokens)
    output_tokens = values(lambda r: r.output_tokens)
    usage = values(lambda r: r.usage, Decimal(0))
    cost = values(lambda r: r.cost, Decimal(0))
    error_rate = values(lambda r: r.error_rate, None)

    def table(*columns: tuple[str, list, Callable]) -> tuple[list[Column], list[list[str]]]:
        head = [Column(unit, numeric=False), *(Column(title) for title, _, _ in columns)]
        body = [
            [label, *(fmt(column[i]) for _, column, fmt in columns)]
            for i, label in enumerate(labels)
        ]
        return head, body

    per = "hour" if interval == "hour" else "day"
    return [
        Chart(
            "calls",
            f"Calls per {per}",
            charts.bar_chart(
                list(zip(labels, calls, strict=True)),
                title=f"Calls per {per}",
                series_name="Calls",
                value_format=integer,
                tick_labels=ticks,
                integer=True,
            ),
            *table(("Calls", calls, integer)),
        ),
        Chart(
            "tokens",
            f"Tokens per {per}",
            charts.stacked_bar_chart(
                labels,
                [
                    charts.Series("Input tokens", input_tokens, "chart-series-1"),
                    charts.Series("Output tokens", output_tokens, "chart-series-2"),
                ],
                title=f"Tokens per {per}",
                value_format=integer,
                tick_labels=ticks,
                integer=True,
            ),
            *table(
                ("Input tokens", input_tokens, integer), ("Output tokens", output_tokens, integer)
            ),
        ),
        Chart(
            "usage",
            f"Usage per {per}",
            charts.bar_chart(
                list(zip(labels, usage, strict=True)),
                title=f"Usage per {per}",
                series_name="Usage",
                value_format=decimal,
                tick_labels=ticks,
                css_class="chart-series-3",
            ),
            *table(("Usage", usage, decimal)),
        ),
        Chart(
            "cost",
            f"Cost per {per} (USD)",
            charts.bar_chart(
                list(zip(labels, cost, strict=True)),
                title=f"Cost per {per} (USD)",
                series_name="Cost",
                value_format=decimal,
                tick_labels=ticks,
                css_class="chart-series-4",
            ),
            *table(("Cost (USD)", cost, decimal)),
        ),
        Chart(
            "error_rate",
            f"Error rate per {per}",
            charts.line_chart(
                labels,
                [charts.Series("Error rate", error_rate, "chart-series-error")],
                title=f"Error rate per {per}",
                value_format=charts.percent,
                axis_format=charts.percent,
                tick_labels=ticks,
                axis_at_least=0.01,
            ),
            *table(
                ("Calls", calls, integer),
                ("Errors", errors, integer),
                ("Error rate", error_rate, rate),
            ),
        ),
    ]
