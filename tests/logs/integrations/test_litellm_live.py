"""LiteLLM itself posting to Usage Logs: its ``GenericAPILogger`` (what the
proxy's ``callback_type: generic_api`` runs) sends the StandardLoggingPayload of
real ``litellm.acompletion`` / ``aembedding`` calls (answered by LiteLLM's own
``mock_response``, so nothing leaves the machine) to ``live_server``, in each
log format; then the admin, the portal and the API show those calls, and the
same batch sent again changes nothing.

``LITELLM_LOCAL_MODEL_COST_MAP`` keeps LiteLLM on its bundled price list (it
would fetch one from GitHub). LiteLLM is imported by the ``litellm`` fixture,
not at collection: it takes seconds, and only these tests need it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from django.db import connections

from accounts.models import Account, ApiKey, Source
from logs.models import CallRecord
from tests.api.helpers import service_user, token_client, token_for, walk
from tests.conftest import logged_in
from tests.factories import StaffUserFactory, litellm_key_hash, owner_of
from tests.pages import detail_fields, payload_parts, result_rows

pytestmark = pytest.mark.django_db(transaction=True)

ALPHA_PROD = {
    "user_api_key_team_id": "team-alpha",
    "user_api_key_team_alias": "Alpha",
    "user_api_key_hash": litellm_key_hash("sk-alpha-prod"),
    "user_api_key_alias": "alpha-prod",
}
ALPHA_CI = {**ALPHA_PROD, "user_api_key_hash": litellm_key_hash("sk-alpha-ci")}
ALPHA_CI["user_api_key_alias"] = "alpha-ci"
BETA_MAIN = {
    "user_api_key_team_id": "team-beta",
    "user_api_key_team_alias": "Beta",
    "user_api_key_hash": litellm_key_hash("sk-beta-main"),
    "user_api_key_alias": "beta-main",
}
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="session")
def litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    return litellm


@pytest.fixture(autouse=True)
def _live_server_threads_close_their_connections():
    """Each request the live server answers runs in a thread of its own, which
    would keep its PostgreSQL connection open (CONN_MAX_AGE) after it ends, and
    the test database could not be dropped at the end of the run."""
    database = connections.settings["default"]
    kept = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def ingest_token(db):
    return token_for(service_user(username="litellm-proxy"), can_ingest=True)


def run_in_own_loop(coroutine: Callable[[], Awaitable]) -> None:
    """Run a coroutine to its end on a thread of its own: on PostgreSQL the
    browser tests' Playwright keeps an event loop running in the main thread,
    where asyncio.run() refuses to start another."""
    failures: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(coroutine())
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


class Proxy:
    """LiteLLM with the generic_api callback pointed at Usage Logs."""

    def __init__(self, litellm, url: str, token: str, log_format: str):
        self.litellm = litellm
        self.url = url
        self.token = token
        self.log_format = log_format
        self.sent: list = []

    def run(self, *calls: Callable[[], Awaitable]) -> None:
        """Make the calls, wait for LiteLLM to log each, and flush its batch."""
        run_in_own_loop(lambda: self._run(calls))

    def _logger(self):
        """The callback as the proxy builds it from ``callback_settings``."""
        from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
        from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

        return GenericAPILogger(
            endpoint=f"{self.url}/api/v1/integrations/litellm/",
            headers={"Authorization": f"Bearer {self.token}"},
            log_format=self.log_format,
            # A client of this event loop (LiteLLM's shared one outlives it).
            async_httpx_client=AsyncHTTPHandler(),
            # Only an explicit flush sends: one batch, as the proxy's timer would.
            batch_size=1000,
            flush_interval=3600,
        )

    async def _run(self, calls) -> None:
        logger = self._logger()
        self.litellm.callbacks = [logger]
        try:
            for call in calls:
                await call(self.litellm)
            deadline = time.monotonic() + 60
            while len(logger.log_queue) < len(calls):
                assert time.monotonic() < deadline, f"LiteLLM logged {len(logger.log_queue)}"
                await asyncio.sleep(0.05)
            self.sent = list(logger.log_queue)
            await logger.flush_queue()
        finally:
            self.litellm.callbacks = []
            await logger.async_httpx_client.close()

    def send_again(self) -> None:
        """The same batch once more, as a proxy retrying it would."""

        async def again():
            logger = self._logger()
            logger.log_queue.extend(self.sent)
            await logger.flush_queue()
            await logger.async_httpx_client.close()

        run_in_own_loop(again)


def chat(metadata, *, reply="Hello!", stream=False, **kwargs):
    async def call(litellm):
        response = await litellm.acompletion(
            model="gpt-4o-mini",
            messages=MESSAGES,
            mock_response=reply,
            stream=stream,
            metadata=dict(metadata),
            **kwargs,
        )
        if stream:
            async for _ in response:
                pass

    return call


def cached_chat(metadata, *, call_id: str, model: str, usage: dict):
    """A chat answered from the provider's prompt cache, as LiteLLM reports its usage."""
    reply = {
        "id": call_id,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "From cache"}}],
        "usage": usage,
    }

    async def call(litellm):
        await litellm.acompletion(
            model=model,
            messages=MESSAGES,
            mock_response=reply,
            # Where the proxy puts a request's tags and its end user (the body's "user").
            metadata={
                **metadata,
                "tags": ["support-bot", "prod"],
                "user_api_key_end_user_id": "customer-4711",
            },
        )

    return call


