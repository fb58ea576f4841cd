"""Reading admin pages as a person sees them: list rows, messages, detail fields, CSV cells.

Helpers for tests/logs (not a test module). Text is read from the HTML with the
standard library's parser, so entities are decoded and tags dropped, the way a
browser shows them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from html.parser import HTMLParser

VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)

Want = Callable[[str, dict[str, str | None]], str | None]


class _Capture(HTMLParser):
    """Collects the text inside every element for which ``want`` returns a name."""

    def __init__(self, want: Want):
        super().__init__(convert_charrefs=True)
        self.want = want
        # open elements: (tag, name or None, order of opening, text chunks)
        self.stack: list[tuple[str, str | None, int, list[str]]] = []
        self.found: list[tuple[int, str, str]] = []  # (order of opening, name, text)
        self.opened = 0

    def handle_starttag(self, tag, attrs):
        if tag in VOID_TAGS:
            return
        self.opened += 1
        self.stack.append((tag, self.want(tag, dict(attrs)), self.opened, []))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                for _, name, order, chunks in self.stack[index:]:
                    if name is not None:
                        self.found.append((order, name, "".join(chunks)))
                del self.stack[index:]
                return

    def handle_data(self, data):
        for _, name, _, chunks in self.stack:
            if name is not None:
                chunks.append(data)


def capture(html: str, want: Want) -> list[tuple[str, str]]:
    """(name, text) of the wanted elements, in document order."""
    parser = _Capture(want)
    parser.feed(html)
    parser.close()
    return [(name, text) for _, name, text in sorted(parser.found)]


def squeeze(text: str) -> str:
    return " ".join(text.split())


def _class_with_prefix(prefix: str) -> Want:
    def want(tag, attrs):
        for css_class in (attrs.get("class") or "").split():
            if css_class.startswith(prefix) and tag in ("td", "th"):
                return css_class[len(prefix) :]
        return None

    return want


def page(response) -> str:
    return response.content.decode()


def result_rows(response) -> list[dict[str, str]]:
    """The rows of the admin's result list: {column name: the cell's text}."""
    match = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', page(response), re.S)
    if match is None:
        return []
    return [
        {name: squeeze(text) for name, text in capture(row, _class_with_prefix("field-"))}
        for row in re.findall(r"<tr\b.*?</tr>", match.group(1), re.S)
    ]


def column_headers(response) -> list[tuple[str, str]]:
    """(column name, header text) of the result list, left to right."""
    match = re.search(r'<table id="result_list">.*?<thead>(.*?)</thead>', page(response), re.S)
    assert match is not None, "no result list on the page"
    return [
        (name, squeeze(text))
        for name, text in capture(match.group(1), _class_with_prefix("column-"))
    ]


def messages_on_page(response) -> list[tuple[str, str]]:
    """(level, text) of the messages shown at the top of an admin page."""
    match = re.search(r'<ul class="messagelist">(.*?)</ul>', page(response), re.S)
    if match is None:
        return []
    return [
        (level, squeeze(text))
        for level, text in capture(
            match.group(1),
            lambda tag, attrs: (attrs.get("class") or "info") if tag == "li" else None,
        )
    ]


def by_data_attribute(response, attribute: str) -> dict[str, str]:
    """{value of ``attribute``: text} for every element carrying it (e.g. data-field)."""
    return dict(capture(page(response), lambda tag, attrs: attrs.get(attribute)))


def detail_fields(response) -> dict[str, str]:
    return {name: squeeze(text) for name, text in by_data_attribute(response, "data-field").items()}


def payload_parts(response) -> dict[str, str]:
    """The pretty-printed payload parts of a call's detail page, as shown (not squeezed)."""
    return by_data_attribute(response, "data-part")


def totals_on_page(response) -> dict[str, str]:
    return {name: squeeze(text) for name, text in by_data_attribute(response, "data-total").items()}


def exact_totals_on_page(response) -> dict[str, str]:
    """{measure: the exact value} of the totals shown rounded for reading (usage, cost)."""
    return dict(re.findall(r'data-total="([a-z_]+)" data-exact="([^"]*)"', page(response)))


def links(response) -> list[tuple[str, str]]:
    """(text, href) of every link on the page."""
    hrefs: list[str] = []

    def want(tag, attrs):
        if tag == "a" and attrs.get("href"):
            hrefs.append(attrs["href"])
            return str(len(hrefs) - 1)
        return None

    found = capture(page(response), want)
    return [(squeeze(text), hrefs[int(index)]) for index, text in found]


def whole_export_rows(content: str) -> list[list[str]]:
    """The rows of a complete CSV export (the header first), without its closing
    line, which is checked: it is there and counts the rows above it."""
    rows = list(csv.reader(io.StringIO(content, newline="")))
    assert rows, "an empty file"
    *rows, last = rows
    calls = len(rows) - 1
    assert last == [f"# end of export: {calls} call{'' if calls == 1 else 's'}"], last
    assert content.endswith("\r\n")
    return rows


def csv_rows(response) -> list[list[str]]:
    """Every row of a CSV download (the header first), the closing line checked and left off."""
    content = (
        b"".join(response.streaming_content) if response.streaming else response.content
    ).decode("utf-8-sig")
    return whole_export_rows(content)
