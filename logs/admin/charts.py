"""Small server-rendered SVG charts (no JavaScript, nothing from a CDN).

Each function returns one ``<svg role="img">`` as a ``SafeString``: axes with
value ticks, an ``aria-label`` that says what the chart shows, and one
``<path>`` per series (a subpath per bar, or per run of a line), with a
``<title>`` naming the series and its peak. A month of hours is 720 columns:
an element per bar made pages of megabytes. Where the columns are few
(``HOVER_COLUMNS``), hovering one shows its exact values. Every
piece of text is escaped here, so labels may come straight from user data (a
model called ``<script>`` is drawn as text). Colours are CSS classes
(``chart-*``, see ``logs/static/logs/calls.css``) that read the admin's CSS
variables, so dark mode works.

The charts are pictures of numbers the page also shows in a table; they are
not the only place a number can be read. No data at all gives a short
paragraph (``empty_text``) instead of an empty frame.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.safestring import SafeData, SafeString, mark_safe


def _html(template: str, *args) -> SafeString:
    """``format_html`` without its per-argument lazy-string and ``__html__``
    checks (a chart has hundreds of elements): the same escaping, the same text."""
    return SafeString(
        template.format(*(a if isinstance(a, SafeData) else html.escape(str(a)) for a in args))
    )


def _escape(text: str) -> str:
    """What ``_html`` does to one text argument."""
    return html.escape(text)


Number = int | float | Decimal
Formatter = Callable[[Number], str]

EMPTY_TEXT = "No calls match these filters."

# Geometry, in viewBox units. The SVG scales to its container's width.
WIDTH = 640
HEIGHT = 240
MARGIN_LEFT = 58
MARGIN_RIGHT = 14
MARGIN_TOP = 26
MARGIN_BOTTOM = 30
FONT_SIZE = 12
CHAR_WIDTH = 6.6  # rough width of one character at FONT_SIZE, for spacing tick labels
MAX_BAR_WIDTH = 48
# Up to this many columns (four days of hours, three months of days) hovering a
# column shows its values; beyond, the table beside the chart has them.
HOVER_COLUMNS = 96


@dataclass(frozen=True)
class Series:
    """One named row of values (``None``: no value, e.g. an error rate without calls)."""

    name: str
    values: Sequence[Number | None]
    css_class: str = "chart-series-1"


# --- numbers ----------------------------------------------------------------------


def compact_number(value: Number) -> str:
    """A short label for an axis tick: 950, 1.2k, 3.4M, 0.0012."""
    number = float(value)
    if number == 0:
        return "0"
    magnitude = abs(number)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return _significant(number / limit) + suffix
    return _significant(number)


def _significant(number: float, digits: int = 3) -> str:
    text = format(Decimal(f"{number:.{digits}g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def percent(value: Number) -> str:
    """A ratio (0.125) as a percentage (12.5%)."""
    return f"{_significant(float(value) * 100, 3)}%"


def nice_ticks(maximum: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 up to at least ``maximum``, 1, 2, 2.5 or 5 (x 10^k) apart."""
    if not math.isfinite(maximum) or maximum <= 0:
        return [0.0, 1.0]
    raw_step = maximum / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(
        power * factor for factor in (1, 2, 2.5, 5, 10) if power * factor >= raw_step * 0.999
    )
    if integer:
        step = max(1.0, float(math.ceil(step)))
    steps = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 12) for i in range(steps + 1)]


# --- the charts ---------------------------------------------------------------------


def bar_chart(
    points: Sequence[tuple[str, Number]],
    *,
    title: str,
    series_name: str | None = None,
    value_format: Formatter = str,
    axis_format: Formatter = compact_number,
    tick_labels: Sequence[str] | None = None,
    integer: bool = False,
    css_class: str = "chart-series-1",
    empty_text: str = EMPTY_TEXT,
) -> SafeString:
    """One bar per ``(label, value)`` point."""
    labels = [label for label, _ in points]
    series = Series(series_name or title, [value for _, value in points], css_class)
    return stacked_bar_chart(
        labels,
        [series],
        title=title,
        value_format=value_format,
        axis_format=axis_format,
        tick_labels=tick_labels,
        integer=integer,
        empty_text=empty_text,
    )


