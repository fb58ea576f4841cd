"""What a support engineer reaches for during an incident, on a 13-14" laptop
(1440x900 and 1280x800, the admin's navigation sidebar open) and a phone:
every column readable, presets and filters one click away, context kept from
the list to a call and back, the front door."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.helpers import (
    CALLS,
    axe_violations,
    log_in,
    open_filters,
    result_rows,
    screenshot,
    totals,
)
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]

LAPTOPS = [
    pytest.param({"width": 1440, "height": 900}, id="1440"),
    pytest.param({"width": 1280, "height": 800}, id="1280"),
]

FIT = """() => {
    const box = document.querySelector("#changelist .results");
    const right = box.getBoundingClientRect().right;
    const cells = [...document.querySelectorAll("#result_list thead th")];
    return {
        nav: document.querySelector(".main")?.classList.contains("shifted") ?? false,
        boxRight: Math.round(right),
        viewport: window.innerWidth,
        overflowing: cells.filter(th => th.getBoundingClientRect().right > right + 0.5)
            .map(th => th.innerText.trim()),
        pageScrolls: document.documentElement.scrollWidth > window.innerWidth,
        cut: [...document.querySelectorAll("#result_list td, #result_list th")]
            .filter(cell => cell.scrollWidth > cell.clientWidth + 1).length,
    };
}"""


@pytest.mark.parametrize("viewport", LAPTOPS)
def test_every_column_is_readable_beside_the_navigation_and_the_header_stays(page, world, viewport):
    page.set_viewport_size(viewport)
    log_in(page, "/admin/", "support")
    page.goto(CALLS)

    fit = page.evaluate(FIT)
    assert fit["nav"], "the admin's navigation sidebar is open"
    assert fit["overflowing"] == [], fit
    assert not fit["pageScrolls"], fit
    assert fit["cut"] == 0, fit
    # The filters fold behind a button beside the navigation; one click shows them.
    assert page.locator("#changelist-filter").is_hidden()
    open_filters(page)
    assert page.get_by_label("From (inclusive)").is_visible()
    screenshot(page, f"staff-calls-{viewport['width']}")

    # Numbers for reading: separators, the decimals that matter, the exact value on hover.
    usage = page.locator('[data-total="usage"]')
    assert re.fullmatch(r"[\d,]+(\.\d\d)?", usage.inner_text())
    assert "," in page.locator('[data-total="input_tokens"]').inner_text()
    cost_cell = page.locator("#result_list td.field-cost_amount span").first
    assert len(cost_cell.get_attribute("title")) >= len(cost_cell.inner_text()) - 1

    # Scrolled down, the header is still in view, under the totals.
    page.mouse.wheel(0, 1500)
    page.wait_for_function("window.scrollY > 1000")
    header = page.locator("#result_list thead th").first.bounding_box()
    bar = page.locator(".call-totals").bounding_box()
    assert 0 <= header["y"] <= bar["y"] + bar["height"] + 2, (header, bar)
    screenshot(page, f"staff-calls-scrolled-{viewport['width']}")


def test_on_a_phone_the_filters_are_a_button_at_the_top(page, world):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, "/admin/", "support")
    page.goto(CALLS + "?model=gpt-4o")

    toggle = page.get_by_role("button", name=re.compile("^Filters"))
    assert toggle.inner_text() == "Filters (1 active)"
    assert toggle.bounding_box()["y"] < 400
    assert page.locator("#changelist-filter").is_hidden()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#changelist-filter").bounding_box()["y"] < 500
    screenshot(page, "phone-filters-open")


@pytest.mark.parametrize("viewport", LAPTOPS)
def test_one_click_for_the_last_hour_then_errors_then_slow_calls(page, world, viewport):
    page.set_viewport_size(viewport)
    log_in(page, "/admin/", "support")
    page.goto(CALLS)
    open_filters(page)

    page.locator('a[data-preset="1h"]').click()
    page.wait_for_url("**last=1h*")
    hour_ago = world.now - timedelta(hours=1)
    expected = [c for c in world.calls() if c.created_at >= hour_ago]
    assert totals(page)["calls"] == str(len(expected))
    assert page.locator('a[data-preset="1h"]').get_attribute("aria-current") == "true"

    page.goto(CALLS + "?last=24h")
    page.locator('details[data-filter-title="status"]').get_by_role(
        "link", name="Any error (4xx, 5xx)"
    ).click()
    page.wait_for_url("**status=error*")
    day_ago = world.now - timedelta(hours=24)
    errors = [c for c in world.calls() if c.status_code >= 400 and c.created_at >= day_ago]
    assert totals(page)["calls"] == str(len(errors))
    assert "last=24h" in page.url

    page.locator('details[data-filter-title="details"] summary').click()
    page.get_by_label("Slower than (ms)").fill("10000")
    page.get_by_role("button", name="Filter by details").click()
    page.wait_for_url("**slower_than_ms=10000*")
    rows = result_rows(page)
    assert [row["utc"] for row in rows] and all("s)" in row["duration"] for row in rows)
    page.get_by_role("button", name=re.compile("^Filters")).click()  # fold them: the rows show
    assert page.locator("#changelist-filter").is_hidden()
    screenshot(page, f"staff-calls-errors-slow-{viewport['width']}")


def test_context_survives_a_trip_to_a_call_and_back(page, world):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "/admin/", "support")
    page.goto(CALLS + "?key_name=acme-batch&model=gpt-4o")
    rows = result_rows(page)

    # Copy a request id straight from its row.
    page.locator("#result_list .copy-id").first.click()
    first_id = page.locator("#result_list .copy-id").first.get_attribute("data-copy-text")
    assert page.evaluate("navigator.clipboard.readText()") == first_id

    page.locator(f'#result_list a[href="{rows[0]["href"]}"]').click()
    page.wait_for_url(re.compile(r"/change/"))
    # Next call walks the list in its order, within its filters.
    page.get_by_role("link", name="Next call").click()
    page.wait_for_url(re.compile(r"/change/"))
    assert rows[1]["href"].split("?")[0] in page.url
    page.get_by_role("link", name="Previous call").click()
    page.wait_for_url(re.compile(r"/change/"))
    assert rows[0]["href"].split("?")[0] in page.url
    screenshot(page, "staff-call-detail-pager")

    # The crumb and "Back to results" return to the same filters.
    back = page.get_by_role("link", name="Back to results")
    assert page.locator("div.breadcrumbs").get_by_role("link", name="Calls").get_attribute(
        "href"
    ) == back.get_attribute("href")
    back.click()
    page.wait_for_url("**key_name=acme-batch*")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"key_name": ["acme-batch"], "model": ["gpt-4o"]}


def test_a_typed_time_is_applied_when_another_filter_is_clicked(page, world):
    log_in(page, "/admin/", "support")
    page.goto(CALLS)
    open_filters(page)
    page.get_by_label("From (inclusive)").fill("2026-01-01T00:00")
    assert page.locator(".time-range-unapplied").is_visible()
    page.locator('details[data-filter-title="model"]').get_by_role(
        "link", name="gpt-4o", exact=True
    ).click()
    page.wait_for_url("**model=gpt-4o*")
    assert "start=2026-01-01T00%3A00" in page.url or "start=2026-01-01T00:00" in page.url
    assert page.get_by_label("From (inclusive)").input_value() == "2026-01-01T00:00"


def test_the_front_door_sends_an_owner_to_todays_calls(page, world, live_server):
    page.goto("/")
    page.get_by_role("link", name=re.compile("Account owners")).click()
    page.get_by_label("Username").fill("owner-acme")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/portal/")
    assert page.locator('[data-total="calls"]').is_visible()
    assert "Recent actions" not in page.content()
    screenshot(page, "portal-home")
    assert axe_violations(page, live_server.url) == []
    page.get_by_role("link", name="Today's calls").click()
    page.wait_for_url("**/portal/logs/callrecord/?start=*")
    page.goto("/")
    page.wait_for_url("**/portal/")


def test_the_live_tail_shows_new_calls_and_stops_when_scrolled(page, world):
    from django.utils import timezone

    from tests.factories import ingest, record_dict

    log_in(page, "/admin/", "support")
    page.goto(CALLS)
    before = int(totals(page)["calls"].replace(",", ""))
    live = page.get_by_label("Live: show new calls every 5 s")
    live.check()

    ingest(record_dict(world.keys["acme-prod"], request_id="live-1", created_at=timezone.now()))
    page.locator("#result_list tr.call-new").wait_for(timeout=15_000)
    new_rows = page.locator("#result_list tr.call-new button[data-copy-text]")
    assert [b.get_attribute("data-copy-text") for b in new_rows.all()] == ["live-1"]
    assert totals(page)["calls"] == f"{before + 1:,}"
    assert "1 new call" in page.locator(".live-tail-status").inner_text()
    screenshot(page, "staff-calls-live-tail")

    page.mouse.wheel(0, 800)
    page.wait_for_function("!document.getElementById('live-tail').checked")
    assert "stopped because you scrolled" in page.locator(".live-tail-status").inner_text()
