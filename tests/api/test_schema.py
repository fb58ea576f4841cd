"""The OpenAPI schema and the API docs: a valid document that matches what the
API does (checked by Schemathesis, in process, against the test database),
and docs that work offline."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema
from drf_spectacular.views import SpectacularAPIView
from hypothesis import HealthCheck, settings
from rest_framework.test import APIRequestFactory, force_authenticate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.api.helpers import FILTER_PARAMETERS, service_user, session_client, token_for
from tests.factories import make_call
from usagelogs_site.wsgi import application

OPERATIONS = {
    ("get", "/api/v1/calls/"),
    ("get", "/api/v1/calls/{id}/"),
    ("get", "/api/v1/calls/export/"),
    ("post", "/api/v1/calls/ingest/"),
    ("get", "/api/v1/stats/"),
    ("get", "/api/v1/health/"),
    ("post", "/api/v1/integrations/litellm/"),
}


def staff_schema() -> dict:
    """The schema as support staff are served it, built without touching the
    database (so it can be loaded while tests are being collected): a superuser
    holds every permission without a query."""
    request = APIRequestFactory().get("/api/schema/", HTTP_ACCEPT="application/json")
    user = get_user_model()(username="schema", is_staff=True, is_superuser=True)
    force_authenticate(request, user=user)
    response = SpectacularAPIView.as_view()(request)
    response.render()
    return json.loads(response.content)


SCHEMA = staff_schema()


def parameters(operation: dict) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


# --- the document -----------------------------------------------------------------------


@pytest.mark.django_db
def test_schema_is_a_valid_openapi_3_document(support):
    response = session_client(support).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    validate_schema(document)  # raises on an invalid document
    served = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == OPERATIONS
    assert document == SCHEMA
    # Also without a format: YAML, still a 200.
    assert session_client(support).get("/api/schema/").status_code == 200


def test_schema_documents_the_bearer_token():
    schemes = SCHEMA["components"]["securitySchemes"]
    assert schemes["accessToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["accessToken"]["description"],
    }


def test_list_documents_every_filter_and_paging_parameter():
    listed = parameters(SCHEMA["paths"]["/api/v1/calls/"]["get"])
    assert listed == {*FILTER_PARAMETERS, "cursor", "page_size"}


@pytest.mark.parametrize("path", ["/api/v1/calls/export/", "/api/v1/stats/"])
def test_export_and_stats_document_the_same_filters_as_the_list(path):
    """Both take every filter of the list (and apply them), so a client built
    from the schema must be able to send them."""
    documented = parameters(SCHEMA["paths"][path]["get"])
    missing = set(FILTER_PARAMETERS) - documented
    assert not missing, f"{path} does not document {sorted(missing)}"


def test_ingest_documents_json_bodies_only():
    """The ingest takes a JSON list; a form or multipart body can never be a list
    of records, so documenting those media types invites requests that fail."""
    content = SCHEMA["paths"]["/api/v1/calls/ingest/"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json"}


def test_stats_documents_interval_and_group_by_choices():
    stats = {p["name"]: p for p in SCHEMA["paths"]["/api/v1/stats/"]["get"]["parameters"]}
    assert set(stats["interval"]["schema"]["enum"]) == {"hour", "day"}
    assert set(stats["group_by"]["schema"]["enum"]) == {"model", "key_name", "group", "call_type"}


# --- the docs page ----------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.django_db
def test_docs_reference_only_local_static_files(support):
    response = session_client(support).get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    parser = _Assets()
    parser.feed(html)
    assert parser.urls, "no assets found"
    for url in parser.urls:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    # A CDN's host, not the letters "cdn": the page's CSRF token is random text.
    assert not re.search(r"cdn[\w-]*\.|jsdelivr|unpkg", html, re.IGNORECASE)
    assert 'url: "/api/schema/"' in html


# --- Schemathesis, in process -------------------------------------------------------------

schema = schemathesis.openapi.from_dict(SCHEMA)
schema.app = application  # requests go to the WSGI app, in this process, on the test DB

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def api_tokens(db, support):
    """Staff read everything; the ingest runs with a service user's ingest token,
    so its validation (400) and success paths are exercised."""
    make_call(request_id="schemathesis-seed")
    return {
        "read": token_for(support),
        "ingest": token_for(service_user(), can_ingest=True),
    }


# Committed data (the WSGI app runs outside the test's transaction), and every
# database alias: with DATABASE_REPLICA_URLS set, the API reads calls from the
# replica alias, which mirrors the test database.
@pytest.mark.django_db(transaction=True, databases="__all__")
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, api_tokens):
    ingests = case.method.upper() == "POST"
    token = api_tokens["ingest" if ingests else "read"]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
