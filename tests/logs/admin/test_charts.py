"""logs/admin/charts.py: server-rendered SVG charts.

Every chart must be well-formed SVG (parsed here with xml.etree), say what it
shows (role="img", aria-label), draw each series as one <path> (a rectangle
per non-empty column, or a line per run of values) named by a <title>, let a
hover over a column read its values when the columns are few, and escape
every label: labels come from user data.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from logs.admin import charts
from logs.admin.charts import Series, bar_chart, line_chart, nice_ticks, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"
NUMBER = r"(-?[\d.]+)"
BAR = re.compile(rf"M{NUMBER},{NUMBER}V{NUMBER}h{NUMBER}V{NUMBER}z")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    return root


def with_class(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [
        element
        for element in root.iter(f"{SVG}{tag}")
        if css_class in (element.get("class") or "").split()
    ]


def title_of(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None, "every series and hover column has a <title>"
    return title.text or ""


def series_path(root: ET.Element, kind: str, css_class: str = "chart-series-1") -> ET.Element:
    (path,) = [p for p in with_class(root, "path", kind) if css_class in p.get("class").split()]
    return path


def rectangles(path: ET.Element) -> list[tuple[float, float, float, float]]:
    """(x, top, width, height) of each bar of a series path: the whole ``d`` is bars."""
    d = path.get("d")
    found = BAR.findall(d)
    assert "".join(f"M{x},{b}V{t}h{w}V{b2}z" for x, b, t, w, b2 in found) == d, d
    rects = []
    for x, base, top, width, base_again in found:
        assert base == base_again, "a bar is a closed rectangle"
        rects.append((float(x), float(top), float(width), float(base) - float(top)))
    return rects


def subpaths(path: ET.Element) -> list[list[tuple[float, float]]]:
    """The points of each subpath of a line or dot path (M x,y L x,y x,y … / M x,y h0)."""
    runs = []
    for part in re.findall(r"M[^M]+", path.get("d")):
        if part.endswith("h0"):
            part = part[:-2]
        numbers = [float(n) for n in re.findall(NUMBER, part)]
        runs.append(list(zip(numbers[::2], numbers[1::2], strict=True)))
    return runs


def hover_titles(root: ET.Element) -> list[str]:
    return [title_of(area) for area in with_class(root, "rect", "chart-hit")]


# --- bar charts --------------------------------------------------------------------------


def test_bar_chart_is_well_formed_svg_that_says_what_it_shows():
    svg = bar_chart([("2026-11-27", 3), ("2026-11-28", 5)], title="Calls per day", value_format=str)
    root = parse(svg)
    assert root.get("role") == "img"
    label = root.get("aria-label")
    assert label.startswith("Calls per day: bar chart")
    assert "2 points" in label
    assert "2026-11-27 to 2026-11-28" in label
    assert "highest 5 at 2026-11-28" in label
    assert root.find(f"{SVG}title").text == "Calls per day"


def test_one_path_with_one_bar_per_point_and_a_hover_title_per_column():
    points = [(f"hour {i}", i * 10) for i in range(24)]
    root = parse(bar_chart(points, title="Calls", value_format=lambda v: f"{v:,} calls"))
    (path,) = with_class(root, "path", "chart-bar")
    assert not with_class(root, "rect", "chart-bar"), "no element per bar"
    # Hour 0 has no calls: no bar; every other hour one.
    assert len(rectangles(path)) == 23
    assert title_of(path) == "Calls: highest 230 calls at hour 23"
    assert hover_titles(root) == [f"hour {i}: Calls {i * 10:,} calls" for i in range(24)]


def test_taller_values_draw_taller_bars_and_zero_draws_none():
    root = parse(bar_chart([("a", 0), ("b", 5), ("c", 10), ("d", 2.5)], title="Calls"))
    bars = rectangles(series_path(root, "chart-bar"))
    assert len(bars) == 3  # b, c, d
    heights = [height for _, _, _, height in bars]
    assert heights[1] == pytest.approx(2 * heights[0], abs=0.2)
    assert heights[2] == pytest.approx(heights[0] / 2, abs=0.2)
    # Left to right, in the columns of b, c and d, all standing on the axis.
    (axis,) = with_class(root, "line", "chart-axis")
    xs = [x for x, _, _, _ in bars]
    assert xs == sorted(xs)
    for _, top, _, height in bars:
        assert top + height == pytest.approx(float(axis.get("y1")), abs=0.05)


def test_bars_stay_inside_the_drawing():
    root = parse(bar_chart([(str(i), i) for i in range(500)], title="Many"))
    width, height = (float(n) for n in root.get("viewBox").split()[2:])
    bars = rectangles(series_path(root, "chart-bar"))
    assert len(bars) == 499
    for x, y, bar_width, bar_height in bars:
        assert 0 <= x <= width
        assert x + bar_width <= width
        assert 0 <= y <= height
        assert y + bar_height <= height + 0.1


def test_a_month_of_hours_is_small_and_its_numbers_are_left_to_the_table():
    points = [(f"2026-11-{1 + i // 24:02d} {i % 24:02d}:00", 1000 + i) for i in range(720)]
    svg = str(bar_chart(points, title="Calls per hour"))
    root = parse(svg)
    assert len(rectangles(series_path(root, "chart-bar"))) == 720
    assert len(list(root.iter())) < 100, "elements do not grow with the columns"
    assert len(svg) < 30_000
    assert hover_titles(root) == []
    assert "The numbers are in the table" in root.get("aria-label")


def test_hover_columns_up_to_the_limit_only():
    few = [(str(i), i) for i in range(charts.HOVER_COLUMNS)]
    assert len(hover_titles(parse(bar_chart(few, title="Calls")))) == charts.HOVER_COLUMNS
    more = [*few, ("one more", 1)]
    assert hover_titles(parse(bar_chart(more, title="Calls"))) == []


def test_labels_are_escaped():
    evil = '<script>alert("x")</script> & co'
    svg = str(bar_chart([(evil, 3), ("ok", 2)], title="<b>Models</b>", series_name="<i>n</i>"))
    assert "<script>" not in svg
    assert "<b>" not in svg
    assert "<i>" not in svg
    root = parse(svg)  # still well-formed
    ticks = [t.text for t in with_class(root, "text", "chart-x-tick")]
    assert evil in ticks
    assert hover_titles(root)[0] == f"{evil}: <i>n</i> 3"
    assert title_of(series_path(root, "chart-bar")) == f"<i>n</i>: highest 3 at {evil}"
    assert evil in root.get("aria-label")
    assert root.find(f"{SVG}title").text == "<b>Models</b>"


def test_value_ticks_cover_the_highest_value():
    root = parse(bar_chart([("a", 7), ("b", 3)], title="Calls", integer=True))
    ticks = [t.text for t in with_class(root, "text", "chart-y-tick")]
    assert ticks[0] == "0"
    assert ticks == ["0", "2", "4", "6", "8"]


def test_decimal_values_keep_their_exact_digits_in_titles():
    points = [("a", Decimal("0.00012000")), ("b", Decimal("1.12500000"))]
    root = parse(bar_chart(points, title="Cost", value_format=str))
    assert hover_titles(root) == ["a: Cost 0.00012000", "b: Cost 1.12500000"]
    assert title_of(series_path(root, "chart-bar")) == "Cost: highest 1.12500000 at b"


def test_no_points_says_so_instead_of_an_empty_frame():
    html = str(bar_chart([], title="Calls"))
    assert "<svg" not in html
    assert charts.EMPTY_TEXT in html


def test_one_point_and_all_zero_points_still_draw():
    one = parse(bar_chart([("only", 4)], title="Calls"))
    ((_, _, width, height),) = rectangles(series_path(one, "chart-bar"))
    assert 0 < width <= charts.MAX_BAR_WIDTH
    assert height > 0
    zeros = parse(bar_chart([("a", 0), ("b", 0)], title="Calls"))
    assert rectangles(series_path(zeros, "chart-bar")) == []
    assert hover_titles(zeros) == ["a: Calls 0", "b: Calls 0"]
    assert [t.text for t in with_class(zeros, "text", "chart-y-tick")] == ["0", "1"]


def test_long_series_thin_out_the_time_axis_labels():
    labels = [f"2026-11-{d:02d} {h:02d}:00" for d in range(1, 8) for h in range(24)]
    root = parse(bar_chart([(label, 1) for label in labels], title="Calls"))
    ticks = with_class(root, "text", "chart-x-tick")
    assert 2 <= len(ticks) <= 12
    assert ticks[0].text == labels[0]


def test_tick_labels_can_be_shorter_than_the_labels():
    root = parse(
        bar_chart(
            [("2026-11-27 10:00", 1), ("2026-11-27 11:00", 2)],
            title="Calls",
            tick_labels=["10:00", "11:00"],
        )
    )
    assert [t.text for t in with_class(root, "text", "chart-x-tick")] == ["10:00", "11:00"]
    assert hover_titles(root)[0].startswith("2026-11-27 10:00")


def test_an_empty_tick_label_is_no_tick_and_the_rest_are_thinned():
    labels = [f"{i}" for i in range(720)]
    ticks = ["" if i % 24 else f"Nov {1 + i // 24:02d}" for i in range(720)]
    root = parse(bar_chart([(label, 1) for label in labels], title="Calls", tick_labels=ticks))
    shown = [t.text for t in with_class(root, "text", "chart-x-tick")]
    assert shown[0] == "Nov 01"
    assert 5 <= len(shown) <= 15
    days = [int(text.split()[1]) for text in shown]
    steps = {b - a for a, b in itertools.pairwise(days)}
    assert len(steps) == 1, f"evenly spaced: {shown}"
    assert len(with_class(root, "line", "chart-tick-mark")) == len(shown)
    assert not with_class(
        parse(bar_chart([("a", 1)], title="C", tick_labels=[""])), "text", "chart-x-tick"
    )


# --- stacked bars and lines -------------------------------------------------------------


def test_stacked_bars_one_path_per_series_with_a_legend():
    root = parse(
        stacked_bar_chart(
            ["a", "b", "c"],
            [
                Series("Input tokens", [10, 20, 0], "chart-series-1"),
                Series("Output tokens", [5, 0, 0], "chart-series-2"),
            ],
            title="Tokens",
            value_format=str,
        )
    )
    assert len(with_class(root, "path", "chart-bar")) == 2
    inputs = rectangles(series_path(root, "chart-bar", "chart-series-1"))
    outputs = rectangles(series_path(root, "chart-bar", "chart-series-2"))
    assert len(inputs) == 2 and len(outputs) == 1
    assert len(with_class(root, "rect", "chart-swatch")) == 2
    assert [t.text for t in with_class(root, "text", "chart-legend")] == [
        "Input tokens",
        "Output tokens",
    ]
    (first_output,) = outputs
    first_input = inputs[0]
    # The output bar sits on top of the input bar, in the same column, half as tall.
    assert first_output[0] == first_input[0]
    assert first_output[1] + first_output[3] == pytest.approx(first_input[1], abs=0.05)
    assert first_output[3] == pytest.approx(first_input[3] / 2, abs=0.2)
    assert inputs[1][3] == pytest.approx(2 * first_input[3], abs=0.2)
    assert hover_titles(root) == [
        "a: Input tokens 10, Output tokens 5",
        "b: Input tokens 20, Output tokens 0",
        "c: Input tokens 0, Output tokens 0",
    ]
    assert "highest 20 at b" in root.get("aria-label")


def test_line_chart_leaves_gaps_for_missing_values():
    root = parse(
        line_chart(
            ["a", "b", "c", "d", "e"],
            [Series("Error rate", [0.1, 0.2, None, 0.05, 0.0])],
            title="Error rate",
            value_format=charts.percent,
            axis_format=charts.percent,
        )
    )
    assert root.get("role") == "img"
    line = series_path(root, "chart-line")
    runs = subpaths(line)
    assert [len(run) for run in runs] == [2, 2]
    # Higher rates are higher up (smaller y); 0% is on the axis.
    (a, b), (d, e) = runs
    assert b[1] < a[1] < d[1] < e[1]
    assert b[1] == pytest.approx(a[1] - (e[1] - a[1]), abs=0.2)
    assert title_of(line) == "Error rate: highest 20% at b"
    dots = [point for run in subpaths(series_path(root, "chart-point")) for point in run]
    assert dots == [a, b, d, e]
    assert hover_titles(root) == [
        "a: Error rate 10%",
        "b: Error rate 20%",
        "c: Error rate —",
        "d: Error rate 5%",
        "e: Error rate 0%",
    ]
    assert "%" in with_class(root, "text", "chart-y-tick")[-1].text


def test_long_lines_dot_only_their_lone_values():
    values = [0.1] * 300 + [None, 0.5, None] + [0.2] * 300
    labels = [str(i) for i in range(len(values))]
    root = parse(line_chart(labels, [Series("Rate", values)], title="Rate"))
    first, second = subpaths(series_path(root, "chart-line"))
    assert len(first) == len(second) == 300
    (dot,) = [p for run in subpaths(series_path(root, "chart-point")) for p in run]
    assert first[-1][0] < dot[0] < second[0][0]
    assert dot[1] < first[0][1] and dot[1] < second[0][1]  # 50% above 10% and 20%
    assert hover_titles(root) == []


def test_line_chart_with_one_value_is_a_dot_and_with_none_says_so():
    root = parse(line_chart(["a"], [Series("Rate", [0.5])], title="Rate"))
    assert len(subpaths(series_path(root, "chart-point"))) == 1
    assert subpaths(series_path(root, "chart-line")) == []
    assert charts.EMPTY_TEXT in str(line_chart(["a"], [Series("Rate", [None])], title="Rate"))


def test_line_chart_axis_can_have_a_floor():
    root = parse(
        line_chart(["a", "b"], [Series("Rate", [0, 0.001])], title="Rate", axis_at_least=0.01)
    )
    assert float(with_class(root, "text", "chart-y-tick")[-1].text) >= 0.01


def test_series_must_match_the_labels():
    with pytest.raises(ValueError):
        stacked_bar_chart(["a", "b"], [Series("x", [1])], title="Bad")
    with pytest.raises(ValueError):
        bar_chart([("a", 1)], title="Bad", tick_labels=["a", "b"])


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maximum", "integer", "expected"),
    [
        (7, True, [0, 2, 4, 6, 8]),
        (1, True, [0, 1]),
        (0, False, [0, 1]),
        (100, False, [0, 25, 50, 75, 100]),
        (0.0031, False, [0, 0.001, 0.002, 0.003, 0.004]),
    ],
)
def test_nice_ticks(maximum, integer, expected):
    assert nice_ticks(maximum, integer=integer) == pytest.approx(expected)


@pytest.mark.parametrize("maximum", [0.3, 3, 17, 999, 12_345, 3_609_029, 0.00012])
def test_nice_ticks_start_at_zero_and_reach_the_maximum(maximum):
    ticks = nice_ticks(maximum)
    assert ticks[0] == 0
    assert ticks[-1] >= maximum
    assert 2 <= len(ticks) <= 7
    assert ticks == sorted(ticks)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (950, "950"),
        (1234, "1.23k"),
        (3_609_029, "3.61M"),
        (0.00012, "0.00012"),
        (0.000012, "0.000012"),
        (Decimal("0.00314000"), "0.00314"),
        (12.5, "12.5"),
    ],
)
def test_compact_number(value, text):
    assert charts.compact_number(value) == text


def test_percent():
    assert charts.percent(0.125) == "12.5%"
    assert charts.percent(0) == "0%"
    assert charts.percent(1) == "100%"
