"""Browser tests: Debian's chromium (headless), driven by Playwright, against the
project served by pytest-django's ``live_server`` on 127.0.0.1.

Every test here is marked ``@pytest.mark.e2e``. They need PostgreSQL (the
production database; ``DATABASE_URL=postgres://...``) and ``/usr/bin/chromium``
(``.ci/run`` installs it). Without either they are skipped, and the end of the
run says so in a banner, like the PostgreSQL-only tests (tests/conftest.py).

Screenshots go to ``test-artifacts/screenshots/`` (git-ignored); the README's
ones are copies in ``docs/screenshots/``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import on_postgresql

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}
LIVE_SERVER_HOST = "127.0.0.1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

_e2e_skipped: set[str] = set()


def e2e_skip_reason() -> str | None:
    missing = []
    if not on_postgresql():
        missing.append("PostgreSQL (set DATABASE_URL=postgres://...)")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium; .ci/run does)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install '.[dev]')")
    if not missing:
        return None
    return "browser test needs " + " and ".join(missing)


def pytest_configure(config):
    # Serve on 127.0.0.1 (pytest-django's default is "localhost") unless told otherwise.
    if not config.getoption("liveserver", None) and not os.environ.get(
        "DJANGO_LIVE_TEST_SERVER_ADDRESS"
    ):
        config.option.liveserver = LIVE_SERVER_HOST


def pytest_collection_modifyitems(config, items):
    reason = e2e_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)
            _e2e_skipped.add(item.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = sum(
        1
        for report in terminalreporter.stats.get("skipped", [])
        if getattr(report, "nodeid", None) in _e2e_skipped
    )
    if skipped:
        tests = "test was" if skipped == 1 else "tests were"
        terminalreporter.write_sep(
            "!",
            f"{skipped} browser (e2e) {tests} SKIPPED: {e2e_skip_reason()}",
            yellow=True,
            bold=True,
        )


# --- the browser --------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """One chromium for the session (starting it costs a second or two)."""
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an asyncio loop running in this thread, and
        # Django then refuses database work here (the test's data, the flush after
        # each test) as "called from an async context". Nothing here is async:
        # the server answers from its own threads.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class BrowserProblems:
    """JavaScript errors, console errors and server errors seen by one page."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("pageerror", lambda error: self.items.append(f"JavaScript error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.items.append(f"console error: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on(
            "response",
            lambda response: (
                self.items.append(f"HTTP {response.status} from {response.url}")
                if response.status >= 500
                else None
            ),
        )


@pytest.fixture
def page(browser, live_server) -> Iterator:
    """A fresh browser context (no cookies) on the live server, 1440x900.

    The test fails if the page logged a JavaScript error or got a 5xx answer.
    """
    context = browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        accept_downloads=True,
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(10_000)
    # The admin has no favicon; the browser's request for one is not the page's fault.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = context.new_page()
    problems = BrowserProblems(page)
    yield page
    context.close()
    assert problems.items == [], "the browser saw problems:\n" + "\n".join(problems.items)


@pytest.fixture
def world(transactional_db, clock):
    from tests.e2e.world import build_world

    return build_world(clock.now)
