"""An ingest body sent chunked (``Transfer-Encoding: chunked``, no Content-Length).

Django reads Content-Length bytes of a WSGI request, so such a body used to read
as empty and was answered "not valid JSON". Where the WSGI server decodes chunked
bodies and says so (``wsgi.input_terminated``: gunicorn, which production runs)
the body is read, within the same size limit; where it does not (Django's
runserver) the answer is 411 Length Required. Django's test client always sends a
Content-Length, so these tests hand the app the WSGI environ a server builds, or
talk HTTP to a real server.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.client import ClientHandler

from logs.models import CallPayload, CallRecord
from tests.api.helpers import INGEST_URL
from tests.factories import record_dict

FIXED_TIME = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def body_of(api_key, count: int) -> tuple[bytes, list[str]]:
    records = [record_dict(api_key, created_at=FIXED_TIME) for _ in range(count)]
    return json.dumps(records).encode(), [r["request_id"] for r in records]


def chunked_environ(token: str, body: bytes, *, terminated: bool) -> dict:
    """The environ a WSGI server hands the app for a chunked POST: the body
    already decoded into wsgi.input, no CONTENT_LENGTH."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": INGEST_URL,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BufferedReader(io.BytesIO(body), buffer_size=1024),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return environ


def serve(environ: dict):
    return ClientHandler(enforce_csrf_checks=False)(environ)


@pytest.mark.django_db
def test_a_chunked_body_is_read_where_the_server_decodes_it(ingest_token, api_key):
    body, request_ids = body_of(api_key, 3)

    response = serve(chunked_environ(ingest_token, body, terminated=True))

    assert response.status_code == 201, response.content
    assert json.loads(response.content) == {"created": 3, "already_present": 0}
    assert sorted(CallRecord.objects.values_list("request_id", flat=True)) == sorted(request_ids)


@pytest.mark.django_db
def test_a_chunked_body_over_the_limit_is_413(ingest_token, api_key, settings):
    body, _ = body_of(api_key, 3)
    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = len(body) - 1

    response = serve(chunked_environ(ingest_token, body, terminated=True))

    assert response.status_code == 413, response.content
    assert str(len(body) - 1) in json.loads(response.content)["detail"]
    assert not CallRecord.objects.exists()

    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = len(body)
    assert serve(chunked_environ(ingest_token, body, terminated=True)).status_code == 201


@pytest.mark.django_db
def test_a_chunked_body_the_server_does_not_decode_is_411(ingest_token, api_key):
    body, _ = body_of(api_key, 1)

    response = serve(chunked_environ(ingest_token, body, terminated=False))

    assert response.status_code == 411, response.content
    assert "Content-Length" in json.loads(response.content)["detail"]
    assert not CallRecord.objects.exists()


def post_chunked(url: str, token: str, body: bytes) -> tuple[int, dict]:
    """POST ``body`` in 1 KB chunks with http.client (no Content-Length)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        chunks = (body[i : i + 1024] for i in range(0, len(body), 1024))
        conn.request(
            "POST",
            INGEST_URL,
            body=chunks,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.django_db(transaction=True)
def test_over_http_runserver_answers_a_chunked_body_411(live_server, ingest_token, api_key):
    """Django's own server (runserver, live_server) does not decode chunked bodies."""
    body, _ = body_of(api_key, 2)

    status, answer = post_chunked(live_server.url, ingest_token, body)

    assert status == 411, answer
    assert "Content-Length" in answer["detail"]
    assert not CallRecord.objects.exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_url(tmp_path):
    """The app under gunicorn (as in production) on a loopback port, on this test's
    database (PostgreSQL: a server in another process needs a database it can reach)."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1", "ALLOWED_HOSTS": "127.0.0.1"}
    env.pop("DATABASE_REPLICA_URLS", None)
    command = [sys.executable, "-m", "gunicorn", "usagelogs_site.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as errors:
        server = subprocess.Popen(
            command, cwd=django_settings.BASE_DIR, env=env, stdout=errors, stderr=errors
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_over_http_gunicorn_reads_a_chunked_body(gunicorn_url, ingest_token, api_key):
    body, request_ids = body_of(api_key, 20)
    assert len(body) > 10 * 1024  # several chunks

    status, answer = post_chunked(gunicorn_url, ingest_token, body)

    assert status == 201, answer
    assert answer == {"created": 20, "already_present": 0}
    assert sorted(CallRecord.objects.values_list("request_id", flat=True)) == sorted(request_ids)
    assert CallPayload.objects.count() == 20
