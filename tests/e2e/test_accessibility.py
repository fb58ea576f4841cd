"""Keyboard navigation, labels, and an axe-core audit of the pages people use."""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import CALLS, PORTAL_CALLS, axe_violations, log_in, screenshot
from tests.e2e.world import ERROR_REQUEST_ID, LONG_PROMPT_REQUEST_ID

# The live server reads through the read-replica aliases too when DATABASE_REPLICA_URLS is set.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]

FOCUSED = """() => {
    const e = document.activeElement;
    return {
        tag: e.tagName.toLowerCase(),
        id: e.id,
        name: e.getAttribute("name"),
        href: e.getAttribute("href"),
        text: (e.innerText || e.value || "").trim(),
        filter: e.closest("details[data-filter-title]")?.dataset.filterTitle ?? null,
        inResults: e.closest("#result_list") !== null,
    };
}"""


def tab_until(page, predicate, *, limit: int = 150) -> list[dict]:
    """Press Tab until ``predicate(focused)`` holds; the elements passed on the way."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        seen.append(focused)
        if predicate(focused):
            return seen
    raise AssertionError(f"not reached in {limit} tabs; went through {seen}")


def test_the_keyboard_reaches_the_time_range_the_filters_a_call_and_the_copy_button(page, world):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "/admin/", "support")
    page.goto(CALLS + "?model=gpt-4o&key_name=acme-batch")

    def is_call_link(f):
        return (
            f["tag"] == "a" and f["inResults"] and bool(re.search(r"/\d+/change/", f["href"] or ""))
        )

    # The second Tab stop skips to the filters (opening them where they fold
    # behind a button), and a few more reach the time range: not 123 presses.
    tab_until(page, lambda f: f["text"] == "Skip to filters", limit=3)
    page.keyboard.press("Enter")
    path = tab_until(page, lambda f: f["id"] == "time-range-start", limit=8)
    path += tab_until(page, lambda f: f["filter"] == "call type" and f["tag"] == "a")
    order = []
    for focused in path:
        if is_call_link(focused):
            label = "call link"
        elif focused["id"] in ("time-range-start", "time-range-end"):
            label = focused["id"]
        elif focused["tag"] == "button" and focused["text"] == "Apply":
            label = "apply"
        elif focused["filter"] in ("model", "key name", "group") and focused["tag"] == "a":
            label = f"filter: {focused['filter']}"
        else:
            continue
        if not order or order[-1] != label:
            order.append(label)
    assert order == [
        "time-range-start",
        "time-range-end",
        "apply",
        "filter: model",
        "filter: key name",
        "filter: group",
    ]
    # The third skips to the results: the next Tab is the first call.
    page.goto(CALLS + "?model=gpt-4o&key_name=acme-batch")
    tab_until(page, lambda f: f["text"] == "Skip to results", limit=3)
    page.keyboard.press("Enter")
    tab_until(page, is_call_link, limit=10)  # past the sortable columns' header links
    # The inputs are labelled: a screen reader says what each one is.
    assert page.get_by_label("From (inclusive)").get_attribute("id") == "time-range-start"
    assert page.get_by_label("To (exclusive)").get_attribute("id") == "time-range-end"

    # Back to the top; Tab to the first call and open it with Enter.
    page.goto(CALLS + f"?q={ERROR_REQUEST_ID}")
    tab_until(page, is_call_link)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-request-id]")

    # The copy button: reachable, named, and it says what it did.
    tab_until(page, lambda f: f["tag"] == "button" and f["text"] == "Copy", limit=60)
    copy = page.get_by_role("button", name="Copy request id")
    assert copy.evaluate("button => button === document.activeElement")
    assert copy.evaluate("b => getComputedStyle(b).outlineStyle") != "none"  # focus is visible
    page.keyboard.press("Enter")
    assert page.get_by_role("status").inner_text() == "Copied"
    assert page.evaluate("navigator.clipboard.readText()") == ERROR_REQUEST_ID
    screenshot(page, "keyboard-copy-request-id")


def test_the_pages_pass_an_accessibility_audit(page, world, live_server):
    """axe-core's critical and serious rules, on the staff list, detail and stats
    pages and on the portal's; every problem found is listed at once."""
    [long_call] = world.calls(request_id=LONG_PROMPT_REQUEST_ID)
    [error_call] = world.calls(request_id=ERROR_REQUEST_ID)
    problems: list[str] = []

    def audit(url: str, before=None) -> None:
        page.goto(url)
        if before:
            before()
        problems.extend(f"{url}: {p}" for p in axe_violations(page, live_server.url))

    log_in(page, "/admin/", "support")
    audit(CALLS)
    audit(CALLS + "?model=gpt-4o&start=2026-13-45")  # with messages and an invalid input
    audit(f"{CALLS}{error_call.pk}/change/")
    audit(f"{CALLS}{long_call.pk}/change/", lambda: page.locator("details summary").first.click())
    audit(CALLS + "stats/")
    # Dark mode has colours of its own (ours too: JSON highlighting, the slow badge).
    page.emulate_media(color_scheme="dark")
    audit(CALLS)
    audit(f"{CALLS}{long_call.pk}/change/", lambda: page.locator("details summary").first.click())
    screenshot(page, "staff-call-detail-dark", full_page=True)
    page.emulate_media(color_scheme="light")

    page.context.clear_cookies()
    log_in(page, "/portal/", "owner-acme")
    audit("/portal/")
    audit(PORTAL_CALLS)
    audit(f"{PORTAL_CALLS}{long_call.pk}/change/")
    audit(PORTAL_CALLS + "stats/")

    assert problems == [], "accessibility problems:\n" + "\n".join(problems)
