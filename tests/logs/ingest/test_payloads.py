"""A record's parts may nest at most 64 levels deep, however wide they are.

The depth is told from each part's JSON text (a streamed answer of hundreds of
small objects has far more brackets than 64 without nesting deep): brackets
inside strings, empty lists and objects, and siblings must not change the verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from logs.ingest.payloads import MAX_PAYLOAD_DEPTH, _nesting_depth, _nests_deeper, _part_json
from logs.ingest.records import validate_record_fully, validate_usual
from tests.factories import record_dict

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

tricky_strings = st.sampled_from(["", "[", "]]", "{[", '"', '\\"[', "\\", "a\nb", "[{}]", "é[中"])
leaves = st.one_of(st.none(), st.integers(), st.booleans(), tricky_strings)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(tricky_strings, children, max_size=4)
    ),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(trees, st.integers(min_value=0, max_value=6))
def test_the_depth_told_from_the_text_is_the_depth_of_the_value(tree, limit):
    assert _nests_deeper(tree, _part_json(tree), limit) == (depth(tree) > limit)
    assert _nesting_depth(tree) == depth(tree)


@st.composite
def deep_wide_parts(draw) -> Any:
    """A chain of lists and objects about 64 deep, with siblings at every level
    (many more brackets than levels) and a last level that may be empty."""
    levels = draw(st.integers(min_value=MAX_PAYLOAD_DEPTH - 2, max_value=MAX_PAYLOAD_DEPTH + 2))
    value: Any = draw(st.one_of(leaves, st.just([]), st.just({})))
    for _ in range(levels - (1 if value in ([], {}) else 0)):
        siblings = draw(st.lists(trees.filter(lambda t: depth(t) <= 2), max_size=2))
        if draw(st.booleans()):
            value = [*siblings, value]
        else:
            value = {**{f"s{i}": s for i, s in enumerate(siblings)}, "next": value}
    return value


@settings(max_examples=40, deadline=None)
@given(deep_wide_parts())
def test_a_part_nested_deeper_than_64_levels_is_refused_by_name(body):
    record = record_dict("sk-abcdefghi", created_at=datetime(2026, 6, 1, 11, 0, tzinfo=UTC))
    record["request"] = {"body": body}

    call, errors = validate_record_fully(0, record, NOW)

    if depth(body) > MAX_PAYLOAD_DEPTH:
        assert call is None
        assert [(e.field, e.message) for e in errors] == [
            ("request.body", f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep")
        ]
        assert validate_usual(0, record, NOW) is None
    else:
        assert errors == []
        assert call.texts["request_body"] == _part_json(body)
