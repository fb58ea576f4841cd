"""What the browser tests do often: log in, read the call list, save a
screenshot, run the accessibility audit. (Not a test module.)"""

from __future__ import annotations

from dataclasses import dataclass

from django.templatetags.static import static

from tests.e2e.conftest import SCREENSHOTS
from tests.factories import TEST_PASSWORD
from tests.pages import whole_export_rows

CALLS = "/admin/logs/callrecord/"
PORTAL_CALLS = "/portal/logs/callrecord/"
AXE = "logs/vendor/axe.min.js"


def log_in(page, site: str, username: str, password: str = TEST_PASSWORD) -> None:
    """Log in through the login form of ``site`` ("/admin/" or "/portal/")."""
    page.goto(f"{site}login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{site}")


def open_filters(page) -> None:
    """Show the call list's filters where they fold behind the *Filters* button
    (the table needs the width beside the admin's navigation); they then stay
    open on the following pages of the tab."""
    toggle = page.locator(".filters-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    page.locator("#changelist-filter").wait_for(state="visible")


def screenshot(page, name: str, *, full_page: bool = False) -> None:
    """Save ``test-artifacts/screenshots/<name>.png`` (the viewport, or the whole page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if full_page:
        # Sticky parts (the admin's navigation) are drawn where the page is scrolled to.
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(
        path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled"
    )


def result_rows(page) -> list[dict[str, str]]:
    """The call list as shown: one {column: text} per row, plus "utc" (the
    time's datetime attribute) and "href" (the link to the call)."""
    return page.eval_on_selector_all(
        "#result_list tbody tr",
        """rows => rows.map(row => {
            const cells = {};
            for (const cell of row.querySelectorAll("td, th")) {
                const name = [...cell.classList].find(c => c.startsWith("field-"));
                if (name) cells[name.slice(6)] = cell.innerText.replace(/\\s+/g, " ").trim();
            }
            const time = row.querySelector("time");
            cells.utc = time ? time.getAttribute("datetime") : null;
            const link = row.querySelector("a");
            cells.href = link ? link.getAttribute("href") : null;
            return cells;
        })""",
    )


def totals(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "[data-total]",
        "items => Object.fromEntries(items.map(i => [i.dataset.total, i.innerText.trim()]))",
    )


def messages(page) -> list[str]:
    return [text.strip() for text in page.locator("ul.messagelist li").all_inner_texts()]


def painted_pixels(page, svg) -> int:
    """How many on-screen pixels of an SVG chart have the colour of one of its
    data marks (bars, lines, points): zero for a chart that draws only axes."""
    import base64

    svg.scroll_into_view_if_needed()
    colours = svg.evaluate(
        """svg => [...new Set([...svg.querySelectorAll(".chart-bar, .chart-line, .chart-point")]
            .map(mark => {
                const style = getComputedStyle(mark);
                return mark.classList.contains("chart-line") ? style.stroke : style.fill;
            }))]"""
    )
    png = base64.b64encode(svg.screenshot(animations="disabled")).decode()
    return page.evaluate(
        """async ([png, colours]) => {
            const wanted = colours
                .map(c => c.match(/\\d+/g))
                .filter(Boolean)
                .map(([r, g, b]) => [+r, +g, +b]);
            const image = new Image();
            image.src = "data:image/png;base64," + png;
            await image.decode();
            const canvas = document.createElement("canvas");
            canvas.width = image.width;
            canvas.height = image.height;
            const context = canvas.getContext("2d");
            context.drawImage(image, 0, 0);
            const pixels = context.getImageData(0, 0, image.width, image.height).data;
            let painted = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                if (wanted.some(([r, g, b]) => Math.abs(pixels[i] - r) + Math.abs(pixels[i + 1] - g)
                        + Math.abs(pixels[i + 2] - b) < 12)) {
                    painted += 1;
                }
            }
            return painted;
        }""",
        [png, colours],
    )


def read_csv(download) -> list[dict[str, str]]:
    """The rows of a downloaded export, which must be whole: its closing line
    (checked against the rows above it) is left off."""
    with open(download.path(), encoding="utf-8-sig", newline="") as handle:
        content = handle.read()
    header, *rows = whole_export_rows(content)
    return [dict(zip(header, row, strict=True)) for row in rows]


# --- accessibility ------------------------------------------------------------------


@dataclass(frozen=True)
class Exclusion:
    """A violation we accept, and why: one axe rule on elements inside ``selector``."""

    rule: str
    selector: str
    why: str


# Violations in Django admin's own markup that this project cannot reasonably
# change. None today: every serious or critical finding so far was ours, and fixed
# (a visible label on the call search, underlined links in text, keyboard access
# to scrollable charts).
EXCLUSIONS: tuple[Exclusion, ...] = ()


def axe_violations(page, live_server_url: str) -> list[str]:
    """Run axe-core (served from our static files) on the page as it is now and
    return its critical and serious violations, one line per rule and element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=live_server_url + static(AXE))
    violations = page.evaluate(
        """async (exclusions) => {
            const results = await axe.run(document, {resultTypes: ["violations"]});
            const excluded = (rule, target) => exclusions.some(e => e.rule === rule
                && document.querySelector(target)?.closest(e.selector) != null);
            return results.violations
                .filter(v => v.impact === "critical" || v.impact === "serious")
                .flatMap(v => v.nodes
                    .filter(n => !excluded(v.id, n.target.join(" ")))
                    .map(n => `${v.impact} ${v.id} (${v.help}): ${n.target.join(" ")}`
                        + ` — ${n.failureSummary}`));
        }""",
        [{"rule": e.rule, "selector": e.selector} for e in EXCLUSIONS],
    )
    return violations