def embedding(metadata):
    async def call(litellm):
        await litellm.aembedding(
            model="text-embedding-3-small",
            input=["Say hello"],
            mock_response=[0.1, 0.2, 0.3],
            metadata=dict(metadata),
        )

    return call


def failure(metadata, exception: Exception):
    async def call(litellm):
        # The caller gets LiteLLM's exception; the call is logged like any other.
        with pytest.raises(Exception, match=str(exception)):
            await litellm.acompletion(
                model="gpt-4o-mini",
                messages=MESSAGES,
                mock_response=exception,
                metadata=dict(metadata),
            )

    return call


def sent_by_id(proxy: Proxy) -> dict[str, dict]:
    return {payload["id"]: payload for payload in proxy.sent}


@pytest.mark.parametrize(
    "log_format",
    [
        "json_array",
        "ndjson",
        # LiteLLM posts each payload of a "single" batch at once, in parallel; Django's
        # live server hands every thread the one connection of an in-memory SQLite
        # database, whose transactions would interleave. PostgreSQL gives each its own.
        pytest.param("single", marks=pytest.mark.postgres),
    ],
)
def test_a_proxys_calls_show_up_in_every_surface(litellm, live_server, ingest_token, log_format):
    proxy = Proxy(litellm, live_server.url, ingest_token, log_format)

    proxy.run(
        chat(ALPHA_PROD),
        chat(ALPHA_PROD, reply="Hello, streamed", stream=True),
        chat(ALPHA_CI),
        embedding(ALPHA_CI),
        failure(BETA_MAIN, Exception("upstream exploded")),
        chat(BETA_MAIN),
        cached_chat(
            ALPHA_PROD,
            call_id=f"chatcmpl-cached-{log_format}",
            model="gpt-4o-mini",
            usage={
                "prompt_tokens": 1200,
                "completion_tokens": 80,
                "total_tokens": 1280,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 64},
            },
        ),
        cached_chat(
            BETA_MAIN,
            call_id=f"msg-cached-{log_format}",
            model="anthropic/claude-sonnet-4-5",
            usage={
                "prompt_tokens": 1090,
                "completion_tokens": 30,
                "total_tokens": 1120,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 80,
            },
        ),
    )

    sent = sent_by_id(proxy)
    calls = {c.request_id: c for c in CallRecord.objects.select_related("account", "api_key")}
    assert set(calls) == set(sent)  # every call LiteLLM logged, by its own id

    # Two teams, three keys, known by LiteLLM's hash of each key.
    teams = Account.objects.filter(source=Source.LITELLM)
    assert sorted(teams.values_list("external_id", "name")) == [
        ("team-alpha", "Alpha"),
        ("team-beta", "Beta"),
    ]
    keys = ApiKey.objects.filter(source=Source.LITELLM)
    assert sorted(keys.values_list("account__name", "name", "external_id")) == [
        ("Alpha", "alpha-ci", ALPHA_CI["user_api_key_hash"]),
        ("Alpha", "alpha-prod", ALPHA_PROD["user_api_key_hash"]),
        ("Beta", "beta-main", BETA_MAIN["user_api_key_hash"]),
    ]

    for request_id, payload in sent.items():
        call = calls[request_id]
        assert call.api_key.external_id == payload["metadata"]["user_api_key_hash"]
        assert call.input_tokens == payload["prompt_tokens"]
        assert call.output_tokens == payload["completion_tokens"]
        assert call.cost == Decimal(str(payload["response_cost"]))
        assert call.is_stream is bool(payload["stream"])

    # Today's token accounting, as LiteLLM reported it.
    openai_cached = calls[f"chatcmpl-cached-{log_format}"]
    assert (openai_cached.input_tokens, openai_cached.cached_input_tokens) == (1200, 1024)
    assert (openai_cached.output_tokens, openai_cached.reasoning_tokens) == (80, 64)
    assert openai_cached.tags == ["support-bot", "prod"]
    assert openai_cached.end_user == "customer-4711"
    assert openai_cached.cost > 0
    anthropic_cached = calls[f"msg-cached-{log_format}"]
    assert anthropic_cached.model == "claude-sonnet-4-5"
    assert anthropic_cached.upstream.startswith("anthropic/claude-sonnet-4-5")
    assert (anthropic_cached.cached_input_tokens, anthropic_cached.cache_write_tokens) == (1000, 80)
    assert anthropic_cached.input_tokens == 1090

    by_kind = {
        (c.call_type, c.is_stream, c.status_code): c
        for c in calls.values()
        if c.cached_input_tokens == 0
    }  # what LiteLLM made of each kind of call
    assert set(by_kind) == {
        ("chat", False, 200),
        ("chat", True, 200),
        ("embedding", False, 200),
        ("chat", False, 500),
    }
    streamed = by_kind[("chat", True, 200)]
    assert 0 <= streamed.ttft_ms <= streamed.duration_ms
    failed = by_kind[("chat", False, 500)]
    assert "upstream exploded" in failed.error_reason
    assert failed.account.name == "Beta"
    assert by_kind[("embedding", False, 200)].model == "text-embedding-3-small"

    # The API, as support staff read it.
    staff = StaffUserFactory()
    rows = {row["request_id"]: row for row in walk(token_client(token_for(staff)))}
    assert set(rows) == set(sent)
    for request_id, row in rows.items():
        call = calls[request_id]
        assert (row["account_name"], row["key_name"]) == (call.account.name, call.api_key.name)
        assert Decimal(row["cost"]) == call.cost
        assert row["input_tokens"] == sent[request_id]["prompt_tokens"]
        assert row["cached_input_tokens"] == call.cached_input_tokens
    cached_row = rows[f"chatcmpl-cached-{log_format}"]
    assert (cached_row["cached_input_tokens"], cached_row["reasoning_tokens"]) == (1024, 64)
    assert (cached_row["tags"], cached_row["end_user"]) == (
        ["support-bot", "prod"],
        "customer-4711",
    )
    tagged = walk(token_client(token_for(staff)), {"tag": "support-bot"})
    assert sorted(row["request_id"] for row in tagged) == sorted(
        [f"chatcmpl-cached-{log_format}", f"msg-cached-{log_format}"]
    )

    # The portal, as Beta's owner sees it: Beta's three calls, nothing of Alpha's.
    beta_owner = owner_of(Account.objects.get(external_id="team-beta"))
    response = logged_in(beta_owner).get("/portal/logs/callrecord/")
    assert response.status_code == 200
    listed = result_rows(response)
    assert sorted(row["key_name"] for row in listed) == ["beta-main"] * 3
    assert sorted(row["status"] for row in listed)[0].startswith("200")
    assert "alpha" not in response.content.decode().lower()

    # The admin's detail of the failed call: its reason, and LiteLLM's error detail.
    response = logged_in(staff).get(f"/admin/logs/callrecord/{failed.pk}/change/")
    assert response.status_code == 200
    fields = detail_fields(response)
    assert fields["account"] == "Beta"
    assert fields["key"].startswith("beta-main ll-")
    assert fields["status_code"] == "500"
    assert "upstream exploded" in fields["error_reason"]
    assert '"error_class": "InternalServerError"' in payload_parts(response)["error_detail"]
    assert "Say hello" in payload_parts(response)["request_body"]

    # The admin's detail of the Anthropic call: its cache reads and writes.
    response = logged_in(staff).get(f"/admin/logs/callrecord/{anthropic_cached.pk}/change/")
    fields = detail_fields(response)
    assert (fields["cached_input_tokens"], fields["cache_write_tokens"]) == ("1,000", "80")
    assert fields["tags"] == "support-bot prod"
    assert fields["end_user"] == "customer-4711"

    # A proxy retrying the batch changes nothing.
    before = list(CallRecord.objects.values().order_by("id"))
    proxy.send_again()
    assert list(CallRecord.objects.values().order_by("id")) == before
    assert ApiKey.objects.filter(source=Source.LITELLM).count() == 3
