"""The ingest service validates the usual record in one pass (``_validate_usual``)
and leaves anything out of the ordinary to the full validator, which words
every problem. The shortcut must never accept what the full validator refuses,
nor accept anything differently."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from logs.services import TOP_LEVEL_FIELDS, _validate_record_fully, _validate_usual
from tests.factories import record_dict

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = record_dict(
    "sk-abcdefghi",
    request_id="req-fast-1",
    created_at=datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
    error={"type": "rate_limit", "message": "slow down"},
    upstream="azure-eastus",
    group="vip",
    total_tokens=150,
)
OMIT = object()

interesting = st.sampled_from(
    [
        "",
        " ",
        " chat ",
        "chat",
        "embedding",
        "req with space",
        "req\u2003wide",
        "sk-abcdefghi",
        "sk-abcdefghij",
        " sk-abcdefghi ",
        "2026-06-01T11:00:00Z",
        "2026-06-01T11:00:00",
        "2026-06-01T12:11:00+00:00",
        "1999-12-31T23:00:00-02:00",
        "not a date",
        "0.5",
        " 0.5 ",
        "0.1234567",
        "0.123456000",
        "1e3",
        "1E-7",
        "-0",
        "-1",
        "NaN",
        "Infinity",
        "1_000",
        "999999999.999999",
        "1000000000",
        "10.0.0.1",
        "010.0.0.1",
        "::1",
        "2001:DB8::1",
        "Bearer abcdefghijklmnopqrstu",
        "x" * 129,
        "y" * 256,
    ]
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=5 * 10**9),
    st.sampled_from([0, 99, 100, 599, 600, 86_400_000, 86_400_001, 2**31 - 1, 2**31]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    interesting,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["params", "headers", "body", "x", "type"]), interesting),
)
fields = st.sampled_from([*sorted(TOP_LEVEL_FIELDS), "input_token", "extra"])


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(fields, st.one_of(values, st.just(OMIT)), max_size=4))
def test_the_shortcut_agrees_with_the_full_validator(changes):
    record = dict(BASE)
    for name, value in changes.items():
        if value is OMIT:
            record.pop(name, None)
        else:
            record[name] = value

    usual = _validate_usual(0, record, NOW)
    full, errors = _validate_record_fully(0, record, NOW)

    if usual is not None:
        assert errors == []
        assert usual == full
        assert usual.content_hash() == full.content_hash()
        assert str(usual.usage) == str(full.usage) and str(usual.cost) == str(full.cost)


def test_the_usual_record_takes_the_shortcut():
    usual = _validate_usual(0, dict(BASE), NOW)

    assert usual is not None
    assert usual == _validate_record_fully(0, dict(BASE), NOW)[0]
