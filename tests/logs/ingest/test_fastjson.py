"""logs.ingest.fastjson: orjson's speed, json's results — the same parsed value or the same
error, and canonical text (what content hashes are taken of) character for character."""

from __future__ import annotations

import gc
import json
import random

import pytest

from logs.ingest.fastjson import canonical_dumps, loads, paused_gc

stdlib_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1, "a": 2}',
        b"[18446744073709551616, -9223372036854775809, 123456789012345678901234567890]",
        b'["digits in a string: 12345678901234567890"]',
        b"[NaN, Infinity, -Infinity, 1e400]",
        b'["\\ud800 lone surrogate"]',
        b"\xef\xbb\xbf[1]",
        '[{"é": "ü"}]'.encode("utf-16"),
        b"[0.1, 1e-05, -0.0, 5e-324, 1.7976931348623157e308]",
    ],
)
def test_loads_gives_what_json_gives(text):
    assert repr(loads(text)) == repr(json.loads(text))


def test_nesting_too_deep_for_json_is_its_recursion_error():
    text = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        loads(text)


@pytest.mark.parametrize("text", [b"[1,]", b"[1] x", b'["a\x00"]', b"", b"\xff\xfe\xfa"])
def test_loads_refuses_what_json_refuses_with_the_same_error(text):
    with pytest.raises((ValueError, UnicodeDecodeError)) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)) as got:
        loads(text)
    assert str(got.value) == str(expected.value)


ALPHABET = ["a", "Z", "é", "ß", "€", "😀", "\x7f", "\x00", "\x1f", "\n", "\t", '"', "\\", "/"]
ALPHABET += ["\u2028", "日本", " ", ",", ":", "1e-5", "\ud7ff", "\ue000", "\uffff"]
NUMBERS = [0, -1, 2**63, 2**64, -(2**63) - 1, 10**30, 0.0, -0.0, 0.1, 1e-7, 0.00001, 1e16, 1e22]


def random_value(rng: random.Random, depth: int = 0):
    def text():
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 5)))

    roll = rng.random()
    if depth > 4 or roll < 0.3:
        number = rng.random() * 10 ** rng.randint(-8, 20)
        return rng.choice([text(), rng.randint(-(10**12), 10**12), number, True, None, *NUMBERS])
    if roll < 0.65:
        return {text(): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def test_canonical_text_is_jsons_character_for_character():
    rng = random.Random(7)
    for _ in range(3000):
        value = random_value(rng)
        assert canonical_dumps(value) == stdlib_canonical(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1e-05, 1e-9, 0.00012, 123.25, 1e16, 2.5e-300]},
        {"é": "naïve ☕ 😀 \x7f", "z": '\x00\x1f\n\t"\\/'},
        {"big": 2**64, "negative": -(2**63) - 1},
        {"surrogate": "\udc80"},
        {1: "int keys", 2: "written as strings"},
        {"tuple": (1, 2), "nested": {"deep": [[[]]]}},
        {"when": __import__("datetime").datetime(2026, 1, 2, 3, 4, 5)},
        {"decimal": __import__("decimal").Decimal("1.50")},
        {"subclass": type("Text", (str,), {})("x"), "flag": __import__("enum").IntEnum("E", "A").A},
        {"deep": json.loads("[" * 300 + "]" * 300)},  # deeper than orjson writes
    ],
)
def test_canonical_text_of_odd_values_is_jsons(value):
    assert canonical_dumps(value) == stdlib_canonical(value)


def test_paused_gc_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError
    assert gc.isenabled()
