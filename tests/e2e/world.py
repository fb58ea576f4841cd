"""The data the browser tests look at: two customers of a gateway, made through
the factories and the ingest service like any other calls.

* **Acme Robotics** (owner ``owner-acme``): keys ``acme-prod`` (group
  ``default``), ``acme-batch`` (``vip``) and ``acme-research``
  (``enterprise``); chat on ``gpt-4o-mini`` (31 calls, one of them a slow one
  with a long prompt), chat on ``gpt-4o`` through ``acme-batch`` (the staff
  test's filter: 7 calls in the last 12 hours, one a 502 with an error object,
  one a 429, plus older and other-key ones outside the filter), embeddings,
  images and completions.
* **Globex** (owner ``owner-globex``): keys ``globex-prod`` and
  ``globex-batch``, chat on ``gemini-1.5-flash`` and ``gpt-4o``; its key
  names must appear nowhere in Acme's portal.

Times are relative to ``now``, the test's instant (the slow-call threshold
reads the last 7 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from accounts.models import Account, ApiKey
from logs.models import CallRecord
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    ingest,
    owner_of,
    record_dict,
)

LONG_PROMPT_REQUEST_ID = "req-acme-long-prompt"
ERROR_REQUEST_ID = "req-acme-gpt4o-502"
HOSTILE_TEXT = '<script>alert("x")</script><b>not bold</b> & "quotes"'

# A support engineer pastes a whole incident log into a chat: one long prompt.
INCIDENT_LOG = "\n".join(
    f"2026-11-27T08:{minute:02d}:{second:02d}Z arm-{minute % 7} joint {second % 6} "
    f"torque {12.5 + minute / 10:.2f} Nm over limit, controller retried ({minute * 60 + second})"
    for minute in range(0, 40)
    for second in (5, 35)
)


@dataclass
class World:
    now: datetime
    staff: Any
    acme: Account
    globex: Account
    acme_owner: Any
    globex_owner: Any
    keys: dict[str, ApiKey]
    # The staff test's combined filter and the calls it must show.
    filter_start: datetime
    filter_end: datetime

    def calls(self, **lookups) -> list[CallRecord]:
        return list(
            CallRecord.objects.filter(**lookups)
            .select_related("api_key", "group", "account")
            .order_by("-created_at", "-id")
        )

    def filtered_calls(self) -> list[CallRecord]:
        return self.calls(
            created_at__gte=self.filter_start,
            created_at__lt=self.filter_end,
            model="gpt-4o",
            api_key__name="acme-batch",
            group__name="vip",
            call_type="chat",
        )

    @property
    def globex_key_names(self) -> list[str]:
        return [name for name in self.keys if name.startswith("globex-")]


def _chat_request(model: str, content: str, **params) -> dict:
    return {
        "params": {"model": model, "temperature": 0.3, "max_tokens": 800, **params},
        "headers": {"User-Agent": "openai-python/1.54.3", "Authorization": "Bearer sk-e2e-secret"},
        "body": {
            "messages": [
                {"role": "system", "content": "You are a careful assistant for robot operators."},
                {"role": "user", "content": content},
            ]
        },
    }


def _chat_response(text: str, input_tokens: int, output_tokens: int) -> dict:
    return {
        "id": "chatcmpl-e2e",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
    }


def build_world(now: datetime) -> World:
    now = now.replace(microsecond=0)
    default = GroupFactory(name="default")
    vip = GroupFactory(name="vip", description="Committed monthly spend: 20% off list price.")
    enterprise = GroupFactory(name="enterprise", description="Annual contract.")

    acme = AccountFactory(name="Acme Robotics", slug="acme-robotics")
    globex = AccountFactory(name="Globex", slug="globex")
    keys = {
        "acme-prod": ApiKeyFactory(account=acme, name="acme-prod", group=default),
        "acme-batch": ApiKeyFactory(account=acme, name="acme-batch", group=vip),
        "acme-research": ApiKeyFactory(account=acme, name="acme-research", group=enterprise),
        "globex-prod": ApiKeyFactory(account=globex, name="globex-prod", group=default),
        "globex-batch": ApiKeyFactory(account=globex, name="globex-batch", group=vip),
    }
    staff = StaffUserFactory(username="support")
    acme_owner = owner_of(acme, username="owner-acme")
    globex_owner = owner_of(globex, username="owner-globex")

    records: list[dict] = []

    def add(key: str, minutes_ago: float, **fields) -> None:
        records.append(
            record_dict(keys[key], created_at=now - timedelta(minutes=minutes_ago), **fields)
        )

    # gpt-4o-mini chat, every ~50 minutes over the last day: the model's normal speed.
    for index in range(30):
        input_tokens = 300 + (index * 137) % 1500
        output_tokens = 40 + (index * 53) % 400
        add(
            "acme-prod",
            25 + index * 50,
            model="gpt-4o-mini",
            stream=index % 3 == 0,
            duration_ms=600 + (index * 97) % 1100,
            ttft_ms=180 + (index * 31) % 200,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage=f"{(input_tokens * 0.15 + output_tokens * 0.6) / 2:.6f}",
            cost=f"{(input_tokens * 0.15 + output_tokens * 0.6) / 1_000_000:.8f}",
            request=_chat_request("gpt-4o-mini", f"Summarise shift report #{index} in 3 bullets."),
            response=_chat_response(
                f"- Line {index % 4} ran\n- No stops\n- Check arm-{index % 7}",
                input_tokens,
                output_tokens,
            ),
        )
    # ...and one slow call with a long prompt: an incident log pasted in whole.
    add(
        "acme-prod",
        95,
        request_id=LONG_PROMPT_REQUEST_ID,
        model="gpt-4o-mini",
        stream=True,
        duration_ms=24_180,
        ttft_ms=2_950,
        input_tokens=14_230,
        output_tokens=612,
        usage="1250.000000",
        cost="0.00250000",
        request=_chat_request(
            "gpt-4o-mini",
            "Which joints are failing and why? " + HOSTILE_TEXT + "\n" + INCIDENT_LOG,
            response_format={"type": "json_object"},
            seed=42,
            stop=None,
        ),
        response=_chat_response(
            '{"failing": ["arm-3 joint 2", "arm-5 joint 4"], "cause": "torque limit", '
            '"confidence": 0.82}',
            14_230,
            612,
        ),
    )

    # gpt-4o chat through acme-batch (group vip): the staff filter's calls.
    for index, minutes_ago in enumerate((15, 70, 160, 290, 420, 610)):
        add(
            "acme-batch",
            minutes_ago,
            model="gpt-4o",
            duration_ms=2_400 + index * 850,
            ttft_ms=420 + index * 40,
            input_tokens=2_100 + index * 310,
            output_tokens=380 + index * 45,
            usage=f"{9.5 + index:.6f}",
            cost=f"{0.0095 + index / 1000:.8f}",
            request=_chat_request("gpt-4o", f"Draft maintenance plan for cell {index}."),
            response=_chat_response(f"Plan for cell {index}: inspect, lubricate, test.", 0, 0),
        )
    add(
        "acme-batch",
        200,
        request_id=ERROR_REQUEST_ID,
        model="gpt-4o",
        stream=True,
        status_code=502,
        error_reason="upstream_unavailable",
        duration_ms=15_300,
        ttft_ms=900,
        input_tokens=1_200,
        output_tokens=35,
        usage="2.400000",
        cost="0.00340000",
        upstream="azure-eastus-2",
        request=_chat_request("gpt-4o", "Explain the torque alarm on arm-3 step by step."),
        response={"partial": True, "choices": [{"delta": {"content": "The torque alarm on"}}]},
        error={
            "type": "upstream_unavailable",
            "message": "Upstream connection reset after 15.3 s (azure-eastus-2)",
            "code": 502,
            "retryable": True,
            "attempts": [{"upstream": "azure-eastus-2", "status": 502, "after_ms": 15_300}],
        },
    )
    add(
        "acme-batch",
        340,
        model="gpt-4o",
        status_code=429,
        error_reason="rate_limit_exceeded",
        duration_ms=95,
        ttft_ms=None,
        input_tokens=0,
        output_tokens=0,
        usage="0",
        cost="0",
        error={"type": "rate_limit_exceeded", "message": "Rate limit reached for gpt-4o."},
    )
    # Same model and key but outside the time range; same model, other key.
    add("acme-batch", 60 * 30, model="gpt-4o", duration_ms=3_100, input_tokens=900)
    add("acme-prod", 45, model="gpt-4o", duration_ms=2_900, input_tokens=700)

    # Embeddings, images and completions.
    for index in range(4):
        add(
            "acme-prod",
            30 + index * 180,
            call_type="embedding",
            model="text-embedding-3-small",
            endpoint="/v1/embeddings",
            duration_ms=140 + index * 25,
            ttft_ms=None,
            input_tokens=512 + index * 64,
            output_tokens=0,
            usage="0.010000",
            cost="0.00001000",
            request={"params": {"model": "text-embedding-3-small"}, "body": {"input": "arm log"}},
            response={"data": [{"embedding": [0.0123, -0.0456, 0.0789], "index": 0}]},
        )
    for index in range(2):
        add(
            "acme-research",
            120 + index * 300,
            call_type="image",
            model="dall-e-3",
            endpoint="/v1/images/generations",
            duration_ms=11_200 + index * 900,
            ttft_ms=None,
            input_tokens=60,
            output_tokens=0,
            usage="20.000000",
            cost="0.04000000",
        )
    for index in range(3):
        add(
            "acme-research",
            100 + index * 240,
            call_type="completion",
            model="gpt-3.5-turbo-instruct",
            endpoint="/v1/completions",
            duration_ms=700 + index * 120,
            input_tokens=400,
            output_tokens=120,
        )

    # Globex: another customer, other key names.
    for index in range(8):
        add(
            "globex-prod" if index % 2 else "globex-batch",
            20 + index * 95,
            model="gemini-1.5-flash" if index % 3 else "gpt-4o",
            duration_ms=900 + index * 300,
            input_tokens=800 + index * 50,
            output_tokens=150 + index * 10,
            usage="3.000000",
            cost="0.00060000",
        )
    add(
        "globex-batch",
        80,
        model="gemini-1.5-flash",
        status_code=500,
        error_reason="internal_error",
        error={"type": "internal_error", "message": "globex-only failure"},
    )

    ingest(*records)
    return World(
        now=now,
        staff=staff,
        acme=acme,
        globex=globex,
        acme_owner=acme_owner,
        globex_owner=globex_owner,
        keys=keys,
        filter_start=(now - timedelta(hours=12)).replace(second=0),
        filter_end=(now + timedelta(minutes=2)).replace(second=0),
    )
