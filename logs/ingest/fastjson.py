"""JSON for the ingest path: orjson's speed with the standard library's results.

Ingest batches are large (a thousand records, over a megabyte), and parsing them
and writing each record's canonical text for its content hash were a good part of
a batch's time with the ``json`` module. orjson does both several times faster,
but it does not always give the same answer, and here the answer must not
change: a record must be accepted or refused as before, and a content hash must
stay byte for byte what earlier versions stored, or replays of calls already
stored would no longer be recognised. So each function uses orjson where it is
known to agree with ``json`` and falls back to ``json`` everywhere else.
"""

from __future__ import annotations

import codecs
import json
import re
from contextlib import contextmanager
from typing import Any

import orjson

# --- parsing --------------------------------------------------------------------

# Digits → "0", every other byte → "x": a run of 19 zeros in the translation is a
# run of 19 digits in the text.
DIGIT_MAP = bytes(48 if 48 <= byte <= 57 else 120 for byte in range(256))
LONG_DIGIT_RUN = b"0" * 19


def loads(raw: bytes) -> Any:
    """``json.loads(raw)``: the same value, or the same exception.

    orjson refuses some texts ``json`` accepts (NaN and Infinity, numbers too
    large for a double, lone surrogates, a UTF-8 byte order mark, UTF-16 and
    UTF-32, nesting beyond 1024 levels): any text orjson refuses goes to
    ``json``, which accepts it or raises exactly as before. The one text orjson
    accepts differently is an integer beyond 64 bits, which it turns into a
    float; such an integer has at least 19 digits, so any run of 19 digits (in a
    string too: harmless) sends the text to ``json`` as well.
    """
    if LONG_DIGIT_RUN not in raw.translate(DIGIT_MAP):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json decides, with its own message
    return json.loads(raw)


# --- canonical text ---------------------------------------------------------------

_stdlib_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode

# Anything but plain dict, list, tuple, str, int, float, bool and None reaches
# _refuse, which sends the value to the standard library: subclasses (an IntEnum,
# a str subclass), datetimes and dataclasses would be written differently by orjson.
_CANONICAL_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# orjson writes small floats in another form than repr() (0.00001 for 1e-05,
# 1e-9 for 1e-09): every such number contains "0.0000" or a digit followed by
# "e-". A text with neither (_may_hold_orjson_number) holds no such number; one
# with either is searched for it (_ORJSON_OWN_NUMBER).
# Such a number where it is one: first, or after , : or [ (the text is compact), not inside
# a string such as a cost ("0.00001740"), which the substring tests above
# cannot tell apart. Searched only when they found something.
_ORJSON_OWN_NUMBER = re.compile(rb"(?:\A|[:,\[])-?(?:0\.0000|[0-9.]+e-)")


def _refuse(value: Any) -> Any:
    raise TypeError


def _may_hold_orjson_number(encoded: bytes) -> bool:
    """Whether ``encoded`` holds "0.0000" or a digit followed by "e-": substring
    searches (C loops), then a look at the byte before each of the few "e-" (in
    prose: "e-mail", "re-"), far faster than a regular expression over the text."""
    if b"0.0000" in encoded:
        return True
    at = encoded.find(b"e-", 1)
    while at != -1:
        if 48 <= encoded[at - 1] <= 57:
            return True
        at = encoded.find(b"e-", at + 2)
    return False


def canonical_dumps(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)``,
    character for character (the text content hashes are taken of), for a value
    without NaN or infinities (orjson writes them as null): what ingest
    validation lets through, as parts are checked with ``allow_nan=False``."""
    return canonical_bytes(value).decode("ascii")


def canonical_bytes(value: Any) -> bytes:
    """``canonical_dumps(value)`` encoded (it is ASCII): what is hashed, without
    decoding orjson's bytes and encoding them again."""
    try:
        encoded = orjson.dumps(value, default=_refuse, option=_CANONICAL_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys, NaN, subclasses…
        return _stdlib_canonical(value).encode("ascii")
    if _may_hold_orjson_number(encoded) and _ORJSON_OWN_NUMBER.search(encoded):
        return _stdlib_canonical(value).encode("ascii")
    # Outside strings the text is ASCII; inside them json escapes every character
    # from DEL up, orjson none: escape them as json does. (orjson writes no lone
    # surrogate, and DEL is the only ASCII character json escapes that orjson does not.)
    if not encoded.isascii():
        encoded = encoded.decode().encode("ascii", _JSON_ESCAPES)
    if b"\x7f" in encoded:
        encoded = encoded.replace(b"\x7f", b"\\u007f")
    return encoded


def _escape_as_json(error: UnicodeEncodeError) -> tuple[str, int]:
    """A run of non-ASCII characters as ``json`` (``ensure_ascii``) writes it:
    \\uXXXX for each UTF-16 code unit (a surrogate pair beyond the BMP), lower-case."""
    units = error.object[error.start : error.end].encode("utf-16-be").hex()
    return "".join(["\\u" + units[at : at + 4] for at in range(0, len(units), 4)]), error.end


# An encoding error handler (codecs' public registry): the encoder hands it each
# run of non-ASCII characters, found at C speed.
_JSON_ESCAPES = "usagelogs-json-ascii"
codecs.register_error(_JSON_ESCAPES, _escape_as_json)


# --- garbage collection -------------------------------------------------------------


@contextmanager
def paused_gc():
    """No cyclic garbage collection inside the block (as it was if nested).

    A batch makes hundreds of thousands of small objects that all live until
    its end; the collector, seeing them pile up, runs full collections over the
    whole process (over 100 ms each) several times a batch while finding nothing
    to free: these objects hold no cycles and go by reference counting.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
