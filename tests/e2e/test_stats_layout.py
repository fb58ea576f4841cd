"""The usage stats page fits a 13-14" laptop: no chart or table is wider than
its box, so the newest bucket's bar and label and every table column show
without scrolling sideways.

Checked at 1440x900 and 1280x800 with the admin's navigation sidebar open, per
day and per hour, on the staff site and the portal: each chart and each table
lies inside every ancestor that would clip or scroll it, and inside the window.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import log_in, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]

ADMIN_STATS = "/admin/logs/callrecord/stats/"
PORTAL_STATS = "/portal/logs/callrecord/stats/"
VIEWPORTS = [(1440, 900), (1280, 800)]

# For each chart's SVG, its text and marks, and each table of numbers (and each
# of their cells): the ancestors that clip (overflow other than visible) and
# the window, with how far the element sticks out of each. Empty: all fits.
OVERFLOWS = """() => {
    const found = [];
    const viewport = document.documentElement.clientWidth;
    const name = (e) => e.tagName.toLowerCase()
        + (e.id ? "#" + e.id : "")
        + (e.classList.length ? "." + [...e.classList].join(".") : "");
    const check = (element, what) => {
        const box = element.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) return;
        if (box.right > viewport + 0.5) {
            found.push(`${what}: ${Math.round(box.right - viewport)} px beyond the window`);
        }
        if (box.left < -0.5) found.push(`${what}: ${Math.round(-box.left)} px left of the window`);
        for (let up = element.parentElement; up; up = up.parentElement) {
            if (getComputedStyle(up).overflowX === "visible") continue;
            const outer = up.getBoundingClientRect();
            const right = outer.left + up.clientLeft + up.clientWidth;
            if (box.right > right + 0.5) {
                found.push(`${what}: ${Math.round(box.right - right)} px beyond ${name(up)}`);
            }
        }
    };
    for (const section of document.querySelectorAll("section[data-chart]")) {
        const chart = section.dataset.chart;
        const svg = section.querySelector("svg.chart");
        check(svg, `chart ${chart}`);
        for (const part of svg.querySelectorAll("text, path, rect, line")) {
            const label = part.textContent.trim().split("\\n")[0].slice(0, 40);
            check(part, `chart ${chart} ${part.tagName} ${part.getAttribute("class")} ${label}`);
        }
    }
    // The charts' tables of numbers, the top lists and the speed per model.
    for (const table of document.querySelectorAll(".stats-main table")) {
        const marked = table.closest("[data-chart], [data-top], [data-table]");
        const what = marked ? Object.values(marked.dataset).join(" ") : name(table);
        check(table, `table ${what}`);
        for (const cell of table.querySelectorAll("thead th")) {
            if (cell.closest(".visually-hidden")) continue;  // for screen readers only
            check(cell, `table ${what} column "${cell.innerText.trim()}"`);
        }
    }
    const page = document.documentElement.scrollWidth;
    if (page > viewport) found.push(`the page scrolls sideways by ${page - viewport} px`);
    return found;
}"""


@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=lambda v: str(v))
def test_charts_and_their_tables_fit_their_boxes(page, world, width, height):
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, "/admin/", "support")
    for query in ("", "?interval=hour", "?interval=day"):
        page.goto(ADMIN_STATS + query)
        page.wait_for_selector("section[data-chart] svg.chart")
        assert page.locator("#nav-sidebar").is_visible(), "checked with the navigation open"
        assert page.locator("section[data-chart]").count() == 5
        assert page.evaluate(OVERFLOWS) == [], f"{width}x{height} {ADMIN_STATS}{query}"
    screenshot(page, f"staff-usage-stats-{width}x{height}", full_page=True)

    page.context.clear_cookies()
    log_in(page, "/portal/", "owner-acme")
    for query in ("", "?interval=hour"):
        page.goto(PORTAL_STATS + query)
        page.wait_for_selector("section[data-chart] svg.chart")
        assert page.evaluate(OVERFLOWS) == [], f"{width}x{height} {PORTAL_STATS}{query}"
