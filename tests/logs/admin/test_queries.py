"""The call list must stay fast at ten million calls: no COUNT(*) and no
SELECT DISTINCT over the calls table on any page, whatever the filters."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import ApiKeyFactory, make_calls

pytestmark = pytest.mark.django_db

LIST = "/admin/logs/callrecord/"
CALLS_TABLE = re.compile(r'FROM "logs_callrecord"')


@pytest.fixture
def calls():
    key = ApiKeyFactory(name="prod")
    make_calls(key, 30, created_at=timezone.now() - timedelta(hours=3), model="gpt-4o")
    return key


def scans_of_calls(queries) -> list[str]:
    """Queries that aggregate or de-duplicate the calls table (a lookup by
    request id, a unique index, is one row and does not count)."""
    return [
        q["sql"]
        for q in queries
        if CALLS_TABLE.search(q["sql"])
        and re.search(r"COUNT\(|DISTINCT", q["sql"], re.I)
        and '"request_id" =' not in q["sql"]
    ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?model=gpt-4o",
        "?key_name=prod&call_type=chat&status=success",
        "?start=2026-01-01T00:00&end=2099-01-01T00:00",
        "?p=2",
        "?created_at__year=2026",
        "?q=req-unknown",
    ],
)
def test_list_pages_never_count_or_distinct_the_calls_table(staff_client, calls, query):
    with CaptureQueriesContext(connection) as captured:
        response = staff_client.get(LIST + query)

    assert response.status_code == 200
    assert scans_of_calls(captured.captured_queries) == []


def test_the_count_on_the_page_is_exact(staff_client, calls):
    response = staff_client.get(LIST + "?model=gpt-4o")

    assert response.context["cl"].result_count == 30
    assert response.context["totals"].calls == 30


@pytest.mark.parametrize("query", ["", "?model=gpt-4o&call_type=chat", "?interval=hour"])
def test_the_stats_page_reads_rollups_not_the_calls_table(staff_client, calls, query):
    with CaptureQueriesContext(connection) as captured:
        response = staff_client.get(LIST + "stats/" + query)

    assert response.status_code == 200
    assert response.context["stats"].totals.calls == 30
    aggregates = [
        q["sql"]
        for q in captured.captured_queries
        if CALLS_TABLE.search(q["sql"]) and re.search(r"COUNT\(|SUM\(|DISTINCT", q["sql"], re.I)
    ]
    assert aggregates == []


def test_the_first_page_shows_the_newest_calls_and_the_second_the_next(staff_client):
    key = ApiKeyFactory()
    make_calls(key, 150, created_at=timezone.now() - timedelta(hours=1))
    from logs.models import CallRecord

    newest = list(CallRecord.objects.order_by("-created_at", "-id").values_list("pk", flat=True))

    first = staff_client.get(LIST).context["cl"].result_list
    second = staff_client.get(LIST + "?p=2").context["cl"].result_list

    assert [c.pk for c in first] == newest[:100]
    assert [c.pk for c in second] == newest[100:]
