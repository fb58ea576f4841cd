"""logs/charts.py: server-rendered SVG charts.

Every chart must be well-formed SVG (parsed here with xml.etree), say what it
shows (role="img", aria-label), draw one bar (or point) per value with a
<title> giving the value, and escape every label: labels come from user data.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from logs.admin import charts
from logs.admin.charts import Series, bar_chart, line_chart, nice_ticks, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"


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
    assert title is not None, "every bar and point has a <title> for hover"
    return title.text or ""


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


def test_one_bar_per_point_each_with_its_value_in_a_title():
    points = [(f"hour {i}", i * 10) for i in range(24)]
    root = parse(bar_chart(points, title="Calls", value_format=lambda v: f"{v:,} calls"))
    bars = with_class(root, "rect", "chart-bar")
    assert len(bars) == 24
    assert [title_of(bar) for bar in bars] == [
        f"hour {i} — Calls: {i * 10:,} calls" for i in range(24)
    ]


def test_taller_values_draw_taller_bars_and_zero_draws_no_height():
    root = parse(bar_chart([("a", 0), ("b", 5), ("c", 10)], title="Calls"))
    heights = [float(bar.get("height")) for bar in with_class(root, "rect", "chart-bar")]
    assert heights[0] == 0
    assert 0 < heights[1] < heights[2]
    assert heights[2] == pytest.approx(2 * heights[1], abs=0.2)


def test_bars_stay_inside_the_drawing():
    root = parse(bar_chart([(str(i), i) for i in range(500)], title="Many"))
    width, height = (float(n) for n in root.get("viewBox").split()[2:])
    for bar in with_class(root, "rect", "chart-bar"):
        x, y = float(bar.get("x")), float(bar.get("y"))
        assert 0 <= x <= width
        assert x + float(bar.get("width")) <= width
        assert 0 <= y <= height
        assert y + float(bar.get("height")) <= height + 0.1


def test_labels_are_escaped():
    evil = '<script>alert("x")</script> & co'
    svg = str(bar_chart([(evil, 1), ("ok", 2)], title="<b>Models</b>"))
    assert "<script>" not in svg
    assert "<b>" not in svg
    root = parse(svg)  # still well-formed
    ticks = [t.text for t in with_class(root, "text", "chart-x-tick")]
    assert evil in ticks
    assert title_of(with_class(root, "rect", "chart-bar")[0]).startswith(evil)
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
    assert [title_of(bar) for bar in with_class(root, "rect", "chart-bar")] == [
        "a — Cost: 0.00012000",
        "b — Cost: 1.12500000",
    ]


def test_no_points_says_so_instead_of_an_empty_frame():
    html = str(bar_chart([], title="Calls"))
    assert "<svg" not in html
    assert charts.EMPTY_TEXT in html


def test_one_point_and_all_zero_points_still_draw():
    one = parse(bar_chart([("only", 4)], title="Calls"))
    (bar,) = with_class(one, "rect", "chart-bar")
    assert float(bar.get("width")) <= charts.MAX_BAR_WIDTH
    zeros = parse(bar_chart([("a", 0), ("b", 0)], title="Calls"))
    assert len(with_class(zeros, "rect", "chart-bar")) == 2
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
    assert title_of(with_class(root, "rect", "chart-bar")[0]).startswith("2026-11-27 10:00")


# --- stacked bars and lines -------------------------------------------------------------


def test_stacked_bars_one_per_series_and_point_with_a_legend():
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
    assert len(with_class(root, "rect", "chart-series-1")) == 3 + 1  # bars + legend swatch
    assert len(with_class(root, "rect", "chart-bar")) == 6
    assert [t.text for t in with_class(root, "text", "chart-legend")] == [
        "Input tokens",
        "Output tokens",
    ]
    first_input, first_output = with_class(root, "rect", "chart-bar")[:2]
    # The output bar sits on top of the input bar.
    assert float(first_output.get("y")) + float(first_output.get("height")) == pytest.approx(
        float(first_input.get("y")), abs=0.2
    )
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
    assert len(with_class(root, "polyline", "chart-line")) == 2
    points = with_class(root, "circle", "chart-point")
    assert [title_of(p) for p in points] == [
        "a — Error rate: 10%",
        "b — Error rate: 20%",
        "d — Error rate: 5%",
        "e — Error rate: 0%",
    ]
    assert "%" in with_class(root, "text", "chart-y-tick")[-1].text


def test_line_chart_with_one_value_is_a_dot_and_with_none_says_so():
    root = parse(line_chart(["a"], [Series("Rate", [0.5])], title="Rate"))
    assert len(with_class(root, "circle", "chart-point")) == 1
    assert not with_class(root, "polyline", "chart-line")
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
