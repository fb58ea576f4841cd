"""Today's token accounting in the own format: cached input tokens, cache
writes, reasoning tokens, the end user and tags. Each is validated by field,
stored exactly, and leaves the content hash of calls without it unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logs.ingest.errors import IngestError
from logs.ingest.records import validate_record_fully, validate_usual
from logs.ingest.service import ingest_calls
from logs.models import CallPayload, CallRecord, PendingRollupDelta
from tests.factories import record_dict

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CREATED_AT = datetime(2026, 6, 1, 11, 0, tzinfo=UTC)


def written() -> tuple[int, int, int]:
    return (
        CallRecord.objects.count(),
        CallPayload.objects.count(),
        PendingRollupDelta.objects.count(),
    )


def refused_fields(api_key, **overrides) -> set[str]:
    before = written()
    with pytest.raises(IngestError) as caught:
        ingest_calls([record_dict(api_key, **overrides)])
    assert written() == before, "a refused batch must write nothing"
    return {error.field for error in caught.value.errors}


def stored(api_key, **overrides) -> CallRecord:
    record = record_dict(api_key, **overrides)
    assert ingest_calls([record]).created == 1
    return CallRecord.objects.get(request_id=record["request_id"])


# --- stored as sent (on SQLite and, with DATABASE_URL, on PostgreSQL's COPY path) ---------


def test_the_new_fields_are_stored_as_sent(api_key):
    call = stored(
        api_key,
        input_tokens=1000,
        output_tokens=300,
        cached_input_tokens=600,
        cache_write_tokens=200,
        reasoning_tokens=120,
        end_user="  customer-42 ",
        tags=["prod", " batch ", "prod", "café"],
    )

    assert (call.cached_input_tokens, call.cache_write_tokens, call.reasoning_tokens) == (
        600,
        200,
        120,
    )
    assert call.end_user == "customer-42"
    assert call.tags == ["prod", "batch", "café"]


def test_absent_or_null_new_fields_are_stored_as_their_defaults(api_key):
    absent = stored(api_key)
    null = stored(
        api_key,
        cached_input_tokens=None,
        cache_write_tokens=None,
        reasoning_tokens=None,
        end_user=None,
        tags=None,
    )

    for call in (absent, null):
        assert (call.cached_input_tokens, call.cache_write_tokens, call.reasoning_tokens) == (
            0,
            0,
            0,
        )
        assert call.end_user == ""
        assert call.tags == []


def test_parts_equal_to_the_whole_are_accepted(api_key):
    call = stored(
        api_key,
        input_tokens=10,
        output_tokens=5,
        cached_input_tokens=4,
        cache_write_tokens=6,
        reasoning_tokens=5,
    )

    assert (call.cached_input_tokens + call.cache_write_tokens, call.reasoning_tokens) == (10, 5)


def test_twenty_distinct_tags_are_accepted_duplicates_not_counted(api_key):
    tags = [f"t{n}" for n in range(20)]

    call = stored(api_key, tags=tags + tags[:5])

    assert call.tags == tags


def test_calls_are_found_by_tag(api_key):
    tagged = stored(api_key, tags=["alpha", "beta"])
    stored(api_key, tags=["alphabet", "a"])
    also = stored(api_key, tags=["beta"])
    stored(api_key)

    assert set(CallRecord.objects.filter(tags__has_tag="beta")) == {tagged, also}
    assert list(CallRecord.objects.filter(tags__has_tag="alpha")) == [tagged]
    # A substring, a JSON spelling or a pattern is not a tag.
    for other in ("alph", '"alpha"', "%", "[]", "", "Alpha"):
        assert not CallRecord.objects.filter(tags__has_tag=other).exists(), other
    assert set(CallRecord.objects.exclude(tags__has_tag="beta")) == (
        set(CallRecord.objects.all()) - {tagged, also}
    )


def test_an_odd_tag_is_found_as_stored(api_key):
    odd = 'quote" back\\slash \U0001f642 ünï'
    call = stored(api_key, tags=[odd, "x"])

    assert list(CallRecord.objects.filter(tags__has_tag=odd)) == [call]


def test_a_credential_in_the_end_user_is_stored_redacted(api_key):
    secret = "sk-proj-A1b2C3d4E5f6G7h8I9j0"

    call = stored(api_key, end_user=f"user {secret}")

    assert secret not in call.end_user
    assert "[REDACTED]" in call.end_user


# --- refused, by field, with nothing written ---------------------------------------------


@pytest.mark.parametrize("field", ["cached_input_tokens", "cache_write_tokens", "reasoning_tokens"])
@pytest.mark.parametrize("value", [-1, 2**31, 1.5, 3.0, "3", True, [], {}])
def test_a_bad_token_part_is_refused(api_key, field, value):
    assert refused_fields(api_key, **{field: value}) == {field}


def test_cached_tokens_beyond_the_input_are_refused(api_key):
    fields = refused_fields(api_key, input_tokens=100, cached_input_tokens=101)

    assert fields == {"cached_input_tokens"}


def test_cache_reads_and_writes_together_beyond_the_input_are_refused(api_key):
    fields = refused_fields(
        api_key, input_tokens=100, cached_input_tokens=60, cache_write_tokens=41
    )

    assert fields == {"cache_write_tokens"}


def test_reasoning_tokens_beyond_the_output_are_refused(api_key):
    assert refused_fields(api_key, output_tokens=30, reasoning_tokens=31) == {"reasoning_tokens"}


@pytest.mark.parametrize(
    "value", [5, True, ["u"], {"id": "u"}, "u" * 129, "a\nb", "tab\there", "nul\x00", "\ud800"]
)
def test_a_bad_end_user_is_refused(api_key, value):
    assert refused_fields(api_key, end_user=value) == {"end_user"}


def test_an_end_user_of_128_characters_is_accepted(api_key):
    assert stored(api_key, end_user="u" * 128).end_user == "u" * 128


@pytest.mark.parametrize("value", ["prod", 5, {"a": 1}, True])
def test_tags_that_are_not_a_list_are_refused(api_key, value):
    assert refused_fields(api_key, tags=value) == {"tags"}


@pytest.mark.parametrize(
    "tag",
    [5, None, ["x"], "", "   ", "t" * 65, "a\nb", "\x00", "\ud800", "sk-proj-A1b2C3d4E5f6G7h8"],
)
def test_a_bad_tag_is_refused_by_its_position(api_key, tag):
    assert refused_fields(api_key, tags=["good", tag]) == {"tags[1]"}


def test_more_than_twenty_distinct_tags_are_refused(api_key):
    assert refused_fields(api_key, tags=[f"t{n}" for n in range(21)]) == {"tags"}


# --- the content hash of calls that do not use the new fields is unchanged --------------


def test_a_record_without_the_new_fields_hashes_as_before():
    record = record_dict("sk-abcdefghi", request_id="req-hash-1", created_at=CREATED_AT)
    with_defaults = dict(
        record,
        cached_input_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        end_user="",
        tags=[],
    )

    plain = validate_usual(0, record, NOW)
    defaults = validate_usual(0, with_defaults, NOW)

    assert plain.content_hash() == defaults.content_hash() == HASH_BEFORE_THE_NEW_FIELDS


# Computed by the validator as it was before these fields were added.
HASH_BEFORE_THE_NEW_FIELDS = "ec9c5c8d719ff300c92c6d17f00f4ed3154edc734c634e29463e371ac6a22097"


DEFAULTS = {
    "cached_input_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "end_user": "",
    "tags": [],
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cached_input_tokens", 1),
        ("cache_write_tokens", 1),
        ("reasoning_tokens", 1),
        ("end_user", "u1"),
        ("tags", ["a"]),
    ],
)
def test_a_replay_that_changes_a_new_field_is_refused(api_key, field, value):
    record = record_dict(api_key)
    ingest_calls([record])

    with pytest.raises(IngestError) as caught:
        ingest_calls([dict(record, **{field: value})])

    assert {error.field for error in caught.value.errors} == {"request_id"}
    assert ingest_calls([record]).duplicates == 1
    assert ingest_calls([dict(record, **{field: DEFAULTS[field]})]).duplicates == 1


# --- garbage -------------------------------------------------------------------------------

garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**32), max_value=2**32),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["", " ", "a\nb", "\x00", "\ud800", "x" * 65, "u" * 129, "ok"]),
    st.lists(
        st.one_of(st.text(max_size=70), st.integers(), st.none(), st.sampled_from(["a", "a "])),
        max_size=25,
    ),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
NEW_FIELDS = ["cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "end_user", "tags"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(st.sampled_from(NEW_FIELDS), garbage, min_size=1, max_size=3))
def test_garbage_in_the_new_fields_is_stored_or_refused_by_field(api_key, changes):
    record = record_dict(api_key, created_at=CREATED_AT, **changes)
    before = written()

    usual = validate_usual(0, record, NOW)
    full, errors = validate_record_fully(0, record, NOW)
    if usual is not None:
        assert usual == full and errors == []

    try:
        result = ingest_calls([record], now=NOW)
    except IngestError as refusal:
        assert written() == before
        assert full is None
        fields = {error.field.split("[")[0] for error in refusal.errors}
        assert fields and fields <= set(changes), refusal.errors
    else:
        assert full is not None and result.created == 1
        call = CallRecord.objects.get(request_id=record["request_id"])
        assert call.cached_input_tokens + call.cache_write_tokens <= call.input_tokens
        assert call.reasoning_tokens <= call.output_tokens
        assert call.tags == full.tags and call.end_user == full.end_user
