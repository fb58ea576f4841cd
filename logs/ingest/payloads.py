"""The bulky parts of a record (request parameters, headers, body, response,
error detail): checked for depth and storable text, redacted, written as the
JSON text that is stored, and capped at ``USAGELOGS_PAYLOAD_MAX_BYTES``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from logs.ingest.errors import Problems
from logs.ingest.redaction import (
    redact_json,
)
from logs.ingest.text import SURROGATE_PROBLEM, has_lone_surrogate, printable


@dataclass
class _StoredPart:
    text: str
    truncated: bool
    original_bytes: int | None


# The standard library's form of a part's text (an encoder built once: json.dumps
# with options builds one per call): where orjson cannot say (see _part_json).
_stdlib_part_json = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode

# Anything but plain dict, list, str, int, float, bool and None goes to the
# standard library (see _part_json).
_PART_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _refuse(value: Any) -> Any:
    raise TypeError


def _part_json(value: Any) -> str:
    """A part's JSON text as stored: compact, other than ASCII as it is.

    orjson writes it several times faster than ``json``. Where orjson refuses
    (a subclass such as an IntEnum, a key that is not a string, an integer
    beyond 64 bits, a lone surrogate, anything not JSON) the standard library
    writes it, or raises as it always did (TypeError, ValueError). orjson writes
    NaN and infinities as null where ``json`` (``allow_nan=False``) refuses
    them: a text with a null is checked by ``json`` too. A text orjson wrote is
    valid UTF-8, so it holds no lone surrogate.
    """
    try:
        encoded = orjson.dumps(value, default=_refuse, option=_PART_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return _stdlib_part_json(value)
    if b"null" in encoded:
        _stdlib_part_json(value)  # raises ValueError for NaN and infinities
    return encoded.decode()


def prepare_parts(
    parts: dict[str, Any], problems: Problems
) -> tuple[dict[str, Any], dict[str, str | None]] | None:
    """Check the nesting of every part, then redact each and write it as JSON.

    Returns the redacted parts and their JSON texts, or None with the problems
    added. Each part is encoded once up front: the text shows at C speed that
    a part nests no deeper than it has brackets, and when redaction leaves the
    part as it is (``redact_json``) it is the stored text as well.
    """
    texts: dict[str, str | None] = {}
    for name, value in parts.items():
        try:
            text = None if value is None else _part_json(value)
        except (TypeError, ValueError, RecursionError):
            text = None  # judged below, as before: depth first, then "not plain JSON"
        texts[name] = text
        if text is not None and has_lone_surrogate(text):
            problems.add(*_lone_surrogate_at(value, _PART_FIELDS[name]))
        if value is not None and (
            _nesting_depth(value) > MAX_PAYLOAD_DEPTH
            if text is None
            else _nests_deeper(value, text, MAX_PAYLOAD_DEPTH)
        ):
            problems.add(_PART_FIELDS[name], f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep")
    if problems.errors:
        return None
    redacted: dict[str, Any] = {}
    try:
        for name, value in parts.items():
            if value is None:
                redacted[name] = None
            else:
                redacted[name], texts[name] = redact_json(value, texts[name], _part_json)
    except (TypeError, ValueError) as exc:
        problems.add("request", f"payload is not plain JSON: {exc}")
        return None
    return redacted, texts


MAX_PAYLOAD_DEPTH = 64


_PART_FIELDS = {
    "request_params": "request.params",
    "request_headers": "request.headers",
    "request_body": "request.body",
    "response": "response",
    "error_detail": "error",
}


def _lone_surrogate_at(value: Any, path: str) -> tuple[str, str]:
    """(field, message) naming the first string of a part, key or value, that holds a
    lone surrogate, as a path such as ``request.body.messages[0].content``."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return where, SURROGATE_PROBLEM
        elif isinstance(item, Mapping):
            for key in item:
                if isinstance(key, str) and has_lone_surrogate(key):
                    return where, (
                        f"has a key ({key!a}) with a lone surrogate (\\ud800-\\udfff): "
                        "it is not valid Unicode and the database cannot store it"
                    )
            children = [(child, f"{where}.{printable(key)}") for key, child in item.items()]
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(child, f"{where}[{i}]") for i, child in enumerate(item)]))
    return path, SURROGATE_PROBLEM


# A JSON string, escapes and all; and a list or object holding no other.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST = re.compile(r"[\[{][^\[\]{}]*[\]}]")


def _nests_deeper(value: Any, text: str, limit: int) -> bool:
    """``_nesting_depth(value) > limit``, for a value and its JSON text.

    A part of many small objects (a streamed answer's chunks) has more brackets
    than the limit without nesting deep, and walking it in Python cost more
    than all else done to it. orjson writes it indented instead: a list or
    object nested ``limit + 1`` deep sits in one at ``limit`` that holds
    something, written on lines indented by ``2 * limit`` spaces (a string's
    line breaks are escaped, so every line break is the writer's). Only a text
    with such a line is measured exactly.
    """
    if text.count("{") + text.count("[") <= limit:
        return False
    if limit < 1:  # the top level has no container around it
        return _text_nests_deeper(text, limit)
    try:
        indented = orjson.dumps(value, default=_refuse, option=_PART_OPTIONS | orjson.OPT_INDENT_2)
    except TypeError:  # orjson.JSONEncodeError: not orjson's to write, or beyond its depth
        return _text_nests_deeper(text, limit)
    if b"\n" + b" " * (2 * limit) not in indented:
        return False
    return _text_nests_deeper(text, limit)


def _text_nests_deeper(text: str, limit: int) -> bool:
    """``_nesting_depth(value) > limit``, told from the value's JSON text by
    regular expressions (in C): strings out, then each pass takes out the lists
    and objects that hold no other, one level of nesting a pass."""
    structure = _JSON_STRING.sub("", text)
    for _ in range(limit):
        structure, removed = _INNERMOST.subn("", structure)
        if not removed:
            return False
    return "[" in structure or "{" in structure


def _nesting_depth(value: Any) -> int:
    """How deep lists and objects nest (iteratively: no recursion to blow)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_PAYLOAD_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def cap_text(text: str | None, max_bytes: int) -> _StoredPart:
    """A part's JSON text (None: no part), cut to ``max_bytes`` on a character boundary."""
    if text is None:
        return _StoredPart("", False, None)
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return _StoredPart(text, False, None)
    cut = encoded[:max_bytes].decode("utf-8", errors="ignore")
    return _StoredPart(cut, True, len(encoded))