def stacked_bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    value_format: Formatter = str,
    axis_format: Formatter = compact_number,
    tick_labels: Sequence[str] | None = None,
    integer: bool = False,
    empty_text: str = EMPTY_TEXT,
) -> SafeString:
    """Bars of several series stacked on each other, one column per label.

    Each series is one ``<path>``: a closed rectangle (a subpath) per column
    where its value is above zero, sitting on the series below it."""
    _check_lengths(labels, series, tick_labels)
    if not labels:
        return _empty(empty_text)
    # Exact sums for the description; floats, once per value, for the drawing.
    totals = [sum(_or_zero(s.values[i]) for s in series) for i in range(len(labels))]
    numbers = [[_number(v) for v in s.values] for s in series]
    heights = [sum(column) for column in zip(*numbers, strict=True)]
    frame = _Frame(len(labels), nice_ticks(max(heights), integer=integer))
    parts = [frame.grid(axis_format), frame.x_ticks(tick_labels or labels)]
    # Where each column's next series starts, in viewBox units (rounded once, so
    # stacked rectangles meet exactly).
    bases = [_f(frame.bottom)] * len(labels)
    running = [0.0] * len(labels)
    columns = [frame.bar_x(i) for i in range(len(labels))]
    xs = [_f(x) for x, _ in columns]
    widths = [_f(width) for _, width in columns]
    for s, floats in zip(series, numbers, strict=True):
        subpaths = []
        for i, number in enumerate(floats):
            if number <= 0:
                continue
            running[i] += number
            top = _f(frame.y(running[i]))
            subpaths.append(f"M{xs[i]},{bases[i]}V{top}h{widths[i]}V{bases[i]}z")
            bases[i] = top
        parts.append(_series_path("chart-bar", s, floats, subpaths, labels, value_format))
    # Over the bars, so hovering a bar shows its column's values.
    parts.extend(frame.hit_areas(labels, series, lambda v: value_format(_or_zero(v))))
    kind = "stacked bar chart" if len(series) > 1 else "bar chart"
    return _svg(title, _describe(kind, title, labels, series, totals, value_format), parts, series)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    value_format: Formatter = str,
    axis_format: Formatter = compact_number,
    tick_labels: Sequence[str] | None = None,
    axis_at_least: float = 0.0,
    empty_text: str = EMPTY_TEXT,
) -> SafeString:
    """Lines through the values; ``None`` leaves a gap. A lone value is a dot.

    Each series is one ``<path class="chart-line">`` (a subpath per run of
    present values) and one ``<path class="chart-point">`` of dots: on every
    value when the columns are few enough to tell apart, else on lone values
    only (a line cannot show those).

    ``axis_at_least`` keeps small values small: an error rate of 0.2% on an
    axis that reaches at least 1% does not fill the whole height."""
    _check_lengths(labels, series, tick_labels)
    present = [_number(v) for s in series for v in s.values if v is not None]
    if not labels or not present:
        return _empty(empty_text)
    frame = _Frame(len(labels), nice_ticks(max(max(present), axis_at_least)))
    parts = [frame.grid(axis_format), frame.x_ticks(tick_labels or labels)]
    every_point = len(labels) <= HOVER_COLUMNS
    for s in series:
        lines, dots = [], []
        floats = [_number(v) for v in s.values]
        for run in _runs(s.values):
            points = [f"{_f(frame.center(i))},{_f(frame.y(floats[i]))}" for i in run]
            if len(run) > 1:
                lines.append(f"M{points[0]}L{' '.join(points[1:])}")
            if every_point or len(run) == 1:
                # A zero-length subpath with round caps is drawn as a dot.
                dots.extend(f"M{point}h0" for point in points)
        parts.append(_series_path("chart-line", s, floats, lines, labels, value_format))
        if dots:
            parts.append(_series_path("chart-point", s, floats, dots, labels, value_format))
    parts.extend(frame.hit_areas(labels, series, lambda v: "—" if v is None else value_format(v)))
    values = [
        max((v for v in column if v is not None), default=None)
        for column in zip(*(s.values for s in series), strict=True)
    ]
    description = _describe("line chart", title, labels, series, values, value_format)
    return _svg(title, description, parts, series)


