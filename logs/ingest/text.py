"""Text PostgreSQL cannot store: NUL characters and lone surrogates.

A gateway that sends either must get a 400 naming the field, not a 500 that
it would retry forever.
"""

from __future__ import annotations

import re
from typing import Any


def describe_value(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def printable(name: Any) -> str:
    """A name as it can be shown in a message: escaped (``x\\ud800``) when it holds
    characters that would garble a terminal or cannot be written as UTF-8."""
    text = str(name)
    return text if text.isprintable() else ascii(text)[1:-1]


# PostgreSQL's text type holds neither the NUL character nor a lone surrogate
# (not valid Unicode, which JSON's "\ud800" escape can still spell), and refuses
# the whole statement — the whole batch — when one reaches it. Validation refuses
# them first, naming the field. (In a payload part a NUL is harmless: JSON text
# writes it as the six characters \u0000.)
_NUL_PROBLEM = "must not contain the NUL character (\\u0000): the database cannot store it"


SURROGATE_PROBLEM = (
    "must not contain a lone surrogate (\\ud800-\\udfff): it is not valid Unicode "
    "and the database cannot store it"
)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate, the only code points UTF-8 cannot encode.

    ``isascii`` is O(1) on a str, and encoding a non-ASCII text is several times
    faster than searching it for the range with a regular expression.
    """
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def unstorable(text: str) -> str:
    """Why the database cannot store ``text`` ("" when it can)."""
    if "\x00" in text:
        return _NUL_PROBLEM
    if has_lone_surrogate(text):
        return SURROGATE_PROBLEM
    return ""


def storable(text: str) -> bool:
    """``not unstorable(text)``, for the fast path."""
    return "\x00" not in text and not has_lone_surrogate(text)


# Identifiers a user filters by and reads in a cell (end users, tags): a control
# character there (a newline, an escape sequence) is a gateway's bug, and would
# garble the page, the CSV and the filter's choices.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


_CONTROL_PROBLEM = "must not contain control characters (such as a newline, a tab or \\u0000)"


def unlabel(text: str) -> str:
    """Why ``text`` cannot be a label — an end user id, a tag ("" when it can)."""
    if _CONTROL.search(text):
        return _CONTROL_PROBLEM
    return unstorable(text)


def is_label(text: str) -> bool:
    """``not unlabel(text)``, for the fast path."""
    return _CONTROL.search(text) is None and not has_lone_surrogate(text)
