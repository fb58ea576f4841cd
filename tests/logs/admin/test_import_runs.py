"""The import runs page of the staff admin: what each history import did, for
staff only (account owners never see it, in the portal or the admin)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import logged_in
from tests.factories import (
    AccountFactory,
    ImportRunFactory,
    StaffUserFactory,
    SuperuserFactory,
    owner_of,
)
from tests.pages import page, result_rows

pytestmark = pytest.mark.django_db

LIST = "/admin/logs/importrun/"


@pytest.fixture
def runs():
    now = timezone.now()
    finished = ImportRunFactory(
        kind="newapi",
        location="/srv/new-api/one-api.db (logs)",
        started_at=now - timedelta(hours=2),
        updated_at=now - timedelta(hours=2) + timedelta(seconds=100),
        finished_at=now - timedelta(hours=2) + timedelta(seconds=100),
    )
    running = ImportRunFactory(
        kind="litellm",
        location="postgresql://litellm@db/litellm (LiteLLM_SpendLogs)",
        started_at=now - timedelta(minutes=5),
        updated_at=now - timedelta(seconds=3),
        finished_at=None,
        imported=40_000,
        already_present=0,
        skipped={},
        refused=2,
    )
    interrupted = ImportRunFactory(
        kind="jsonl",
        location="/tmp/calls.jsonl (calls)",
        started_at=now - timedelta(days=1),
        updated_at=now - timedelta(days=1) + timedelta(minutes=1),
        finished_at=None,
        imported=6_000,
        already_present=0,
        skipped={},
    )
    stopped = ImportRunFactory(
        kind="newapi",
        location="/srv/other.db (logs)",
        started_at=now - timedelta(days=2),
        finished_at=None,
        stopped_by="row 17: model_name is required",
        imported=0,
        already_present=0,
        skipped={},
        refused=0,
    )
    return finished, running, interrupted, stopped


def test_staff_see_each_run_with_its_counts_rate_and_state(runs):
    staff = StaffUserFactory(permissions=["logs.view_importrun"])

    rows = result_rows(logged_in(staff).get(LIST))

    assert [(row["kind"], row["state"]) for row in rows] == [
        ("litellm", "running"),
        ("newapi", "finished"),
        ("jsonl", "interrupted"),
        ("newapi", "stopped"),
    ]
    finished = rows[1]
    assert finished["location"] == "/srv/new-api/one-api.db (logs)"
    assert finished["imported"] == "180000"
    assert finished["already_present"] == "12000"
    assert finished["skipped_by_kind"] == (
        "8,000 (type 1 (top-up): 5,000, type 3 (management): 3,000)"
    )
    assert finished["refused"] == "0"
    # 180,000 + 12,000 + 8,000 rows in 100 s.
    assert finished["rate"] == "2,000"
    assert rows[0]["skipped_by_kind"] == "0"
    assert rows[0]["finished_at"] == "-"


@pytest.mark.parametrize(
    "state, kinds",
    [
        ("finished", ["newapi"]),
        ("running", ["litellm"]),
        ("interrupted", ["jsonl"]),
        ("stopped", ["newapi"]),
    ],
)
def test_staff_filter_the_runs_by_state(runs, state, kinds):
    client = logged_in(SuperuserFactory())

    rows = result_rows(client.get(LIST, {"state": state}))

    assert [row["kind"] for row in rows] == kinds
    assert {row["state"] for row in rows} == {state}


def test_staff_filter_the_runs_by_source(runs):
    client = logged_in(SuperuserFactory())

    rows = result_rows(client.get(LIST, {"kind": "newapi"}))

    assert [row["location"] for row in rows] == [
        "/srv/new-api/one-api.db (logs)",
        "/srv/other.db (logs)",
    ]


def test_a_run_page_is_read_only_and_says_why_it_stopped(runs):
    stopped = runs[3]
    client = logged_in(SuperuserFactory())

    response = client.get(f"{LIST}{stopped.pk}/change/")

    assert response.status_code == 200
    assert "row 17: model_name is required" in page(response)
    assert 'name="_save"' not in page(response)
    assert client.post(f"{LIST}{stopped.pk}/change/", {"kind": "x"}).status_code == 403
    assert client.post(f"{LIST}{stopped.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{LIST}add/").status_code == 403


def test_staff_without_the_permission_do_not_see_the_runs(runs):
    client = logged_in(StaffUserFactory())

    assert client.get(LIST).status_code == 403
    assert LIST not in page(client.get("/admin/"))


def test_an_account_owner_sees_no_import_runs_in_the_portal_or_the_admin(runs):
    owner = owner_of(AccountFactory(), permissions=["logs.view_importrun"])
    client = logged_in(owner)

    assert client.get("/portal/logs/importrun/").status_code == 404
    assert "importrun" not in page(client.get("/portal/"))
    # Not staff: the admin sends them to its login page.
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
