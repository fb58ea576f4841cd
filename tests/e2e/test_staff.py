"""Support staff investigate a customer's calls in the admin, in a real browser."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from logs.admin.formatting import compact, readable
from tests.clock import at_instants
from tests.e2e.helpers import (
    CALLS,
    log_in,
    open_filters,
    read_csv,
    result_rows,
    screenshot,
    totals,
)
from tests.e2e.world import ERROR_REQUEST_ID

# The live server reads through the read-replica aliases too when DATABASE_REPLICA_URLS is set.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]


def local_input(moment: datetime) -> str:
    """What a person types into a datetime-local input: a time in the site's zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


# The world is placed relative to the test's instant and the range is typed in
# the site's zone: across midnight UTC, and in Berlin just after its clocks went
# forward. (The pinned instant last: its screenshots are the ones kept.)
@at_instants("midnight UTC", "Berlin, 1 min after spring forward", "pinned")
def test_staff_combine_filters_read_totals_open_a_call_and_export_it(page, world):
    expected = world.filtered_calls()
    assert len(expected) == 8  # the world's shape, checked once here

    log_in(page, "/admin/", "support")
    page.goto(CALLS)
    open_filters(page)

    # A time range, typed into the sidebar's date-and-time inputs.
    page.get_by_label("From (inclusive)").fill(local_input(world.filter_start))
    page.get_by_label("To (exclusive)").fill(local_input(world.filter_end))
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**start=*")

    # Model, key name, group and call type, from the sidebar's choices.
    sidebar = page.locator("#changelist-filter")
    for title, choice in (
        ("model", "gpt-4o"),
        ("key name", "acme-batch"),
        ("group", "vip"),
        ("call type", "Chat"),
    ):
        section = sidebar.locator(f'details[data-filter-title="{title}"]')
        section.get_by_role("link", name=choice, exact=True).click()
        page.wait_for_load_state()
    query = page.url.split("?", 1)[1]
    for part in ("start=", "end=", "model=gpt-4o", "key_name=acme-batch", "group=vip"):
        assert part in query
    assert "call_type=chat" in query
    # The time range survived the other filters.
    assert page.get_by_label("From (inclusive)").input_value() == local_input(world.filter_start)

    # The rows and the totals are exactly the expected calls'.
    rows = result_rows(page)
    assert [row["utc"] for row in rows] == [utc_ms(call.created_at) for call in expected]
    assert {row["key_name"] for row in rows} == {"acme-batch"}
    assert {row["model"] for row in rows} == {"gpt-4o"}
    shown = totals(page)
    assert shown["calls"] == str(len(expected))
    errors = sum(1 for call in expected if call.status_code >= 400)
    assert shown["errors"].startswith(f"{errors} ")
    assert shown["input_tokens"] == f"{sum(c.input_tokens for c in expected):,}"
    assert shown["output_tokens"] == f"{sum(c.output_tokens for c in expected):,}"
    exact_cost = page.locator('[data-total="cost"]').get_attribute("data-exact")
    assert Decimal(exact_cost) == sum(c.cost for c in expected)
    assert page.locator(".call-totals").is_visible()
    screenshot(page, "staff-calls-filtered", full_page=True)

    # Open the failed call: request, response, error and the token breakdown.
    error_call = next(c for c in expected if c.request_id == ERROR_REQUEST_ID)
    error_row = next(r for r in rows if r["utc"] == utc_ms(error_call.created_at))
    assert error_row["status"] == "502 upstream_unavailable"
    assert error_row["duration"] == "15,300 ms (15.3 s)"
    page.locator(f'#result_list a[href="{error_row["href"]}"]').click()
    page.wait_for_url(re.compile(r"/change/"))
    assert page.locator("[data-request-id]").inner_text() == ERROR_REQUEST_ID
    field = lambda name: page.locator(f'[data-field="{name}"]').inner_text().strip()  # noqa: E731
    assert field("input_tokens") == "1,200"
    assert field("output_tokens") == "35"
    assert field("total_tokens") == "1,235"
    assert field("duration") == "15,300 ms (15.3 s)"
    assert field("ttft") == "900 ms"
    assert field("speed") == "2.4 tok/s"  # 35 tokens in the 14.4 s after the first
    assert field("status_code") == "502"
    assert field("error_reason") == "upstream_unavailable"
    part = lambda name: page.locator(f'[data-part="{name}"]')  # noqa: E731
    assert '"Explain the torque alarm on arm-3 step by step."' in part("request_body").inner_text()
    assert '"Authorization": "[REDACTED]"' in part("request_headers").inner_text()
    assert '"The torque alarm on"' in part("response").inner_text()
    assert '"message": "Upstream connection reset after 15.3 s' in part("error_detail").inner_text()
    # JSON is highlighted: keys, strings, numbers and literals are told apart.
    error_detail = part("error_detail")
    assert error_detail.locator(".json-key").first.inner_text() == '"type"'
    assert error_detail.locator(".json-literal").all_inner_texts() == ["true"]
    assert "502" in error_detail.locator(".json-number").all_inner_texts()
    screenshot(page, "staff-call-detail-error", full_page=True)

    # Export exactly what the filters show, and check it against the page.
    page.go_back()
    page.wait_for_url("**call_type=chat*")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("calls-")
    exported = read_csv(download)
    assert [row["request id"] for row in exported] == [c.request_id for c in expected]
    for csv_row, page_row in zip(exported, result_rows(page), strict=True):
        assert utc_ms(datetime.fromisoformat(csv_row["time (UTC)"])) == page_row["utc"]
        assert csv_row["key name"] == page_row["key_name"]
        assert csv_row["group"] == page_row["group"]
        assert csv_row["model"] == page_row["model"]
        assert csv_row["account"] == page_row["account"]
        assert page_row["status"].startswith(csv_row["status"])
        assert page_row["tokens"].startswith(f"{compact(int(csv_row['total tokens']))} ")
        # The page rounds for reading; the CSV keeps every decimal.
        stored = next(c for c in expected if c.request_id == csv_row["request id"])
        assert Decimal(csv_row["cost"]) == stored.cost
        assert page_row["cost_amount"] == readable(Decimal(csv_row["cost"]))
    assert sum(Decimal(row["cost"]) for row in exported) == Decimal(exact_cost)


def utc_ms(moment: datetime) -> str:
    from logs.admin.formatting import utc_iso

    return utc_iso(moment)
