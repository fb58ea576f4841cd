"""An account owner in the portal: their account only, its export, its usage stats."""

from __future__ import annotations

import pytest

from tests.clock import at_instants
from tests.e2e.helpers import (
    PORTAL_CALLS,
    log_in,
    painted_pixels,
    read_csv,
    result_rows,
    screenshot,
    totals,
)

# The live server reads through the read-replica aliases too when DATABASE_REPLICA_URLS is set.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]


# Every chart per hour over the world's last day: in St. John's (half an hour
# off UTC) just after its clocks went forward, too. (The pinned instant last:
# its screenshots are the ones kept.)
@at_instants("St. John's, 1 min after spring forward", "pinned")
def test_an_owner_sees_only_their_account_exports_it_and_reads_every_chart(page, world):
    acme_calls = world.calls(account=world.acme)
    acme_keys = {"acme-prod", "acme-batch", "acme-research"}
    foreign = [*world.globex_key_names, "Globex", "gemini-1.5-flash", "globex-only failure"]

    def assert_nothing_foreign() -> None:
        html = page.content()
        assert [word for word in foreign if word in html] == [], page.url

    log_in(page, "/portal/", "owner-acme")
    assert_nothing_foreign()
    page.get_by_role("link", name="Calls", exact=True).first.click()
    page.wait_for_url(f"**{PORTAL_CALLS}")

    rows = result_rows(page)
    assert len(rows) == len(acme_calls)
    assert {row["key_name"] for row in rows} == acme_keys
    assert "account" not in rows[0]  # one account: no account column
    assert totals(page)["calls"] == str(len(acme_calls))
    sidebar_keys = page.locator('#changelist-filter details[data-filter-title="key name"] a')
    assert set(sidebar_keys.all_inner_texts()) == {"All", *acme_keys}
    assert_nothing_foreign()
    screenshot(page, "portal-calls")

    # A call of theirs, in full.
    page.locator("#result_list tbody tr a").first.click()
    page.wait_for_selector("[data-request-id]")
    assert page.locator('[data-field="account"]').inner_text() == "Acme Robotics"
    assert page.locator('[data-field="upstream"]').count() == 0  # internal, staff only
    assert_nothing_foreign()
    page.go_back()

    # The export: their calls, nobody else's.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    exported = read_csv(download_info.value)
    assert sorted(row["request id"] for row in exported) == sorted(c.request_id for c in acme_calls)
    assert {row["account"] for row in exported} == {"Acme Robotics"}
    assert {row["key name"] for row in exported} == acme_keys

    # Usage stats: every chart drawn, each with its table of numbers.
    page.get_by_role("link", name="Usage stats").click()
    page.wait_for_selector("section[data-chart]")
    assert totals(page)["calls"] == str(len(acme_calls))
    charts = page.locator("section[data-chart]")
    assert charts.count() >= 3
    for index in range(charts.count()):
        chart = charts.nth(index)
        name = chart.get_attribute("data-chart")
        svg = chart.locator("svg.chart")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, name
        drawn = svg.evaluate(
            """svg => [...svg.querySelectorAll(".chart-bar, .chart-line, .chart-point")]
                .filter(mark => {
                    const box = mark.getBBox();
                    return (box.width > 0 || box.height > 0)
                        && getComputedStyle(mark).visibility !== "hidden";
                }).length"""
        )
        assert drawn > 0, f"chart {name} has no marks"
        # Not blank: the marks' colours are on the screen, not only axes and text.
        assert painted_pixels(page, svg) >= 200, f"chart {name} looks blank"
        table_rows = chart.locator("table.stats-table tbody tr")
        assert table_rows.count() > 0, f"chart {name} has no table"
    models = page.locator('[data-table="models"] tbody th').all_inner_texts()
    assert set(models) == {call.model for call in acme_calls}
    assert_nothing_foreign()
    screenshot(page, "portal-usage-stats", full_page=True)
