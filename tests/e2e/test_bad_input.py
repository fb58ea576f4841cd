"""Bad input in the filters: a clear message and no rows, never a server error
(the ``page`` fixture also fails the test on any 5xx answer)."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import CALLS, log_in, messages, open_filters, screenshot

# The live server reads through the read-replica aliases too when DATABASE_REPLICA_URLS is set.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]


def assert_no_rows(page) -> None:
    assert page.locator("#result_list tbody tr").count() == 0
    assert page.locator('[data-total="calls"]').inner_text() == "0"


def test_bad_filter_input_shows_a_clear_message_and_no_rows(page, world):
    log_in(page, "/admin/", "support")
    page.goto(CALLS)
    open_filters(page)

    # An end before the start, typed into the inputs.
    page.get_by_label("From (inclusive)").fill("2026-11-20T10:00")
    page.get_by_label("To (exclusive)").fill("2026-11-19T10:00")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Apply").click()
    assert navigation.value.status == 200
    note = page.locator("#changelist-filter .errornote")
    assert note.inner_text() == "Time range: the end must be after the start."
    assert note.get_attribute("role") == "alert"
    assert page.get_by_label("From (inclusive)").get_attribute("aria-invalid") == "true"
    assert messages(page) == [
        "Time range: the end must be after the start. No calls are shown until it is fixed."
    ]
    assert_no_rows(page)
    screenshot(page, "bad-input-end-before-start")

    # A malformed date (from an edited or pasted address).
    response = page.goto(CALLS + "?start=28/11/2026&model=gpt-4o")
    assert response.status == 200
    assert messages(page) == [
        "Time range start: “28/11/2026” is not a date and time (use YYYY-MM-DD HH:MM). "
        "No calls are shown until it is fixed."
    ]
    assert_no_rows(page)
    screenshot(page, "bad-input-malformed-date")

    # A model nobody here calls.
    response = page.goto(CALLS + "?model=gpt-7-imaginary")
    assert response.status == 200
    assert messages(page) == [
        "Model “gpt-7-imaginary” is not one you can filter on here, so no calls match."
    ]
    assert_no_rows(page)
    screenshot(page, "bad-input-unknown-model")

    # The usage stats page and the export answer the same input calmly too.
    response = page.goto(CALLS + "stats/?model=gpt-7-imaginary&start=2026-13-45")
    assert response.status == 200
    assert messages(page) == [
        "Time range start: “2026-13-45” is not a date and time (use YYYY-MM-DD HH:MM). "
        "No calls are shown until it is fixed.",
        "Model “gpt-7-imaginary” is not one you can filter on here, so no calls match.",
    ]
    assert page.locator("[data-empty]").inner_text() == "No calls match these filters."
    # An export of bad input sends no file but a page (400) with the list's
    # message, and leaves no message behind for the next page. (Fetched beside
    # the page, with its cookies: a 4xx document would be a console error.)
    refused = page.request.get(CALLS + "export/?start=2026-11-20T10:00&end=2026-11-19T10:00")
    assert refused.status == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "Nothing was exported" in refused.text()
    assert "Time range: the end must be after the start." in refused.text()
    page.goto(CALLS)
    assert messages(page) == []

    # A lookup the sidebar does not offer is refused, not applied behind the totals' back.
    response = page.goto(CALLS + "?status_code__gte=500")
    assert response.status == 200
    assert messages(page) == [
        "“status_code__gte” is not a filter of this list, so no calls are shown."
    ]
    assert_no_rows(page)
