"""The list and a call's page read well for someone investigating: durations,
speed, errors and slow calls marked, times with UTC on hover, long prompts
folded, JSON highlighted, totals always in view, the request id copyable."""

from __future__ import annotations

import re

import pytest

from tests.clock import at_instants
from tests.e2e.helpers import CALLS, log_in, result_rows, screenshot
from tests.e2e.world import ERROR_REQUEST_ID, HOSTILE_TEXT, LONG_PROMPT_REQUEST_ID

# The live server reads through the read-replica aliases too when DATABASE_REPLICA_URLS is set.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]


# Slow is slower than the p95 of whole UTC days and today: at midnight UTC
# today has just begun. (The pinned instant last: its screenshots are kept.)
@at_instants("midnight UTC", "pinned")
def test_the_list_marks_errors_and_slow_calls_and_keeps_the_totals_in_view(page, world):
    log_in(page, "/admin/", "support")
    page.goto(CALLS + "?account=" + str(world.acme.pk))

    rows = {row["utc"]: row for row in result_rows(page)}
    [slow] = world.calls(request_id=LONG_PROMPT_REQUEST_ID)
    slow_row = page.locator("#result_list tbody tr").filter(
        has=page.locator(f'time[datetime="{rows_key(slow)}"]')
    )
    # Milliseconds, seconds beside a long one, the speed in the next column.
    assert rows[rows_key(slow)]["duration"].lower() == "24,180 ms (24.2 s) slow"
    assert (
        rows[rows_key(slow)]["speed"] == "28.8 tok/s"
    )  # 612 tokens in the 21.23 s after the first
    badge = slow_row.locator(".call-slow")
    assert badge.inner_text().strip().lower() == "slow"
    assert re.fullmatch(
        r"Slow for gpt-4o-mini: slower than 95% of the gpt-4o-mini calls you can see in the "
        r"last 7 days \(p95 ≈ [\d,]+ ms\)\.",
        badge.get_attribute("title"),
    )
    # Ordinary gpt-4o-mini calls are not slow: the badge is for the exceptions.
    badges = page.locator("#result_list .call-slow").count()
    assert 1 <= badges <= 3
    # Errors: the status in red with the reason, and the row marked.
    error_row = page.locator("#result_list tbody tr").filter(has_text="upstream_unavailable")
    assert error_row.locator(".call-error").count() == 1
    edge = error_row.locator("th, td").first.evaluate("cell => getComputedStyle(cell).boxShadow")
    assert "inset" in edge
    # Times in the configured zone, UTC on hover.
    time = slow_row.locator("time")
    assert time.get_attribute("title") == rows_key(slow) + " UTC"

    screenshot(page, "staff-calls")

    # Scroll to the bottom of the list: the totals bar stays at the top of the view.
    page.locator("#result_list tbody tr").last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 4000)
    page.wait_for_function("window.scrollY > 300")
    box = page.locator(".call-totals").bounding_box()
    assert box is not None and -1 <= box["y"] <= 2, box
    assert page.locator('.call-totals [data-total="calls"]').is_visible()
    screenshot(page, "staff-calls-scrolled-totals-stay")


def test_a_call_page_folds_long_prompts_highlights_json_and_copies_the_request_id(page, world):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "/admin/", "support")
    [call] = world.calls(request_id=LONG_PROMPT_REQUEST_ID)
    page.goto(f"{CALLS}{call.pk}/change/")

    # Slow for its model, said beside the duration.
    assert page.locator('[data-field="duration"]').inner_text() == "24,180 ms (24.2 s)"
    assert page.locator("[data-slow]").is_visible()
    assert page.locator('[data-field="speed"]').inner_text() == "28.8 tok/s"

    # The long prompt is folded: a preview and a visible "Show all N lines".
    body = page.locator("section.call-payload").filter(
        has=page.get_by_role("heading", name="Request body")
    )
    preview = body.locator(".payload-preview")
    full = body.locator('[data-part="request_body"]')
    toggle = body.locator("summary")
    assert preview.is_visible()
    assert not full.is_visible()
    # The preview's long line is cut inside a string: still one string, no numbers in it.
    assert preview.locator(".json-number").count() == 0
    assert "…" in preview.locator(".json-string").last.inner_text()
    assert re.fullmatch(r"Show all \d+ lines \([\d.]+\sKB\)", toggle.inner_text().strip())
    screenshot(page, "staff-call-detail-long-prompt-folded", full_page=True)
    toggle.click()
    assert full.is_visible()
    assert not preview.is_visible()
    assert toggle.inner_text().strip().startswith("Hide the ")
    assert "arm-3 joint" in full.inner_text()

    # JSON is highlighted, and text from the payload stays text (no markup runs).
    assert full.locator(".json-key").count() == 5  # messages, role, content, role, content
    assert full.locator(".json-string").count() == 4
    assert full.locator("b, script").count() == 0
    assert HOSTILE_TEXT.replace('"', '\\"') in full.inner_text()
    params = page.locator('[data-part="request_params"]')
    assert params.locator(".json-literal").all_inner_texts() == ["null"]
    assert params.locator(".json-number").all_inner_texts() == ["0.3", "800", "42"]
    key_colour, string_colour = (
        params.locator(selector).first.evaluate("e => getComputedStyle(e).color")
        for selector in (".json-key", ".json-string")
    )
    assert key_colour != string_colour

    # The request id: copied with one click, and the page says so.
    copy = page.get_by_role("button", name="Copy request id")
    copy.click()
    assert page.get_by_role("status").inner_text() == "Copied"
    assert page.evaluate("navigator.clipboard.readText()") == LONG_PROMPT_REQUEST_ID
    # Times: the configured zone, UTC on hover.
    assert page.locator(".call-detail time").get_attribute("title").endswith("Z UTC")
    screenshot(page, "staff-call-detail-long-prompt-open", full_page=True)

    # A short payload is shown whole, not folded.
    [error_call] = world.calls(request_id=ERROR_REQUEST_ID)
    page.goto(f"{CALLS}{error_call.pk}/change/")
    assert page.locator("details.payload-fold").count() == 0
    assert page.locator('[data-part="error_detail"]').is_visible()


def rows_key(call) -> str:
    from logs.admin.formatting import utc_iso

    return utc_iso(call.created_at)