# --- drawing ------------------------------------------------------------------------


class _Frame:
    """Where things go: the plot area inside the margins, and the value scale."""

    def __init__(self, count: int, ticks: list[float]):
        self.count = count
        self.ticks = ticks
        self.top_value = ticks[-1] or 1.0
        self.left = MARGIN_LEFT
        self.right = WIDTH - MARGIN_RIGHT
        self.top = MARGIN_TOP
        self.bottom = HEIGHT - MARGIN_BOTTOM
        self.slot = (self.right - self.left) / count

    def y(self, value: float) -> float:
        return self.bottom - (value / self.top_value) * (self.bottom - self.top)

    def center(self, index: int) -> float:
        return self.left + self.slot * (index + 0.5)

    def bar_x(self, index: int) -> tuple[float, float]:
        width = min(self.slot * (0.8 if self.slot >= 4 else 1.0), MAX_BAR_WIDTH)
        return self.center(index) - width / 2, width

    def grid(self, axis_format: Formatter) -> SafeString:
        lines = []
        for tick in self.ticks:
            y = _f(self.y(tick))
            lines.append(
                _html(
                    '<line class="chart-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                    '<text class="chart-tick chart-y-tick" x="{}" y="{}" dy="0.32em"'
                    ' text-anchor="end">{}</text>',
                    _f(self.left),
                    y,
                    _f(self.right),
                    y,
                    _f(self.left - 6),
                    y,
                    axis_format(tick),
                )
            )
        lines.append(
            _html(
                '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
                _f(self.left),
                _f(self.bottom),
                _f(self.right),
                _f(self.bottom),
            )
        )
        return mark_safe("".join(lines))

    def x_ticks(self, labels: Sequence[str]) -> SafeString:
        """As many labels as fit without overlapping, evenly spaced, the first
        one included. An empty label is no tick: the caller picks the columns
        worth a label (midnights on a month of hours) and this thins those."""
        shown = [i for i, label in enumerate(labels) if label]
        if not shown:
            return mark_safe("")
        longest = max(len(labels[i]) for i in shown) * CHAR_WIDTH + 12
        fit = max(1, int((self.right - self.left) // longest))
        every = max(1, math.ceil(len(shown) / fit))
        texts = []
        for i in shown[::every]:
            x = self.center(i)
            half = len(labels[i]) * CHAR_WIDTH / 2
            anchor = "middle"
            if x + half > WIDTH:
                x, anchor = WIDTH - 2, "end"
            elif x - half < 0:
                x, anchor = 2, "start"
            texts.append(
                _html(
                    '<line class="chart-tick-mark" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                    '<text class="chart-tick chart-x-tick" x="{}" y="{}"'
                    ' text-anchor="{}">{}</text>',
                    _f(self.center(i)),
                    _f(self.bottom),
                    _f(self.center(i)),
                    _f(self.bottom + 4),
                    _f(x),
                    _f(self.bottom + 18),
                    anchor,
                    labels[i],
                )
            )
        return mark_safe("".join(texts))

    def hit_areas(self, labels: Sequence[str], series: Sequence[Series], shown) -> list[str]:
        """Transparent columns over the whole height, each with a ``<title>`` of
        its values, to read one column by hovering: only where the columns are
        few (hundreds of them would be most of the page; the table has them)."""
        if len(labels) > HOVER_COLUMNS:
            return []
        areas = []
        for i, label in enumerate(labels):
            values = ", ".join(f"{s.name} {shown(s.values[i])}" for s in series)
            areas.append(
                f'<rect class="chart-hit" x="{_f(self.left + self.slot * i)}" '
                f'y="{_f(self.top)}" width="{_f(self.slot)}" height="{_f(self.bottom - self.top)}">'
                f"<title>{_escape(f'{label}: {values}')}</title></rect>"
            )
        return areas


def _series_path(
    kind: str,
    series: Series,
    numbers: Sequence[float],
    subpaths: list[str],
    labels: Sequence[str],
    value_format,
) -> str:
    """One series drawn as one ``<path>``, with a ``<title>`` naming it and its
    highest value (``numbers``: its values as drawn)."""
    values = series.values
    peak = max(
        ((number, -i) for i, number in enumerate(numbers) if values[i] is not None), default=None
    )
    text = series.name
    if peak is not None:
        index = -peak[1]
        text += f": highest {value_format(values[index])} at {labels[index]}"
    return (
        f'<path class="{kind} {_escape(series.css_class)}" d="{"".join(subpaths)}">'
        f"<title>{_escape(text)}</title></path>"
    )


def _svg(title: str, description: str, parts: list[str], series) -> SafeString:
    legend = _legend(series) if len(series) > 1 else ""
    return _html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {} {}"'
        ' role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">'
        "<title>{}</title>{}{}</svg>",
        WIDTH,
        HEIGHT,
        description,
        title,
        mark_safe("".join(parts)),
        legend,
    )


def _legend(series: Sequence[Series]) -> SafeString:
    items = []
    x = float(MARGIN_LEFT)
    for s in series:
        items.append(
            _html(
                '<rect class="chart-swatch {}" x="{}" y="6" width="10" height="10"/>'
                '<text class="chart-legend" x="{}" y="15">{}</text>',
                s.css_class,
                _f(x),
                _f(x + 14),
                s.name,
            )
        )
        x += 14 + len(s.name) * CHAR_WIDTH + 18
    return mark_safe("".join(items))


def _describe(kind, title, labels, series, values, value_format) -> str:
    """What a screen reader announces: what, over which range, and the peak."""
    names = " and ".join(s.name for s in series)
    span = labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"
    count = f"{len(labels)} point" if len(labels) == 1 else f"{len(labels)} points"
    of = "" if names == title else f" of {names}"
    text = f"{title}: {kind}{of}, {count}, {span}"
    known = [(v, i) for i, v in enumerate(values) if v is not None]
    if known:
        peak, index = max(known, key=lambda pair: (pair[0], -pair[1]))
        text += f"; highest {value_format(peak)} at {labels[index]}"
    return text + ". The numbers are in the table next to it."


def _empty(text: str) -> SafeString:
    return _html('<p class="chart-empty">{}</p>', text)


def _check_lengths(labels, series, tick_labels) -> None:
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(
                f"series {s.name!r} has {len(s.values)} values for {len(labels)} labels"
            )
    if tick_labels is not None and len(tick_labels) != len(labels):
        raise ValueError("tick_labels must have one entry per label")


def _runs(values: Sequence[Number | None]) -> list[list[int]]:
    """Indexes of consecutive present values."""
    runs, current = [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


def _number(value: Number | None) -> float:
    if value is None:
        return 0.0
    number = float(value)
    return number if math.isfinite(number) and number > 0 else 0.0


def _or_zero(value: Number | None) -> Number:
    return 0 if value is None else value


def _f(number: float) -> str:
    """Coordinates to one decimal: small SVG, no float noise."""
    text = f"{number:.1f}"
    return text[:-2] if text.endswith(".0") else text


__all__ = [
    "EMPTY_TEXT",
    "Series",
    "bar_chart",
    "compact_number",
    "line_chart",
    "nice_ticks",
    "percent",
    "stacked_bar_chart",
]
