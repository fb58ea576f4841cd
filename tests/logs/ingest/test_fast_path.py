"""The ingest service validates the usual record in one pass (``validate_usual``)
and leaves anything out of the ordinary to the full validator, which words
every problem. The shortcut must never accept what the full validator refuses,
nor accept anything differently."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from logs.ingest.records import TOP_LEVEL_FIELDS, validate_record_fully, validate_usual
from logs.ingest.redaction import looks_like_credential, redact_text, redact_upstream
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
        # What the database cannot store: NUL, lone surrogates, IPv6 zones; and the
        # year 2000 limit, which is in UTC.
        "req\x00nul",
        "\x00",
        "gpt\ud800",
        "\udfff",
        "a\ud83d\ude42b",
        "caf\u00e9",
        "fe80::1%eth0",
        "fe80::1%1",
        "2000-01-01T00:30:00+01:00",
        "1999-12-31T23:30:00-01:00",
        "2000-01-01T00:00:00Z",
        # Credentials: refused as request_id or model, redacted elsewhere.
        "sk-proj-A1b2C3d4E5f6G7h8I9j0",
        "BEARER abcdefghijklmnopqrstu",
        "svc:Opaque-Passw0rd@relay.internal",
        "https://svc:Opaque-Passw0rd@relay.internal/v1",
        "/v1/chat/completions?api_key=Opaque-Passw0rd",
        # Query-like prose: judged by its parameters' names (json_may_hold_key).
        "why does ?max_tokens=5&page=2 fail? the token count is off",
        "a=1; what key?",
        "x?token_count=3&sig=abc",
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
    # Tags: lists of strings, good and bad, repeated.
    st.lists(interesting, max_size=3),
    st.lists(st.sampled_from(["a", " a", "a\tb", "t" * 64, "t" * 65]), max_size=22),
    st.dictionaries(st.sampled_from(["params", "headers", "body", "x", "type"]), interesting),
    st.dictionaries(
        st.sampled_from(["params", "headers", "body", "message", "code"]),
        st.dictionaries(st.sampled_from(["k", "k\ud800", "k\x00"]), interesting, max_size=2),
    ),
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

    usual = validate_usual(0, record, NOW)
    full, errors = validate_record_fully(0, record, NOW)

    if usual is not None:
        assert errors == []
        assert usual == full
        assert usual.content_hash() == full.content_hash()
        assert str(usual.usage) == str(full.usage) and str(usual.cost) == str(full.cost)
    if full is not None:
        assert_storable(full)


def assert_storable(call) -> None:
    """Whatever validation accepts, PostgreSQL can store: no NUL in its text
    columns, nothing that is not valid Unicode anywhere, no zone in an address."""
    columns = (call.request_id, call.key_prefix, call.group_name or "", call.model)
    columns += (call.endpoint, call.error_reason, call.upstream, call.client_ip or "")
    columns += (call.end_user, *call.tags)
    for text in columns:
        assert "\x00" not in text, text
        text.encode("utf-8")
    assert "%" not in (call.client_ip or "")
    for text in call.texts.values():
        if text is not None:
            assert "\x00" not in text  # JSON text writes it as \u0000
            text.encode("utf-8")
    assert call.created_at >= datetime(2000, 1, 1, tzinfo=UTC)
    assert len(call.end_user) <= 128 and len(call.tags) <= 20
    assert all(0 < len(tag) <= 64 for tag in call.tags)
    for label in (call.end_user, *call.tags):
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in label), label
    assert call.cached_input_tokens + call.cache_write_tokens <= call.input_tokens
    assert call.reasoning_tokens <= call.output_tokens
    # ...and no credential is left in the call's own text columns.
    assert not looks_like_credential(call.request_id)
    assert not looks_like_credential(call.model)
    for text in (call.endpoint, call.error_reason, call.upstream):
        assert redact_text(text) == text
    assert redact_upstream(call.upstream) == call.upstream


def test_the_usual_record_takes_the_shortcut():
    usual = validate_usual(0, dict(BASE), NOW)

    assert usual is not None
    assert usual == validate_record_fully(0, dict(BASE), NOW)[0]
