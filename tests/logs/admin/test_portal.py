"""The account owners' portal at /portal/, and the isolation between accounts.

Two accounts with nothing in common but the model ``gpt-4o-mini`` and the pricing
group ``default``: everything of account B is named with the word "bravo" (account
name, keys, a group only B's keys use, a model only B calls, request ids, error
reasons, upstreams, prompts, the owner's login and token). Logged in as A's owner,
the word "bravo" and B's key prefixes must appear nowhere: not in rows, counts,
filter choices, totals, date drill-down, detail pages, CSV files, keys, tokens or
autocomplete answers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import AccessToken, Account, ApiKey, Group
from accounts.services import create_access_token
from logs.models import AccessRecord, CallRecord
from logs.read.export import CSV_HEADERS
from tests.factories import (
    TEST_PASSWORD,
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    MembershipFactory,
    StaffUserFactory,
    UserFactory,
    ingest,
    make_call,
    owner_of,
    record_dict,
)
from tests.pages import (
    column_headers,
    csv_rows,
    detail_fields,
    links,
    messages_on_page,
    page,
    result_rows,
    totals_on_page,
)

pytestmark = pytest.mark.django_db

PORTAL = "/portal/"
CALLS = "/portal/logs/callrecord/"
EXPORT = "/portal/logs/callrecord/export/"
KEYS = "/portal/accounts/apikey/"
TOKENS = "/portal/accounts/accesstoken/"
AUTOCOMPLETE = "/portal/autocomplete/"
SWITCH = "/portal/switch-account/"


def t(hour: int, minute: int = 0, *, year: int = 2026, month: int = 3, day: int = 10) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Side:
    account: Account
    owner: object
    keys: list[ApiKey]
    calls: list[CallRecord]
    token: AccessToken

    @property
    def request_ids(self) -> list[str]:
        return [
            c.request_id
            for c in sorted(self.calls, key=lambda c: (c.created_at, c.pk), reverse=True)
        ]


@dataclass
class World:
    a: Side
    b: Side
    default: Group

    def b_traces(self) -> list[str]:
        return [key.prefix for key in self.b.keys] + [self.b.token.prefix]


def _calls(specs) -> list[CallRecord]:
    records = [record_dict(key, **fields) for key, fields in specs]
    ingest(*records)
    by_id = {c.request_id: c for c in CallRecord.objects.select_related("api_key", "group")}
    return [by_id[record["request_id"]] for record in records]


@pytest.fixture
def world(db, default_group) -> World:
    alpha_tier = GroupFactory(name="alpha-tier")
    bravo_group = GroupFactory(name="bravo-group")

    a = AccountFactory(name="Alpha Labs", slug="alpha")
    owner_a = owner_of(a, username="owner-alpha")
    a_prod = ApiKeyFactory(account=a, name="alpha-prod", group=default_group)
    a_batch = ApiKeyFactory(account=a, name="alpha-batch", group=alpha_tier)
    a_calls = _calls(
        [
            (
                a_prod,
                {
                    "request_id": "req-alpha-1",
                    "created_at": t(10),
                    "usage": "0.5",
                    "cost": "0.00012",
                    "upstream": "alpha-upstream-internal",
                    "tags": ["shared-tag", "alpha-tag"],
                    "end_user": "shared-user",
                },
            ),
            (
                a_prod,
                {
                    "request_id": "req-alpha-2",
                    "created_at": t(10, 20),
                    "model": "alpha-model",
                    "call_type": "embedding",
                    "usage": "0.25",
                    "cost": "0.00002",
                },
            ),
            (
                a_batch,
                {
                    "request_id": "req-alpha-3",
                    "created_at": t(11),
                    "status_code": 429,
                    "error_reason": "rate_limit_exceeded",
                    "usage": "0",
                    "cost": "0",
                },
            ),
        ]
    )

    b = AccountFactory(name="Bravo Secret Corp", slug="bravo")
    owner_b = owner_of(b, username="owner-bravo")
    b_secret = ApiKeyFactory(account=b, name="bravo-secret-key", group=bravo_group)
    b_prod = ApiKeyFactory(account=b, name="bravo-prod", group=default_group)
    bravo_payload = {
        "upstream": "bravo-upstream",
        "tags": ["bravo-tag", "shared-tag"],
        "end_user": "bravo-user",
        "endpoint": "/v1/bravo/chat",
        "request": {"body": {"messages": [{"role": "user", "content": "bravo confidential"}]}},
    }
    b_calls = _calls(
        [
            (
                b_secret,
                {
                    "request_id": "req-bravo-1",
                    "created_at": t(10, 30),
                    "model": "bravo-only-model",
                    "usage": "7",
                    "cost": "0.07",
                    **bravo_payload,
                },
            ),
            (
                b_secret,
                {
                    "request_id": "req-bravo-2",
                    "created_at": t(9, year=2025, month=6, day=1),
                    "model": "bravo-only-model",
                    "status_code": 502,
                    "error_reason": "bravo-upstream-down",
                    "usage": "1",
                    "cost": "0.01",
                    **bravo_payload,
                },
            ),
            (
                b_prod,
                {
                    "request_id": "req-bravo-3",
                    "created_at": t(10, 40),
                    "model": "gpt-4o-mini",
                    "usage": "3",
                    "cost": "0.03",
                    **bravo_payload,
                    "end_user": "shared-user",
                },
            ),
        ]
    )

    a_token = create_access_token(user=owner_a, name="alpha-laptop").token
    b_token = create_access_token(user=owner_b, name="bravo-token").token
    return World(
        a=Side(a, owner_a, [a_prod, a_batch], a_calls, a_token),
        b=Side(b, owner_b, [b_secret, b_prod], b_calls, b_token),
        default=default_group,
    )


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_a(world) -> Client:
    return logged_in(world.a.owner)


def assert_no_trace_of_b(world: World, text: str) -> None:
    assert "bravo" not in text.lower()
    for trace in world.b_traces():
        assert trace not in text
    assert str(world.b.account.pk) not in re.findall(r"account=(\d+)", text)


def listed(response) -> list[str]:
    calls = list(response.context["cl"].result_list)
    assert len(result_rows(response)) == len(calls)
    return [call.request_id for call in calls]


def filter_choices(response, parameter: str) -> list[str] | None:
    for spec in response.context["cl"].filter_specs:
        if getattr(spec, "parameter_name", None) == parameter:
            return [str(value) for value, _ in spec.lookup_choices]
    return None


def detail(call_id) -> str:
    return f"{CALLS}{call_id}/change/"


# --- what an owner sees -----------------------------------------------------------------


def test_the_portal_index_shows_only_the_owners_account(owner_a, world):
    response = owner_a.get(PORTAL)

    assert response.status_code == 200
    html = page(response)
    assert "Alpha Labs" in html
    assert CALLS in html
    assert_no_trace_of_b(world, html)


def test_the_call_list_shows_only_the_accounts_calls(owner_a, world):
    response = owner_a.get(CALLS)

    assert response.status_code == 200
    assert listed(response) == world.a.request_ids
    assert [name for name, _ in column_headers(response)] == [
        *("time", "request", "key_name", "group", "call_type", "model", "status"),
        *("duration", "speed", "tokens", "usage_amount", "cost_amount"),
    ]
    assert {row["key_name"] for row in result_rows(response)} == {"alpha-prod", "alpha-batch"}
    totals = response.context["totals"]
    assert (totals.calls, totals.errors) == (3, 1)
    assert totals.usage == Decimal("0.75")
    assert totals.cost == Decimal("0.00014")
    assert totals.input_tokens == sum(c.input_tokens for c in world.a.calls)
    assert totals_on_page(response)["calls"] == "3"
    assert_no_trace_of_b(world, page(response))


def test_filter_choices_offer_only_the_accounts_own_values(owner_a, world):
    response = owner_a.get(CALLS)

    assert filter_choices(response, "model") == ["alpha-model", "gpt-4o-mini"]
    assert filter_choices(response, "key_name") == ["alpha-batch", "alpha-prod"]
    assert filter_choices(response, "group") == ["alpha-tier", "default"]
    assert filter_choices(response, "tag") == ["alpha-tag", "shared-tag"]
    assert filter_choices(response, "end_user") == ["shared-user"]
    assert filter_choices(response, "account") in (None, [])
    shown = [text for text, _ in links(response)]
    assert "alpha-model" in shown
    assert "alpha-tier" in shown
    # the date drill-down only offers days A has calls on (B has some in 2025)
    assert not any("created_at__year=2025" in href for _, href in links(response))


def test_a_shared_model_filter_shows_only_the_accounts_calls_of_that_model(owner_a, world):
    response = owner_a.get(CALLS, {"model": "gpt-4o-mini", "group": "default"})

    assert listed(response) == ["req-alpha-1"]
    assert response.context["totals"].calls == 1
    assert_no_trace_of_b(world, page(response))


@pytest.mark.parametrize(
    ("params", "with_message"),
    [
        pytest.param({"model": "bravo-only-model"}, True, id="b-model"),
        pytest.param({"key_name": "bravo-secret-key"}, True, id="b-key"),
        pytest.param({"key_name": "bravo-prod"}, True, id="b-key-2"),
        pytest.param({"group": "bravo-group"}, True, id="b-group"),
        pytest.param({"account": "B"}, True, id="b-account"),
        pytest.param({"q": "req-bravo-1"}, False, id="b-request-id"),
        pytest.param({"tag": "bravo-tag"}, True, id="b-tag"),
        pytest.param({"end_user": "bravo-user"}, True, id="b-end-user"),
        pytest.param({"tag": "shared-tag", "key_name": "bravo-prod"}, True, id="b-key-shared-tag"),
        pytest.param(
            {"model": "bravo-only-model", "key_name": "bravo-secret-key", "group": "bravo-group"},
            True,
            id="b-everything",
        ),
    ],
)
def test_filtering_on_the_other_accounts_values_shows_nothing(owner_a, world, params, with_message):
    params = {k: world.b.account.pk if v == "B" else v for k, v in params.items()}

    response = owner_a.get(CALLS, params)

    assert response.status_code == 200
    assert listed(response) == []
    totals = response.context["totals"]
    assert (totals.calls, totals.errors, totals.input_tokens, totals.output_tokens) == (0, 0, 0, 0)
    assert totals.usage == 0
    assert totals.cost == 0
    assert totals_on_page(response)["calls"] == "0"
    assert bool(messages_on_page(response)) == with_message
    # the filter choices stay A's own, whatever was asked for
    assert filter_choices(response, "model") == ["alpha-model", "gpt-4o-mini"]
    assert filter_choices(response, "key_name") == ["alpha-batch", "alpha-prod"]
    assert filter_choices(response, "tag") == ["alpha-tag", "shared-tag"]
    assert filter_choices(response, "end_user") == ["shared-user"]


@pytest.mark.parametrize(("name", "value"), [("tag", "shared-tag"), ("end_user", "shared-user")])
def test_a_shared_tag_or_end_user_shows_only_the_accounts_calls(owner_a, world, name, value):
    response = owner_a.get(CALLS, {name: value})

    assert listed(response) == ["req-alpha-1"]
    assert response.context["totals"].calls == 1
    assert totals_on_page(response)["calls"] == "1"
    assert_no_trace_of_b(world, page(response))
    rows = csv_rows(export(owner_a, {name: value}))
    assert [row[1] for row in rows[1:]] == ["req-alpha-1"]


def test_the_detail_of_an_own_call_hides_internal_fields(owner_a, world):
    call = world.a.calls[0]

    response = owner_a.get(detail(call.pk))

    assert response.status_code == 200
    fields = detail_fields(response)
    assert fields["key"].startswith("alpha-prod ")
    assert fields["input_tokens"] == str(call.input_tokens)
    assert "upstream" not in fields
    assert "alpha-upstream-internal" not in page(response)
    assert_no_trace_of_b(world, page(response))
    nearby = [href for text, href in links(response) if text.startswith("This key's calls")]
    assert nearby
    assert nearby[0].startswith(CALLS)
    assert "account=" not in nearby[0]
    assert listed(owner_a.get(nearby[0])) == ["req-alpha-2", "req-alpha-1"]


@pytest.mark.parametrize("suffix", ["change/", "history/"])
def test_the_other_accounts_call_answers_exactly_like_a_missing_one(owner_a, world, suffix):
    b_call = world.b.calls[0]
    missing_id = CallRecord.objects.order_by("-pk").first().pk + 1000

    of_b = owner_a.get(f"{CALLS}{b_call.pk}/{suffix}")
    shown_b = messages_on_page(owner_a.get(of_b["Location"]))
    missing = owner_a.get(f"{CALLS}{missing_id}/{suffix}")
    shown_missing = messages_on_page(owner_a.get(missing["Location"]))

    assert of_b.status_code == missing.status_code == 302
    assert of_b["Location"] == missing["Location"] == PORTAL
    assert len(shown_b) == 1
    assert [(lv, tx.replace(str(b_call.pk), "ID")) for lv, tx in shown_b] == [
        (lv, tx.replace(str(missing_id), "ID")) for lv, tx in shown_missing
    ]
    assert not AccessRecord.objects.exists()


# --- exports ----------------------------------------------------------------------------


def export(client: Client, params=None):
    response = client.get(EXPORT, params or {})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    return response


def test_the_export_holds_only_the_accounts_calls(owner_a, world):
    response = export(owner_a)

    rows = csv_rows(response)
    assert rows[0] == CSV_HEADERS
    assert [row[1] for row in rows[1:]] == world.a.request_ids
    assert {row[3] for row in rows[1:]} == {"Alpha Labs"}
    assert_no_trace_of_b(world, "\n".join(",".join(row) for row in rows))


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        pytest.param({"model": "bravo-only-model"}, True, id="b-model"),
        pytest.param({"key_name": "bravo-secret-key"}, True, id="b-key"),
        pytest.param({"group": "bravo-group"}, True, id="b-group"),
        pytest.param({"account": "B"}, True, id="b-account"),
        pytest.param({"q": "req-bravo-3"}, False, id="b-request-id"),
        pytest.param({"tag": "bravo-tag"}, True, id="b-tag"),
        pytest.param({"end_user": "bravo-user"}, True, id="b-end-user"),
        pytest.param(
            {"model": "gpt-4o-mini", "key_name": "bravo-prod"}, True, id="b-key-shared-model"
        ),
    ],
)
def test_an_export_filtered_on_the_other_accounts_values_holds_nothing(
    owner_a, world, params, refused
):
    """A value that is not among the owner's choices is refused like on the
    list (the same message for any unknown value); a request id is simply not
    found."""
    params = {k: world.b.account.pk if v == "B" else v for k, v in params.items()}

    if not refused:
        assert csv_rows(export(owner_a, params)) == [CSV_HEADERS]
        return
    response = owner_a.get(EXPORT, params)
    assert response.status_code == 400
    assert "Nothing was exported" in page(response)
    assert [text for _, text in messages_on_page(response)] == [
        text for _, text in messages_on_page(owner_a.get(CALLS, params))
    ]
    assert not AccessRecord.objects.exists()


def test_an_export_of_a_shared_model_holds_only_the_accounts_calls(owner_a, world):
    rows = csv_rows(export(owner_a, {"model": "gpt-4o-mini"}))

    assert [row[1] for row in rows[1:]] == ["req-alpha-3", "req-alpha-1"]


# --- keys, tokens, autocomplete ---------------------------------------------------------


def test_the_keys_page_lists_only_the_accounts_keys(owner_a, world):
    response = owner_a.get(KEYS)

    assert response.status_code == 200
    assert sorted(row["name"] for row in result_rows(response)) == ["alpha-batch", "alpha-prod"]
    html = page(response)
    for key in world.a.keys:
        assert key.prefix in html
        assert key.secret not in html
    assert_no_trace_of_b(world, html)
    searched = owner_a.get(KEYS, {"q": "bravo"})
    assert result_rows(searched) == []


def test_the_other_accounts_key_answers_like_a_missing_one(owner_a, world):
    b_key = world.b.keys[0]

    of_b = owner_a.get(f"{KEYS}{b_key.pk}/change/")
    missing = owner_a.get(f"{KEYS}987654/change/")

    assert of_b.status_code == missing.status_code == 302
    assert of_b["Location"] == missing["Location"]


def test_the_token_page_lists_only_the_owners_tokens(owner_a, world):
    response = owner_a.get(TOKENS)

    assert response.status_code == 200
    assert [row["name"] for row in result_rows(response)] == ["alpha-laptop"]
    assert_no_trace_of_b(world, page(response))
    of_b = owner_a.get(f"{TOKENS}{world.b.token.pk}/change/")
    missing = owner_a.get(f"{TOKENS}987654/change/")
    assert of_b.status_code == missing.status_code == 302
    assert of_b["Location"] == missing["Location"]


def test_revoking_the_other_owners_token_does_nothing(owner_a, world):
    response = owner_a.post(
        TOKENS,
        {"action": "revoke_selected", "_selected_action": [world.b.token.pk], "index": "0"},
    )

    assert response.status_code in (200, 302)
    assert AccessToken.objects.get(pk=world.b.token.pk).revoked_at is None


def autocomplete(client: Client, field_name: str, term: str = ""):
    return client.get(
        AUTOCOMPLETE,
        {"app_label": "logs", "model_name": "callrecord", "field_name": field_name, "term": term},
    )


def test_key_autocomplete_offers_only_the_accounts_keys(owner_a, world):
    response = autocomplete(owner_a, "api_key")

    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(int(r["id"]) for r in results) == sorted(k.pk for k in world.a.keys)
    assert sorted(r["text"].split(" ")[0] for r in results) == ["alpha-batch", "alpha-prod"]
    assert_no_trace_of_b(world, response.content.decode())
    assert autocomplete(owner_a, "api_key", "bravo").json()["results"] == []
    assert autocomplete(owner_a, "api_key", world.b.keys[0].prefix).json()["results"] == []


@pytest.mark.parametrize("field_name", ["group", "account"])
def test_other_autocompletes_give_nothing_of_the_other_account(owner_a, world, field_name):
    owner_a.raise_request_exception = False

    response = autocomplete(owner_a, field_name)

    assert response.status_code in (200, 403, 404)
    if response.status_code == 200:
        assert_no_trace_of_b(world, response.content.decode())
    assert_no_trace_of_b(world, autocomplete(owner_a, field_name, "bravo").content.decode())


def test_staff_see_both_accounts_in_the_back_office(staff_client, world):
    response = staff_client.get("/admin/logs/callrecord/")

    assert response.status_code == 200
    assert sorted(listed(response)) == sorted(world.a.request_ids + world.b.request_ids)
    assert {row["account"] for row in result_rows(response)} == {"Alpha Labs", "Bravo Secret Corp"}
    exported = csv_rows(staff_client.get("/admin/logs/callrecord/export/"))
    assert len(exported) == 1 + 6
    keys = staff_client.get(
        "/admin/autocomplete/",
        {"app_label": "logs", "model_name": "callrecord", "field_name": "api_key"},
    )
    assert len(keys.json()["results"]) == 4


# --- logging in -------------------------------------------------------------------------


def test_an_owner_logs_in_at_the_portal(client, world):
    response = client.post(
        "/portal/login/",
        {"username": "owner-alpha", "password": TEST_PASSWORD, "next": PORTAL},
    )

    assert response.status_code == 302
    assert response["Location"] == PORTAL
    assert listed(client.get(CALLS)) == world.a.request_ids


@pytest.mark.parametrize("who", ["outsider", "staff-without-account"])
def test_a_login_that_belongs_to_no_account_is_refused(client, world, who):
    if who == "outsider":
        UserFactory(username="lonely")
    else:
        StaffUserFactory(username="lonely")

    response = client.post(
        "/portal/login/", {"username": "lonely", "password": TEST_PASSWORD, "next": PORTAL}
    )

    assert response.status_code == 200
    assert "This login does not belong to any account." in page(response)
    followed = client.get(CALLS)
    assert followed.status_code == 302
    assert followed["Location"].startswith("/portal/login/")


def test_a_wrong_password_is_refused_at_the_portal(client, world):
    response = client.post("/portal/login/", {"username": "owner-alpha", "password": "nope"})

    assert response.status_code == 200
    assert client.get(PORTAL).status_code == 302


def test_an_owner_cannot_open_the_back_office(client, world):
    client.post("/portal/login/", {"username": "owner-alpha", "password": TEST_PASSWORD})
    assert client.get(PORTAL).status_code == 200

    for url in ("/admin/", "/admin/logs/callrecord/", "/admin/logs/callrecord/export/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url

    refused = client.post("/admin/login/", {"username": "owner-alpha", "password": TEST_PASSWORD})
    assert refused.status_code == 200
    assert "staff account" in page(refused)
    assert client.get("/admin/").status_code == 302


def test_anonymous_visitors_are_sent_to_the_portal_login(client, world):
    for url in (PORTAL, CALLS, EXPORT, KEYS, TOKENS, detail(world.a.calls[0].pk)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/portal/login/"), url


# --- several accounts -------------------------------------------------------------------


@pytest.fixture
def consultant(world):
    """A login in both A and B."""
    user = UserFactory(username="consultant")
    MembershipFactory(user=user, account=world.a.account)
    MembershipFactory(user=user, account=world.b.account)
    return logged_in(user)


def test_a_user_in_two_accounts_sees_the_first_and_can_switch(consultant, world):
    assert listed(consultant.get(CALLS)) == world.a.request_ids

    switched = consultant.post(SWITCH, {"account": world.b.account.pk, "next": CALLS + "?model=x"})

    assert switched.status_code == 302
    assert switched["Location"] == CALLS
    response = consultant.get(CALLS)
    assert listed(response) == world.b.request_ids
    assert response.context["totals"].calls == 3
    assert "alpha" not in page(response).lower().replace("alpha labs", "")
    assert [row[1] for row in csv_rows(export(consultant))[1:]] == world.b.request_ids
    assert sorted(r["name"] for r in result_rows(consultant.get(KEYS))) == [
        "bravo-prod",
        "bravo-secret-key",
    ]


def test_switching_to_an_account_one_does_not_belong_to_changes_nothing(consultant, world):
    charlie = AccountFactory(name="Charlie Co", slug="charlie")
    make_call(ApiKeyFactory(account=charlie, name="charlie-key"), request_id="req-charlie-1")
    consultant.post(SWITCH, {"account": world.b.account.pk})

    for wanted in (charlie.pk, "987654", "not-a-number", ""):
        response = consultant.post(SWITCH, {"account": wanted})
        assert response.status_code == 302
        assert listed(consultant.get(CALLS)) == world.b.request_ids
    assert "charlie" not in page(consultant.get(CALLS)).lower()


def test_the_switch_only_goes_back_to_this_site(consultant, world):
    response = consultant.post(
        SWITCH, {"account": world.b.account.pk, "next": "https://evil.example/steal"}
    )

    assert response.status_code == 302
    assert response["Location"] == PORTAL
    assert consultant.get(SWITCH).status_code == 405


def test_an_owner_of_one_account_sees_no_account_switcher(owner_a, world):
    html = page(owner_a.get(CALLS))

    assert 'name="account"' not in html
    assert "Alpha Labs" in html


# --- personal access tokens -------------------------------------------------------------


def test_an_owner_adds_a_personal_token_and_sees_it_once(owner_a, world):
    response = owner_a.post(
        f"{TOKENS}add/", {"name": "ci-reader", "can_ingest": "on", "_save": "Save"}, follow=True
    )

    assert response.status_code == 200
    [secret] = [
        m.group(1)
        for _, text in messages_on_page(response)
        if (m := re.search(r"The new token is (\S+) ", text))
    ]
    token = AccessToken.objects.get(user=world.a.owner, name="ci-reader")
    assert secret.startswith(AccessToken.SCHEME)
    assert token.prefix == secret[: AccessToken.PREFIX_LENGTH]
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.can_ingest is False
    listing = owner_a.get(TOKENS)
    assert secret not in page(listing)
    assert token.prefix in page(listing)

    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    calls = api.get("/api/v1/calls/")
    assert calls.status_code == 200
    assert "req-alpha-1" in calls.content.decode()
    assert_no_trace_of_b(world, calls.content.decode())
    refused = api.post("/api/v1/calls/ingest/", [], content_type="application/json")
    assert refused.status_code == 403


# --- access records ---------------------------------------------------------------------


def test_portal_detail_views_and_exports_leave_access_records(owner_a, world):
    call = world.a.calls[1]

    owner_a.get(detail(call.pk))
    rows = csv_rows(export(owner_a, {"model": "alpha-model"}))

    viewed, exported = AccessRecord.objects.order_by("pk")
    assert (viewed.action, viewed.surface) == ("view_call", "portal")
    assert (viewed.user, viewed.username) == (world.a.owner, "owner-alpha")
    assert (viewed.call_id, viewed.request_id) == (call.pk, "req-alpha-2")
    assert (exported.action, exported.surface) == ("export", "portal")
    assert exported.user == world.a.owner
    assert exported.filters == {"model": "alpha-model"}
    assert exported.row_count == len(rows) - 1 == 1


# --- groups an account's calls were made in ----------------------------------------------


def test_a_group_the_accounts_calls_were_made_in_can_be_filtered_on(owner_a, world):
    """visible_groups promises non-staff the groups their keys belong to *or that their
    calls were made in*: a call recorded in a group none of the account's keys is in now
    (the group at call time) must still be found by the group filter."""
    GroupFactory(name="legacy-tier")
    make_call(world.a.keys[0], request_id="req-alpha-legacy", created_at=t(12), group="legacy-tier")

    response = owner_a.get(CALLS)
    assert "legacy-tier" in filter_choices(response, "group")
    filtered = owner_a.get(CALLS, {"group": "legacy-tier"})
    assert messages_on_page(filtered) == []
    assert listed(filtered) == ["req-alpha-legacy"]
