#!/usr/bin/env python
"""Run every benchmark against a dataset built by bench/build_dataset.py; print a table.

    python bench/run.py --database-url postgres://root@127.0.0.1:5432/usagelogs_bench \\
        [--repeat 15] [--quick] [--json-out results.json] [--compare results-100k.json]

Everything runs in this process through Django's test client (the full
request/response cycle: middleware, views, queries, templates; no network or
WSGI server), with DEBUG off. Exports run in a child process each, so their
peak memory (``ru_maxrss``) is the serving process's. Each case is run once to
warm up, then ``--repeat`` times; the table shows the median and p95 (nearest
rank) of those runs.

Times are relative to the dataset: "last 7 days" and "30 days" end at the
newest call in the database, so a dataset built days ago measures the same.

Writes that the suite makes (ingest, import_calls, the month copied for
pruning) are removed again, with the rollups of the hours they touched
rebuilt, so the dataset can be measured again. Users ``bench-staff``,
``bench-owner`` and ``bench-ingest`` are created (or reused) in the database.

Exit status: 0 when every case ran (missed targets included), 1 when a case failed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIST_TARGET_MS = 100
STATS_TARGET_MS = 100
API_TARGET_MS = 50
SEARCH_TARGET_MS = 50  # a call by its request id, whatever its age
EXPORT_TARGET_ROWS_PER_S = 200_000
EXPORT_TARGET_MB = 200
EXPORT_ROWS_FULL = 5_000_000
INGEST_TARGET = 10_000
IMPORT_TARGET = 50_000
PRUNE_TARGET_S = 1.0
SCALE_TARGET = 1.5  # list pages at N calls vs at 100k calls
STOCK_GUARD_S = 30  # a stock case slower than this is measured once
STOCK_STATEMENT_TIMEOUT_S = 120
PAGE = 100  # the "page 100" cases


# --- results ---------------------------------------------------------------------------------


@dataclass
class Result:
    section: str
    case: str
    runs: int = 0
    median_ms: float | None = None
    p95_ms: float | None = None
    value: str = ""  # a derived figure: rows/s, MB, records/s
    target: str = ""
    passed: bool | None = None
    stock_median_ms: float | None = None
    stock_note: str = ""
    baseline_median_ms: float | None = None
    note: str = ""
    error: str = ""
    samples_ms: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.stock_median_ms is None or not self.median_ms:
            return None
        return self.stock_median_ms / self.median_ms


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class CaseError(Exception):
    pass


# --- timing ------------------------------------------------------------------------------------


def timed_request(client, method: str, url: str, **kwargs) -> tuple[float, Any, int]:
    """Milliseconds for the whole response (streamed content consumed), the response,
    and the body size in bytes."""
    began = time.perf_counter()
    response = getattr(client, method)(url, **kwargs)
    if response.streaming:
        size = sum(len(chunk) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    elapsed = (time.perf_counter() - began) * 1000
    return elapsed, response, size


def check(response, url: str, expect: int = 200, marker: bytes | None = None) -> None:
    if response.status_code != expect:
        where = response.get("Location", "")
        raise CaseError(f"{url} answered {response.status_code} {where}".strip())
    if marker is not None and not response.streaming and marker not in response.content:
        raise CaseError(f"{url}: the page lacks {marker.decode()!r}")


SLOW_S = 5  # a case whose warm-up takes longer gets at most SLOW_RUNS timed runs
SLOW_RUNS = 5


def sample(run, repeat: int, guard_s: float | None = None) -> tuple[list[float], str]:
    """Warm up once, then ``repeat`` timed runs (at most SLOW_RUNS for a slow case).
    With ``guard_s``, a warm-up slower than that is the only measurement."""
    first = run()
    if guard_s is not None and first > guard_s * 1000:
        return [first], f"measured once (> {guard_s:.0f} s)"
    if first > SLOW_S * 1000 and repeat > SLOW_RUNS:
        return [run() for _ in range(SLOW_RUNS)], f"{SLOW_RUNS} runs (> {SLOW_S} s each)"
    return [run() for _ in range(repeat)], ""


# --- the suite ---------------------------------------------------------------------------------


class Suite:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.repeat = args.repeat if args.repeat else (3 if args.quick else 15)
        self.stock_repeat = args.stock_repeat if args.stock_repeat else (1 if args.quick else 5)
        self.results: list[Result] = []
        self.meta: dict[str, Any] = {}
        self.baseline: dict[str, float] = {}
        if args.compare:
            data = json.loads(Path(args.compare).read_text())
            self.baseline = {
                r["case"]: r["median_ms"] for r in data["results"] if r.get("median_ms") is not None
            }
            self.meta["compared_with"] = {
                "file": args.compare,
                "calls": data["meta"].get("calls"),
            }

    # --- bookkeeping ---

    def add(self, result: Result) -> Result:
        if result.samples_ms and result.median_ms is None:
            result.runs = len(result.samples_ms)
            result.median_ms = statistics.median(result.samples_ms)
            result.p95_ms = p95(result.samples_ms)
        if result.case in self.baseline and result.section in ("admin", "portal"):
            result.baseline_median_ms = self.baseline[result.case]
        self.results.append(result)
        shown = f"{result.median_ms:9.1f} ms" if result.median_ms is not None else " " * 12
        status = "ERROR " + result.error if result.error else (result.value or "")
        print(f"  {result.section:<7} {result.case:<52} {shown}  {status}", flush=True)
        return result

    def attempt(self, section: str, case: str, function, *args, **kwargs) -> Result | None:
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # report and go on: one broken case must not hide the rest
            traceback.print_exc()
            return self.add(Result(section, case, error=f"{type(exc).__name__}: {exc}"[:300]))

    # --- setup ---

    def setup(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django.db import connection
        from django.db.models import Max, Sum

        from accounts.models import Account, ApiKey, Group, Membership
        from accounts.services import create_access_token
        from logs.models import AccountModel, CallPayload, CallRecord, HourlyCallRollup

        User = get_user_model()
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            pg_version = cursor.fetchone()[0]
            settings_rows = {}
            for name in (
                "shared_buffers",
                "work_mem",
                "effective_cache_size",
                "max_parallel_workers_per_gather",
                "random_page_cost",
            ):
                cursor.execute(f"SHOW {name}")
                settings_rows[name] = cursor.fetchone()[0]
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            db_size = cursor.fetchone()[0]

        calls = CallRecord.objects.count()
        if not calls:
            raise SystemExit("The database has no calls: build a dataset first (build_dataset.py).")
        newest = CallRecord.objects.aggregate(Max("created_at"))["created_at__max"]
        oldest = CallRecord.objects.order_by("created_at").values_list("created_at", flat=True)[0]
        # "Now" is the newest call, rounded up to the minute: reruns measure the same windows.
        self.now = newest.replace(second=0, microsecond=0) + timedelta(minutes=1)
        self.oldest = oldest
        self.meta.update(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_average_start": os.getloadavg(),
                "code": git_revision(),
                "calls": calls,
                "payloads": CallPayload.objects.count(),
                "rollup_rows": HourlyCallRollup.objects.count(),
                "rollup_level_rows": rollup_level_rows(),
                "accounts": Account.objects.count(),
                "keys": ApiKey.objects.count(),
                "oldest_call": oldest.isoformat(timespec="seconds"),
                "newest_call": newest.isoformat(timespec="seconds"),
                "database_size": db_size,
                "postgresql": pg_version,
                "postgresql_settings": settings_rows,
                "repeat": self.repeat,
                "stock_repeat": self.stock_repeat,
                "quick": self.quick,
                **machine_facts(),
            }
        )

        # Users: support staff, an owner of the biggest account, a service user for ingest.
        self.staff, _ = User.objects.get_or_create(
            username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
        )
        by_account = (
            HourlyCallRollup.objects.values("account_id")
            .annotate(n=Sum("calls"))
            .order_by("-n", "pk")
        )
        top = by_account.first()
        self.account = Account.objects.get(pk=top["account_id"])
        self.owner, _ = User.objects.get_or_create(username="bench-owner")
        Membership.objects.filter(user=self.owner).exclude(account=self.account).delete()
        Membership.objects.get_or_create(user=self.owner, account=self.account)
        self.ingester, _ = User.objects.get_or_create(username="bench-ingest")
        self.ingester.user_permissions.add(Permission.objects.get(codename="ingest_callrecord"))
        self.ingester = User.objects.get(pk=self.ingester.pk)  # drop the permission cache

        self.staff_token = create_access_token(user=self.staff, name="bench").secret
        self.owner_token = create_access_token(user=self.owner, name="bench").secret
        self.ingest_token = create_access_token(
            user=self.ingester, name="bench", can_ingest=True
        ).secret

        # Filter values: realistic, not the easiest. Shares come from the rollups.
        def share(**filters):
            part = HourlyCallRollup.objects.filter(**filters).aggregate(n=Sum("calls"))["n"] or 0
            return part / calls

        models = list(
            HourlyCallRollup.objects.values("model")
            .annotate(n=Sum("calls"))
            .order_by("-n", "model")
        )
        self.model = models[min(2, len(models) - 1)]["model"]  # the third most used
        account_models = list(
            AccountModel.objects.filter(account=self.account).values_list("model", flat=True)
        )
        top_model_of_account = (
            HourlyCallRollup.objects.filter(account=self.account, call_type="chat")
            .values("model")
            .annotate(n=Sum("calls"))
            .order_by("-n", "model")
            .first()
        )
        self.account_model = top_model_of_account["model"] if top_model_of_account else self.model
        self.key_name = "staging"
        self.group = "vip"
        self.call_type = "embedding"
        self.start_7d = self.now - timedelta(days=7)
        self.start_30d = self.now - timedelta(days=30)
        self.group_id = Group.objects.get(name=self.group).pk

        # The portal shows one account: its filters take values that account has,
        # again not the commonest ones.
        def ranked(field_name):
            return [
                row[field_name]
                for row in HourlyCallRollup.objects.filter(account=self.account)
                .values(field_name)
                .annotate(n=Sum("calls"))
                .order_by("-n", field_name)
            ]

        own_models = ranked("model")
        own_keys = ranked("api_key__name")
        own_groups = ranked("group__name")
        own_types = ranked("call_type")
        self.portal = {
            "model": own_models[min(2, len(own_models) - 1)],
            "key_name": "staging" if "staging" in own_keys else own_keys[min(1, len(own_keys) - 1)],
            "group": own_groups[min(1, len(own_groups) - 1)],
            "call_type": "embedding"
            if "embedding" in own_types
            else own_types[min(1, len(own_types) - 1)],
        }
        self.portal["group_id"] = Group.objects.get(name=self.portal["group"]).pk

        def described(values, scope):
            combined = share(
                **scope,
                hour__gte=self.start_7d,
                model=self.account_model,
                call_type="chat",
            )
            return {
                "start": f"{self.start_7d:%Y-%m-%d %H:%M} UTC (last 7 days), "
                f"{share(**scope, hour__gte=self.start_7d):.1%}",
                "model": f"{values['model']}, {share(**scope, model=values['model']):.1%}",
                "key_name": f"{values['key_name']} "
                f"({ApiKey.objects.filter(name=values['key_name']).count()} keys), "
                f"{share(**scope, api_key__name=values['key_name']):.1%}",
                "group": f"{values['group']}, {share(**scope, group__name=values['group']):.1%}",
                "call_type": f"{values['call_type']}, "
                f"{share(**scope, call_type=values['call_type']):.1%}",
                "combined": f"account + last 7 days + model {self.account_model} + call type "
                f"chat, {combined:.2%}",
            }

        admin_values = {
            "model": self.model,
            "key_name": self.key_name,
            "group": self.group,
            "call_type": self.call_type,
        }
        self.meta["filters"] = {
            "admin (share of all calls)": {
                "account": f"{self.account.name} (id {self.account.pk}), "
                f"{share(account=self.account):.1%}, {len(account_models)} models",
                **described(admin_values, {}),
            },
            "portal (share of all calls)": described(self.portal, {"account": self.account}),
        }
        print("Dataset:", json.dumps({k: self.meta[k] for k in ("calls", "database_size")}))
        for surface, values in self.meta["filters"].items():
            for name, text in values.items():
                print(f"  {surface} filter {name}: {text}")

    def client(self, user=None):
        from django.test import Client

        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    # --- list pages ---

    def list_filters(self, portal: bool) -> list[tuple[str, dict, dict]]:
        """(name, our parameters, the stock admin's parameters) per filter case."""
        local_start = self.start_7d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        stock_start = self.start_7d.astimezone(UTC).isoformat()
        account = {"account": self.account.pk}
        stock_account = {"account__id__exact": self.account.pk}
        values = (
            self.portal
            if portal
            else {
                "model": self.model,
                "key_name": self.key_name,
                "group": self.group,
                "group_id": self.group_id,
                "call_type": self.call_type,
            }
        )
        model, key_name, call_type = values["model"], values["key_name"], values["call_type"]
        cases = [
            ("unfiltered", {}, {}),
            ("account", account, stock_account),
            ("last 7 days", {"start": local_start}, {"created_at__gte": stock_start}),
            ("model", {"model": model}, {"model__exact": model}),
            # Stock filters pick one key; every key of that name is the list of their ids.
            ("key name", {"key_name": key_name}, {"api_key__id__in": self.key_ids(key_name)}),
            ("group", {"group": values["group"]}, {"group__id__exact": values["group_id"]}),
            ("call type", {"call_type": call_type}, {"call_type__exact": call_type}),
            (
                "combined",
                {
                    **account,
                    "start": local_start,
                    "model": self.account_model,
                    "call_type": "chat",
                },
                {
                    **stock_account,
                    "created_at__gte": stock_start,
                    "model__exact": self.account_model,
                    "call_type__exact": "chat",
                },
            ),
        ]
        if portal:
            # The portal shows one account: no account filter; the stock admin
            # stands in for it with the account filter always on.
            cases = [
                (
                    name,
                    {k: v for k, v in ours.items() if k != "account"},
                    {**stock, **stock_account},
                )
                for name, ours, stock in cases
                if name != "account"
            ]
        return cases

    def key_ids(self, name: str) -> str:
        from accounts.models import ApiKey

        return ",".join(
            str(pk) for pk in ApiKey.objects.filter(name=name).values_list("pk", flat=True)
        )

    def filtered_count(self, params: dict) -> int:
        from logs.models import CallRecord

        return self.filtered(CallRecord.objects.all(), params).count()

    def filtered(self, calls, params: dict):
        from logs.read.filters import CallFilters, filter_calls

        filters = CallFilters(
            start=self.start_7d if "start" in params else None,
            model=params.get("model"),
            key_name=params.get("key_name"),
            group=params.get("group"),
            call_type=params.get("call_type"),
            account_id=params.get("account"),
        )
        return filter_calls(calls, filters)

    def run_lists(self):
        staff = self.client(self.staff)
        owner = self.client(self.owner)
        stock_cases = []
        for section, base, client, portal in (
            ("admin", "/admin/logs/callrecord/", staff, False),
            ("portal", "/portal/logs/callrecord/", owner, True),
        ):
            for name, ours, stock in self.list_filters(portal):
                scope = {"account": self.account.pk} if portal else {}
                count = self.filtered_count({**ours, **scope})
                for page in (1, PAGE):
                    case = f"{section} list, {name}, page {page}"
                    if page > 1 and count <= (page - 1) * 100:
                        self.add(
                            Result(section, case, note=f"n/a: {count:,} calls, under {page} pages")
                        )
                        continue
                    params = {**ours, **({"p": page} if page > 1 else {})}
                    stock_params = {**stock, **({"p": page} if page > 1 else {})}
                    url = base + ("?" + urlencode(params) if params else "")
                    stock_url = "/stockadmin/logs/callrecord/" + (
                        "?" + urlencode(stock_params) if stock_params else ""
                    )
                    result = self.attempt(
                        section, case, self.measure_list, section, case, client, url, count
                    )
                    if result is not None and not result.error:
                        self.check_first_row(result, client, url, {**ours, **scope}, page)
                        result.metrics["stock_url"] = stock_url
                        stock_cases.append(result)

        # The stock admin, on the same cases (slow: fewer runs, a guard, a statement timeout).
        self.run_stock(
            stock_cases,
            staff,
            lambda result: (
                result.section == "admin"
                and result.case.endswith("page 1")
                and (", unfiltered," in result.case or ", account," in result.case)
            ),
        )

    def run_stock(self, stock_cases: list[Result], staff, quick_keeps) -> None:
        """The stock admin on ``stock_cases`` (each with its ``stock_url``); with
        --quick only on those ``quick_keeps`` accepts."""
        from django.db import connection

        if self.args.no_stock:
            for result in stock_cases:
                result.stock_note = "skipped (--no-stock)"
            return
        print("Stock Django admin (same data, same filters):", flush=True)
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = '{STOCK_STATEMENT_TIMEOUT_S}s'")
        try:
            for result in stock_cases:
                if self.quick and not quick_keeps(result):
                    result.stock_note = "skipped (--quick)"
                    continue
                self.measure_stock(result, staff)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")

    def check_first_row(self, result: Result, client, url: str, params: dict, page: int) -> None:
        """Does the page show what it says? Its first row should be the call at
        position (page - 1) x 100, newest first. A mismatch is noted, not fatal."""
        import re

        from logs.models import CallRecord

        response = client.get(url)
        shown = re.findall(rb"/logs/callrecord/(\d+)/change/", response.content)
        offset = (page - 1) * 100
        expected = list(
            self.filtered(CallRecord.objects.all(), params)
            .order_by("-created_at", "-id")
            .values_list("id", flat=True)[offset : offset + 1]
        )
        if shown and expected and int(shown[0]) != expected[0]:
            position = (
                self.filtered(CallRecord.objects.all(), params)
                .filter(created_at__gt=CallRecord.objects.get(pk=int(shown[0])).created_at)
                .count()
            )
            result.note = (
                f"WRONG ROWS: the first row is call #{position + 1:,} newest first, "
                f"expected #{offset + 1:,}"
            )
            result.metrics["first_row_position"] = position + 1

    def measure_list(self, section, case, client, url, count) -> Result:
        def run():
            elapsed, response, _ = timed_request(client, "get", url)
            check(response, url, marker=b'id="result_list"')
            return elapsed

        samples, note = sample(run, self.repeat)
        result = Result(section, case, samples_ms=samples, note=note)
        result.target = f"≤ {LIST_TARGET_MS} ms"
        result.metrics.update({"url": url, "rows_matching": count})
        self.add(result)
        result.passed = result.median_ms <= LIST_TARGET_MS
        if result.baseline_median_ms:
            scaled = result.median_ms / result.baseline_median_ms
            result.target += f", ≤ {SCALE_TARGET}x 100k"
            result.passed = result.passed and scaled <= SCALE_TARGET
        return result

    def measure_stock(self, result: Result, client) -> None:
        from django.db.utils import OperationalError

        url = result.metrics["stock_url"]

        def run():
            elapsed, response, _ = timed_request(client, "get", url)
            check(response, url, marker=b'id="result_list"')
            return elapsed

        try:
            samples, note = sample(run, self.stock_repeat, guard_s=STOCK_GUARD_S)
        except OperationalError as exc:
            result.stock_note = f"statement timeout (> {STOCK_STATEMENT_TIMEOUT_S} s)"
            print(f"  stock   {result.case:<52}  {result.stock_note}: {exc}".rstrip(), flush=True)
            from django.db import connection

            connection.close()
            with connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = '{STOCK_STATEMENT_TIMEOUT_S}s'")
            return
        except CaseError as exc:
            result.stock_note = f"error: {exc}"
            print(f"  stock   {result.case:<52}  {result.stock_note}", flush=True)
            return
        result.stock_median_ms = statistics.median(samples)
        result.metrics["stock_samples_ms"] = samples
        result.stock_note = note or f"{len(samples)} runs"
        ratio = result.ratio
        print(
            f"  stock   {result.case:<52} {result.stock_median_ms:9.1f} ms  "
            f"(stock ÷ ours {ratio:.1f}) {note}",
            flush=True,
        )

    # --- search by request id ---

    def search_targets(self) -> list[tuple[str, str]]:
        """(label, request id) of three calls of the portal's account: its newest,
        one about nine days old and its oldest (in the oldest monthly partition).
        The staff admin searches the same ids over every account."""
        from logs.models import CallRecord

        calls = CallRecord.objects.filter(account=self.account)
        newest = calls.order_by("-created_at", "-id").values_list("request_id", flat=True)[0]
        nine_days = (
            calls.filter(created_at__lte=self.now - timedelta(days=9))
            .order_by("-created_at", "-id")
            .values_list("request_id", "created_at")
            .first()
        )
        oldest = calls.order_by("created_at", "id").values_list("request_id", "created_at")[0]
        targets = [("recent call", newest)]
        if nine_days is not None:
            targets.append(("call 9 days old", nine_days[0]))
        age = (self.now - oldest[1]).days
        targets.append((f"oldest call ({age} days)", oldest[0]))
        return targets

    def run_search(self):
        staff = self.client(self.staff)
        owner = self.client(self.owner)
        api = self.client()
        tokens = {
            "staff": {"HTTP_AUTHORIZATION": f"Bearer {self.staff_token}"},
            "owner": {"HTTP_AUTHORIZATION": f"Bearer {self.owner_token}"},
        }
        stock_cases = []
        for label, request_id in self.search_targets():
            for section, base, client, portal in (
                ("admin", "/admin/logs/callrecord/", staff, False),
                ("portal", "/portal/logs/callrecord/", owner, True),
            ):
                case = f"{section} search by request id, {label}"
                url = base + "?" + urlencode({"q": request_id})
                result = self.attempt(
                    "search", case, self.measure_search, case, client, url, request_id
                )
                if result is not None and not result.error:
                    stock = {"q": request_id}
                    if portal:
                        stock["account__id__exact"] = self.account.pk
                    result.metrics["stock_url"] = "/stockadmin/logs/callrecord/?" + urlencode(stock)
                    stock_cases.append(result)
            for who, auth in tokens.items():
                case = f"API calls by request id, {who}, {label}"
                url = "/api/v1/calls/?" + urlencode({"request_id": request_id})
                self.attempt("search", case, self.measure_search, case, api, url, request_id, auth)
        # Stock search is Django's icontains: a scan of every call; quick runs skip it.
        self.run_stock(stock_cases, staff, lambda result: False)

    def measure_search(self, case, client, url, request_id, headers=None) -> Result:
        """Time a search and check it shows that call, and only it (the
        dataset's request ids are unique over all accounts)."""
        import re

        from logs.models import CallRecord

        expected = [CallRecord.objects.get(request_id=request_id, account=self.account).pk]

        def run():
            elapsed, response, _ = timed_request(client, "get", url, **(headers or {}))
            check(response, url)
            if headers:
                found = [row["id"] for row in response.json()["results"]]
            else:
                links = re.findall(rb"/logs/callrecord/(\d+)/change/", response.content)
                found = sorted({int(pk) for pk in links})
            if found != expected:
                raise CaseError(f"{url}: expected only call {expected}, found {found}")
            return elapsed

        samples, note = sample(run, self.repeat)
        result = Result("search", case, samples_ms=samples, note=note)
        result.target = f"≤ {SEARCH_TARGET_MS} ms"
        result.metrics["url"] = url
        self.add(result)
        result.passed = result.median_ms <= SEARCH_TARGET_MS
        return result

    # --- totals and stats ---

    def run_stats(self):
        from logs.models import CallRecord
        from logs.read.filters import CallFilters, filter_calls
        from logs.read.totals import call_totals, scoped_totals

        window = CallFilters(start=self.start_30d)
        staff_api = self.client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.staff_token}"}
        local_start = self.start_30d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")

        def timed(function):
            def run():
                began = time.perf_counter()
                function()
                return (time.perf_counter() - began) * 1000

            return run

        cases = [
            (
                "totals (scoped_totals, rollups), 30 days, staff",
                timed(lambda: scoped_totals(self.staff, filters=window)),
            ),
            (
                "totals (scoped_totals, rollups), 30 days, owner",
                timed(lambda: scoped_totals(self.owner, account=self.account, filters=window)),
            ),
            (
                "totals over raw calls (call_totals, reference), 30 days",
                timed(lambda: call_totals(filter_calls(CallRecord.objects.all(), window))),
            ),
        ]
        api_url = "/api/v1/stats/?" + urlencode(
            {"interval": "day", "start": self.start_30d.isoformat()}
        )
        cases.append(("stats API, per day, 30 days", self.request_run(staff_api, api_url, auth)))
        hourly_api_url = "/api/v1/stats/?" + urlencode(
            {"interval": "hour", "start": self.start_30d.isoformat()}
        )
        cases.append(
            ("stats API, per hour, 30 days", self.request_run(staff_api, hourly_api_url, auth))
        )
        staff = self.client(self.staff)
        owner = self.client(self.owner)
        sizes: dict[str, list[int]] = {}
        for name, client, base in (
            ("admin stats page, 30 days", staff, "/admin/logs/callrecord/stats/"),
            ("portal stats page, 30 days", owner, "/portal/logs/callrecord/stats/"),
        ):
            daily = base + "?start=" + local_start
            cases.append((name, self.request_run(client, daily, sizes=sizes.setdefault(name, []))))
            # The same page per hour: five charts of 720 columns, five tables of 720 rows.
            hourly = base + "?interval=hour&start=" + local_start
            hourly_name = name + " per hour"
            sizes[hourly_name] = []
            cases.append((hourly_name, self.request_run(client, hourly, sizes=sizes[hourly_name])))
        for name, run in cases:
            result = self.attempt(
                "stats", name, self.measure_simple, "stats", name, run, STATS_TARGET_MS
            )
            if result is not None and sizes.get(name):
                # The page's weight is part of its cost: the browser parses and draws it.
                result.value = f"HTML {sizes[name][-1] / 1000:,.0f} kB"
                result.metrics["html_bytes"] = sizes[name][-1]

    def request_run(self, client, url, headers=None, marker=None, sizes=None):
        def run():
            elapsed, response, size = timed_request(client, "get", url, **(headers or {}))
            check(response, url, marker=marker)
            if sizes is not None:
                sizes.append(size)
            return elapsed

        return run

    def measure_simple(self, section, name, run, target_ms) -> Result:
        samples, note = sample(run, self.repeat)
        result = Result(section, name, samples_ms=samples, note=note, target=f"≤ {target_ms} ms")
        self.add(result)
        result.passed = result.median_ms <= target_ms
        return result

    # --- investigating: sorts by a measure, raw-only filters, a call's neighbours ---

    def run_investigating(self):
        """The list as a support engineer uses it in an incident: the last day
        sorted by duration or cost, errors only, slow calls, one status code,
        streamed calls, and a call's page with its previous and next call.
        A sort over more calls than CallChangeList.SORT_MAX_CALLS is refused
        (newest first, with a message): such a case is noted, not hidden."""
        from logs.admin.calls import CallRecordAdmin
        from logs.admin.changelist import CallChangeList
        from logs.models import CallRecord

        staff = self.client(self.staff)
        base = "/admin/logs/callrecord/"
        column = {name: str(i) for i, name in enumerate(CallRecordAdmin.list_display)}
        start_24h = (self.now - timedelta(hours=24)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        start_7d = self.start_7d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        start_1h = (self.now - timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        start_6h = (self.now - timedelta(hours=6)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        cases = [
            ("sorted by duration, last hour", {"start": start_1h, "o": column["duration"]}),
            ("sorted by cost, last 6 hours", {"start": start_6h, "o": column["cost_amount"]}),
            ("sorted by duration, last 24 hours", {"start": start_24h, "o": column["duration"]}),
            ("sorted by cost, last 24 hours", {"start": start_24h, "o": column["cost_amount"]}),
            (
                "sorted by cost, last 24 hours, page 10",
                {"start": start_24h, "o": column["cost_amount"], "p": 10},
            ),
            ("sorted by tokens, last 7 days", {"start": start_7d, "o": column["tokens"]}),
            ("sorted by usage, unfiltered", {"o": column["usage_amount"]}),
            ("any error, last 24 hours", {"start": start_24h, "status": "error"}),
            ("slower than 10 s, last 24 hours", {"start": start_24h, "slower_than_ms": 10000}),
            ("status code 429, last 24 hours", {"start": start_24h, "status_code": 429}),
            ("streamed, last 24 hours", {"start": start_24h, "streamed": "yes"}),
            ("cost above 0.01, last 7 days", {"start": start_7d, "cost_above": "0.01"}),
        ]
        for name, params in cases:
            url = base + "?" + urlencode(params)
            result = self.attempt(
                "investigating",
                f"admin list, {name}",
                self.measure_simple,
                "investigating",
                f"admin list, {name}",
                self.request_run(staff, url, marker=b'id="result_list"'),
                LIST_TARGET_MS,
            )
            if result is not None and not result.error:
                result.metrics["url"] = url
                shown = staff.get(url).content
                if b"too many to sort by this column quickly" in shown:
                    result.note = (
                        f"sort refused: over {CallChangeList.SORT_MAX_CALLS:,} calls "
                        "(shown newest first, with a link to a recent span that sorts quickly)"
                    )
        newest = CallRecord.objects.order_by("-created_at").only("pk").first()
        if newest is not None:
            filters = urlencode({"_changelist_filters": f"model={self.model}&o=-0"})
            url = f"{base}{newest.pk}/change/?{filters}"
            self.attempt(
                "investigating",
                "call page with previous and next (model filter)",
                self.measure_simple,
                "investigating",
                "call page with previous and next (model filter)",
                self.request_run(staff, url, marker=b"Back to results"),
                LIST_TARGET_MS,
            )

    # --- API pages ---

    def run_api(self):
        from logs.models import CallRecord

        client = self.client()
        staff = {"HTTP_AUTHORIZATION": f"Bearer {self.staff_token}"}
        owner = {"HTTP_AUTHORIZATION": f"Bearer {self.owner_token}"}
        walks = (
            ("API calls, staff, unfiltered", "/api/v1/calls/?page_size=100", staff),
            (
                "API calls, staff, account filter",
                f"/api/v1/calls/?page_size=100&account={self.account.pk}",
                staff,
            ),
            ("API calls, owner", "/api/v1/calls/?page_size=100", owner),
        )
        for name, first_url, auth in walks:
            self.attempt(
                "api", f"{name}, page 1", self.measure_simple, "api", f"{name}, page 1",
                self.request_run(client, first_url, auth), API_TARGET_MS,
            )  # fmt: skip
            self.attempt(
                "api", f"{name}, page {PAGE}", self.api_walk, client, name, first_url, auth
            )

        # Any depth: a cursor at the oldest tenth of the table (ids grow with time).
        last_id = CallRecord.objects.order_by("-id").values_list("id", flat=True)[0]
        first_id = CallRecord.objects.order_by("id").values_list("id", flat=True)[0]
        row = (
            CallRecord.objects.filter(id__gte=first_id + (last_id - first_id) // 10)
            .order_by("id")
            .values_list("created_at", "id")[0]
        )
        payload = json.dumps(["next", row[0].isoformat(), row[1]]).encode()
        cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        url = f"/api/v1/calls/?page_size=100&cursor={cursor}"
        name = "API calls, staff, cursor 90% deep"
        self.attempt(
            "api", name, self.measure_simple, "api", name,
            self.request_run(client, url, staff), API_TARGET_MS,
        )  # fmt: skip

    def api_walk(self, client, name, first_url, auth) -> Result:
        url = first_url
        walk_ms = []
        for _ in range(PAGE - 1):
            elapsed, response, _ = timed_request(client, "get", url, **auth)
            check(response, url)
            url = response.json()["next"]
            walk_ms.append(elapsed)
            if url is None:
                return self.add(
                    Result("api", f"{name}, page {PAGE}", note=f"n/a: under {PAGE} pages")
                )
        result = self.measure_simple(
            "api", f"{name}, page {PAGE}", self.request_run(client, url, auth), API_TARGET_MS
        )
        result.note = (
            f"walking pages 2-{PAGE}: median {statistics.median(walk_ms[1:]):.1f} ms, "
            f"p95 {p95(walk_ms[1:]):.1f} ms"
        )
        result.metrics["walk_ms"] = walk_ms
        return result

    # --- exports ---

    def export_start(self, rows_wanted: int) -> tuple[datetime | None, int]:
        """The hour from which on about ``rows_wanted`` calls lie (None: all of them)."""
        from django.db.models import Sum

        from logs.models import HourlyCallRollup

        total = 0
        for hour, calls in (
            HourlyCallRollup.objects.values("hour").annotate(n=Sum("calls")).order_by("-hour")
        ).values_list("hour", "n"):
            total += calls
            if total >= rows_wanted:
                return hour, total
        return None, total

    def child(self, kind: str, spec: dict, timeout: int) -> dict:
        env = {**os.environ, "BENCH_CHILD_SPEC": json.dumps(spec)}
        command = [sys.executable, __file__, "--database-url", self.args.database_url]
        command += ["--child", kind]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise CaseError(f"child {kind} failed: {done.stderr.strip()[-800:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def run_exports(self):
        rows_wanted = self.args.export_rows or (20_000 if self.quick else EXPORT_ROWS_FULL)
        start, expected = self.export_start(rows_wanted)
        query = {"start": start.isoformat()} if start else {}
        self.attempt(
            "export", "CSV export, API (streamed)", self.measure_export,
            "CSV export, API (streamed)", "api-export", query, expected, target=True,
        )  # fmt: skip

        # Side by side with django-import-export's default admin export, which builds the
        # whole file in memory: at smaller sizes, two when there is room to show the trend.
        sizes = (
            [int(s) for s in self.args.memory_export_rows.split(",")]
            if self.args.memory_export_rows
            else ([10_000] if self.quick else [100_000, 300_000])
        )
        seen = set()
        for size in sizes:
            start, expected = self.export_start(size)
            if expected in seen:  # the whole table already
                continue
            seen.add(expected)
            admin_query = (
                {"start": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")} if start else {}
            )
            stock_query = {"created_at__gte": start.isoformat()} if start else {}
            label = f"{expected:,} rows"
            self.attempt(
                "export", f"CSV export, admin export button, {label}", self.measure_export,
                f"CSV export, admin export button, {label}", "admin-export", admin_query, expected,
            )  # fmt: skip
            self.attempt(
                "export", f"CSV export, stock import-export admin, {label}", self.measure_export,
                f"CSV export, stock import-export admin, {label}", "stock-export", stock_query,
                expected,
            )  # fmt: skip

    def measure_export(self, name, kind, query, expected, *, target=False) -> Result:
        spec = {
            "query": query,
            "token": self.staff_token,
            "username": self.staff.get_username(),
        }
        runs = 1 if (self.quick or not target) else 3
        reports = [self.child(kind, spec, timeout=self.args.export_timeout) for _ in range(runs)]
        seconds = [r["seconds"] for r in reports]
        report = reports[seconds.index(statistics.median(seconds))] if runs % 2 else reports[0]
        rows = report["rows"]
        rate = rows / report["seconds"] if report["seconds"] else 0
        result = Result(
            "export",
            name,
            samples_ms=[s * 1000 for s in seconds],
            value=f"{rows:,} rows, {rate:,.0f} rows/s, peak {report['peak_mb']:.0f} MB",
            metrics={**report, "rows_per_s": rate, "expected_rows": expected, "runs": reports},
        )
        result.note = (
            f"first byte after {report['first_byte_s']:.2f} s; process RSS before the request "
            f"{report['baseline_mb']:.0f} MB"
        )
        if target:
            result.target = f"≥ {EXPORT_TARGET_ROWS_PER_S:,} rows/s, < {EXPORT_TARGET_MB} MB"
            result.passed = (
                rate >= EXPORT_TARGET_ROWS_PER_S and report["peak_mb"] < EXPORT_TARGET_MB
            )
            if rows < EXPORT_ROWS_FULL:
                result.target += f" (at {EXPORT_ROWS_FULL:,} rows)"
        return self.add(result)

    # --- writes ---

    def ingest_records(self, count: int, seed: int) -> list[dict]:
        return realistic_records(count, seed, self.args.records)

    def removed_afterwards(self):
        return removed_afterwards()

    def run_ingest(self):
        batches = self.args.ingest_batches or (2 if self.quick else 30)
        records = self.ingest_records(batches * 1000, seed=11)
        bodies = [json.dumps(records[i : i + 1000]).encode() for i in range(0, len(records), 1000)]
        client = self.client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.ingest_token}"}
        url = "/api/v1/calls/ingest/"
        samples = []
        with self.removed_afterwards():
            for body in bodies:
                elapsed, response, _ = timed_request(
                    client, "post", url, data=body, content_type="application/json", **auth
                )
                check(response, url, expect=201)
                if response.json()["created"] != 1000:
                    raise CaseError(f"ingest created {response.json()} of 1000")
                samples.append(elapsed)
        rate = 1000 / (statistics.median(samples) / 1000)
        mean_body_mb = sum(map(len, bodies)) / len(bodies) / 1e6
        overall = len(records) / (sum(samples) / 1000)
        result = Result(
            "writes",
            "ingest POST /api/v1/calls/ingest/, batches of 1000",
            samples_ms=samples,
            value=f"{rate:,.0f} records/s (overall {overall:,.0f})",
            target=f"≥ {INGEST_TARGET:,} records/s",
            metrics={"records_per_s": rate, "overall_records_per_s": overall},
            note=f"{len(bodies)} batches, mean body {mean_body_mb:.2f} MB",
        )
        self.add(result)
        result.passed = rate >= INGEST_TARGET

    def run_rollup_levels(self):
        """What each rollup level costs (issue 11 asked for the quarter-hour ones):
        the pending deltas a batch of 1,000 calls appends in the ingest
        transaction, and each level's statement when folding them. Batches as the
        ingest case posts them (calls spread over a day) and as a gateway sends
        them (calls of the last minute); nothing of it stays (rolled back, then
        the calls removed as for ingest)."""
        from django.db import connection, transaction
        from django.db.models import Max
        from django.test import override_settings

        from logs.models import PendingRollupDelta
        from logs.rollups.apply import staged_rollup_statements

        levels = rollup_levels()
        batches = 1 if self.quick else 5
        client = self.client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.ingest_token}"}
        url = "/api/v1/calls/ingest/"
        pending_table = connection.ops.quote_name(PendingRollupDelta._meta.db_table)
        for spread, seconds in (("calls over a day", None), ("calls of the last minute", 60)):
            records = self.ingest_records(batches * 1000, seed=13 if seconds is None else 14)
            if seconds is not None:
                newest = datetime.now(UTC) - timedelta(seconds=1)
                rng = random.Random(14)
                for record in records:
                    moment = newest - timedelta(milliseconds=rng.randrange(seconds * 1000))
                    record["created_at"] = moment.isoformat(timespec="milliseconds")
            before = PendingRollupDelta.objects.aggregate(m=Max("id"))["m"] or 0
            per_level: dict[str, list[float]] = {level._meta.db_table: [] for level in levels}
            with self.removed_afterwards(), override_settings(USAGELOGS_FOLD_AFTER_INGEST=False):
                for i in range(0, len(records), 1000):
                    body = json.dumps(records[i : i + 1000]).encode()
                    _, response, _ = timed_request(
                        client, "post", url, data=body, content_type="application/json", **auth
                    )
                    check(response, url, expect=201)
                with connection.cursor() as cursor:
                    cursor.execute(
                        # Each batch appends its own rows (added_at tells them apart).
                        "SELECT count(*), count(DISTINCT (added_at, date_trunc('hour', quarter), "
                        "account_id, api_key_id, group_id, model, call_type, status_class)) "
                        f"FROM {pending_table} WHERE id > %s",
                        [before],
                    )
                    pending, hourly_keys = cursor.fetchone()
                for _ in range(self.repeat):
                    with transaction.atomic():
                        with connection.cursor() as cursor:
                            cursor.execute(
                                "CREATE TEMPORARY TABLE bench_staged_deltas "
                                f"(LIKE {pending_table}) ON COMMIT DROP"
                            )
                            cursor.execute(
                                "INSERT INTO bench_staged_deltas SELECT * FROM "
                                f"{pending_table} WHERE id > %s",
                                [before],
                            )
                            statements = staged_rollup_statements(
                                levels, source="bench_staged_deltas"
                            )
                            for level, statement in zip(levels, statements, strict=True):
                                began = time.perf_counter()
                                cursor.execute(statement)
                                per_level[level._meta.db_table].append(
                                    (time.perf_counter() - began) * 1000
                                )
                        transaction.set_rollback(True)  # measured, not kept
            calls = len(records)
            self.add(
                Result(
                    "rollups",
                    f"pending deltas per 1,000 calls, {spread}",
                    value=f"{pending * 1000 / calls:,.0f} rows "
                    f"({hourly_keys * 1000 / calls:,.0f} if keyed by the hour)",
                    metrics={"pending_per_1000": pending * 1000 / calls,
                             "hourly_keys_per_1000": hourly_keys * 1000 / calls},
                    note=f"{batches} batches of 1,000 through the ingest API, not folded",
                )
            )  # fmt: skip
            total = sum(statistics.median(samples) for samples in per_level.values())
            for level in levels:
                samples = per_level[level._meta.db_table]
                share = statistics.median(samples) / total if total else 0.0
                self.add(
                    Result(
                        "rollups",
                        f"fold {calls:,} calls ({spread}) into {level.__name__}",
                        samples_ms=samples,
                        value=f"{share:.0%} of folding",
                        metrics={"share": share},
                    )
                )

    def run_import(self):
        from django.core.management import call_command

        count = self.args.import_records or (2_000 if self.quick else 100_000)
        records = self.ingest_records(count, seed=12)
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
            path = handle.name
        size_mb = os.path.getsize(path) / 1e6
        try:
            with self.removed_afterwards():
                began = time.perf_counter()
                call_command("import_calls", path, stdout=io.StringIO(), stderr=io.StringIO())
                seconds = time.perf_counter() - began
        finally:
            os.unlink(path)
        rate = count / seconds
        result = Result(
            "writes",
            f"import_calls, {count:,} records (JSONL)",
            samples_ms=[seconds * 1000],
            value=f"{rate:,.0f} records/s",
            target=f"≥ {IMPORT_TARGET:,} records/s",
            metrics={"records_per_s": rate, "file_mb": size_mb},
            note=f"file {size_mb:.0f} MB",
        )
        self.add(result)
        result.passed = rate >= IMPORT_TARGET

    def run_prune(self):
        from django.db import connection

        from logs.retention.partitions import (
            ensure_partitions,
            is_partitioned,
            month_of,
            next_month,
        )
        from logs.retention.prune import prune_calls

        if not is_partitioned():
            raise CaseError("the calls table is not partitioned (not PostgreSQL?)")
        rows = self.args.prune_rows or (10_000 if self.quick else 1_000_000)
        runs = 1 if self.quick else 3
        old_month = month_of(self.oldest)
        for _ in range(24):  # two years before the data: surely nothing there
            old_month = (old_month.replace(day=1) - timedelta(days=1)).replace(day=1)
        old_start = datetime(old_month.year, old_month.month, 1, tzinfo=UTC)
        cutoff_month = next_month(old_month)
        cutoff = datetime(cutoff_month.year, cutoff_month.month, 1, tzinfo=UTC)
        if cutoff > self.oldest:
            raise CaseError("refusing to prune: the cutoff would reach real data")
        span = max((self.now - self.oldest).total_seconds(), 1)
        factor = min(1.0, 27 * 86400 / span)
        columns = [
            "id", "request_id", "created_at", "account_id", "api_key_id", "group_id",
            "call_type", "model", "endpoint", "is_stream", "status_code", "error_reason",
            "duration_ms", "ttft_ms", "input_tokens", "output_tokens", "total_tokens",
            "usage", "cost", "client_ip", "upstream", "content_hash",
        ]  # fmt: skip
        shifted = "%s::timestamptz + (created_at - %s::timestamptz) * %s"
        select = ", ".join(
            "id + 2000000000000"
            if c == "id"
            else "request_id || '-old'"
            if c == "request_id"
            else shifted
            if c == "created_at"
            else c
            for c in columns
        )
        samples, copied = [], 0
        for _ in range(runs):
            ensure_partitions([old_month], ahead=0)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO logs_callrecord ({', '.join(columns)}) SELECT {select} "
                    "FROM logs_callrecord WHERE created_at >= %s ORDER BY created_at LIMIT %s",
                    [old_start, self.oldest, factor, self.oldest, rows],
                )
                copied = cursor.rowcount
                cursor.execute(
                    f"INSERT INTO logs_callpayload ({', '.join(payload_columns())}) "
                    "SELECT p.call_id + 2000000000000, "
                    "%s::timestamptz + (p.created_at - %s::timestamptz) * %s, "
                    + ", ".join(f"p.{c}" for c in payload_columns()[2:])
                    + " FROM logs_callpayload p WHERE p.call_id IN "
                    "(SELECT id - 2000000000000 FROM logs_callrecord WHERE id > 2000000000000)",
                    [old_start, self.oldest, factor],
                )
                cursor.execute("ANALYZE logs_callrecord")
            began = time.perf_counter()
            result = prune_calls(older_than=timedelta(days=1), now=cutoff + timedelta(days=1))
            samples.append((time.perf_counter() - began) * 1000)
            if result.calls_deleted or len(result.partitions_dropped) != 2:
                raise CaseError(f"prune did not drop exactly one month: {result}")
        outcome = Result(
            "writes",
            "prune_calls, one month",
            samples_ms=samples,
            value=f"{statistics.median(samples) / 1000:.3f} s per month ({copied:,} calls)",
            target=f"≤ {PRUNE_TARGET_S:g} s per month",
            note=f"a copy of {copied:,} calls (and their payloads) in a month "
            f"{old_month:%Y-%m}, dropped as partitions",
        )
        self.add(outcome)
        outcome.passed = outcome.median_ms <= PRUNE_TARGET_S * 1000

    # --- everything ---

    def run(self) -> int:
        print(f"Setting up (repeat {self.repeat}, stock repeat {self.stock_repeat}) …", flush=True)
        self.setup()
        sections = [
            ("list pages", self.run_lists),
            ("search by request id", self.run_search),
            ("investigating", self.run_investigating),
            ("totals and stats", self.run_stats),
            ("API pages", self.run_api),
            ("exports", self.run_exports),
            ("ingest", self.run_ingest),
            ("rollups", self.run_rollup_levels),
            ("import_calls", self.run_import),
            ("prune", self.run_prune),
        ]
        only = set(self.args.only.split(",")) if self.args.only else None
        for name, function in sections:
            if only and not only & (set(name.split()) - {"and", "pages"}):
                continue
            print(f"== {name}", flush=True)
            self.attempt(name, name, function)
        self.meta["load_average_end"] = os.getloadavg()
        # Again at the end: the same machine has run Python 1.8x apart within an hour.
        self.meta["python_reference_ms_end"] = python_reference_ms()
        self.meta["code_end"] = git_revision()
        print()
        print(render_markdown(self.meta, self.results))
        if self.args.json_out:
            Path(self.args.json_out).write_text(
                json.dumps(
                    {"meta": self.meta, "results": [asdict(r) for r in self.results]},
                    indent=1,
                    default=str,
                )
            )
            print(f"\nResults written to {self.args.json_out}")
        errors = [r for r in self.results if r.error]
        if errors:
            print(f"\n{len(errors)} case(s) failed.", file=sys.stderr)
            return 1
        return 0


# --- ingest records (also bench/ingest_load.py) ---------------------------------------------


# The records the ingest benchmarks post: "gateway", what a gateway logging a
# call's parameters and a prompt's opening sends (~1.4 KB a record as JSON: the
# shape the ingest targets were set for), or "demo", the demo's whole prompts and
# answers, as long as their tokens, streams as chunks (~7.4 KB a record).
RECORD_SHAPES = ("gateway", "demo")
GATEWAY_TEXT_CHARS = 100  # a payload string's first characters
GATEWAY_LIST_ITEMS = 3  # a payload list's first items (messages, chunks)


def realistic_records(count: int, seed: int, shape: str = "gateway") -> list[dict]:
    """Realistic records (logs.demo: payloads with credentials to redact, errors,
    trace token counts) from the last day, on this dataset's busiest keys, in
    one of ``RECORD_SHAPES``."""
    if shape not in RECORD_SHAPES:
        raise ValueError(f"shape must be one of {RECORD_SHAPES}")
    from django.db.models import Sum

    from accounts.models import ApiKey
    from logs.demo import iter_calls
    from logs.models import HourlyCallRollup

    busiest = list(
        HourlyCallRollup.objects.values("api_key_id")
        .annotate(n=Sum("calls"))
        .order_by("-n", "api_key_id")
        .values_list("api_key_id", "n")[:50]
    )
    keys = dict(ApiKey.objects.filter(pk__in=[k for k, _ in busiest]).values_list("pk", "prefix"))
    rng = random.Random(seed)
    prefixes = rng.choices([keys[k] for k, _ in busiest], weights=[n for _, n in busiest], k=count)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    stamp = f"{int(time.time())}{seed}"
    records = []
    for index, record in enumerate(iter_calls(seed, count, now, days=1)):
        record["api_key"] = prefixes[index]
        record.pop("group", None)  # the key's own group
        record["request_id"] = f"bench-{stamp}-{index:07d}"
        if shape == "gateway":
            for part in ("request", "response", "error"):
                if record.get(part) is not None:
                    record[part] = _opening(record[part])
        records.append(record)
    return records


def _opening(value):
    """A payload cut to its opening: strings to their first characters, lists
    to their first items (credentials, being short, are kept whole)."""
    if isinstance(value, str):
        return value[:GATEWAY_TEXT_CHARS]
    if isinstance(value, list):
        return [_opening(item) for item in value[:GATEWAY_LIST_ITEMS]]
    if isinstance(value, dict):
        return {name: _opening(item) for name, item in value.items()}
    return value


@contextlib.contextmanager
def removed_afterwards():
    """Remove the calls a block writes (and what they changed) once it is done."""
    from django.db import connection
    from django.db.models import Max, Min

    from accounts.models import ApiKey
    from logs.models import AccountModel, CallPayload, CallRecord
    from logs.rollups.rebuild import rebuild_rollups

    last_id = CallRecord.objects.aggregate(m=Max("id"))["m"] or 0
    last_model = AccountModel.objects.aggregate(m=Max("id"))["m"] or 0
    last_used = dict(ApiKey.objects.values_list("pk", "last_used_at"))
    try:
        yield
    finally:
        span = CallRecord.objects.filter(id__gt=last_id).aggregate(
            first=Min("created_at"), last=Max("created_at")
        )
        CallPayload.objects.filter(call_id__gt=last_id).delete()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM logs_callrecord WHERE id > %s", [last_id])
        AccountModel.objects.filter(id__gt=last_model).delete()
        for pk, moment in last_used.items():
            ApiKey.objects.filter(pk=pk).exclude(last_used_at=moment).update(last_used_at=moment)
        if span["first"] is not None:
            rebuild_rollups(start=span["first"], end=span["last"] + timedelta(hours=1))
        # The deleted rows would otherwise linger as dead tuples in the next run's
        # scans (the benchmark's server runs without autovacuum): the calls, every
        # rollup level, and the two queues ingest empties as it goes (pending
        # deltas, request-id claims), whose dead rows every exact read would scan.
        tables = [
            "logs_callrecord",
            "logs_callpayload",
            "logs_accountmodel",
            "logs_pendingrollupdelta",
            "logs_requestidclaim",
            *(level._meta.db_table for level in rollup_levels()),
        ]
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")


def rollup_levels() -> tuple:
    """Every rollup level, in the order folding writes them."""
    from logs.models import COARSE_ROLLUP_LEVELS, FINE_ROLLUP_LEVELS, HourlyCallRollup

    return (HourlyCallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS)


def rollup_level_rows() -> dict[str, int]:
    """Rows of each rollup level (and of the pending deltas), by model name."""
    from logs.models import PendingRollupDelta

    return {
        level.__name__: level.objects.count() for level in (*rollup_levels(), PendingRollupDelta)
    }


def payload_columns() -> list[str]:
    from logs.models import CallPayload

    return [f.column for f in CallPayload._meta.concrete_fields]


# --- output --------------------------------------------------------------------------------------


def _reference_workload() -> int:
    """Plain Python of the kinds this code runs per record and per bucket: dict
    lookups and stores, small objects, string formatting, integer arithmetic."""
    seen: dict[str, list[int]] = {}
    total = 0
    for number in range(60_000):
        name = f"model-{number % 97}"
        slot = seen.get(name)
        if slot is None:
            seen[name] = slot = [0, 0]
        slot[0] += number
        slot[1] += 1
        total += len(f"{number:,}") + (number * 7) % 13
    return total + sum(count for _, count in seen.values())


def python_reference_ms(runs: int = 5) -> float:
    """The best of ``runs`` timings of a fixed pure-Python workload, in ms.

    Machines of one kind here differ in how fast they run Python (2-3x between
    CPU models), and one machine from hour to hour (1.8x seen; see
    docs/benchmarks.md): a run's figures for Python-bound cases (ingest CPU,
    the stats pages) compare across runs by this ratio.
    """
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        _reference_workload()
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 1)


def machine_facts() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "django": __import__("django").get_version(),
        "platform": platform.platform(),
        "python_reference_ms": python_reference_ms(),
    }


def git_revision() -> str:
    """The commit measured, with "+changes" when the working tree differs from it
    (or the contents of a REVISION file, for a copy made with ``git archive``)."""
    revision_file = ROOT / "REVISION"
    if revision_file.exists():
        return revision_file.read_text().strip()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}+changes" if dirty else head or "unknown"


def _load(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def render_markdown(meta: dict, results: list[Result]) -> str:
    lines = [
        f"Machine: {meta.get('cpus')} CPUs ({meta.get('cpu_model')}), {meta.get('ram_gb')} GB RAM; "
        f"{meta.get('postgresql', '').split(' on ')[0]}; Python {meta.get('python')}, "
        f"Django {meta.get('django')}; Python reference {meta.get('python_reference_ms')} ms "
        f"at the start, {meta.get('python_reference_ms_end', '?')} ms at the end "
        "(bench/run.py python_reference_ms). "
        f"Code: {meta.get('code', '?')}"
        + (
            f" (at the end: {meta['code_end']})"
            if meta.get("code_end") and meta.get("code_end") != meta.get("code")
            else ""
        )
        + ".",
        f"Data: {meta.get('calls', 0):,} calls, {meta.get('payloads', 0):,} payloads, "
        f"{meta.get('rollup_rows', 0):,} rollup rows, {meta.get('accounts')} accounts, "
        f"{meta.get('keys')} keys, {meta.get('oldest_call')} to {meta.get('newest_call')}, "
        f"database {meta.get('database_size')}.",
        *(
            [
                "Rollup rows per level: "
                + ", ".join(f"{name} {rows:,}" for name, rows in meta["rollup_level_rows"].items())
                + "."
            ]
            if meta.get("rollup_level_rows")
            else []
        ),
        f"Runs: warm-up + {meta.get('repeat')} per case (stock admin: warm-up + "
        f"{meta.get('stock_repeat')}, once when over {STOCK_GUARD_S} s). Load average (1, 5, "
        f"15 min) at start {_load(meta.get('load_average_start'))}, "
        f"at end {_load(meta.get('load_average_end'))}.",
        "",
    ]
    compare = "compared_with" in meta
    header = ["case", "runs", "median ms", "p95 ms", "value", "target", "result"]
    header += ["stock median ms", "stock ÷ ours"]
    if compare:
        header.append(f"÷ {meta['compared_with'].get('calls') or 0:,} calls")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for r in results:
        if r.error:
            verdict = "ERROR"
        elif r.passed is None:
            verdict = "—"
        else:
            verdict = "pass" if r.passed else "**MISS**"
        stock = _ms(r.stock_median_ms)
        if r.stock_note and (r.stock_median_ms is None or "once" in r.stock_note):
            stock = f"{stock} ({r.stock_note})".strip()
        ratio = f"{r.ratio:.1f}x" if r.ratio else ""
        value = r.value or r.note if not r.error else r.error
        cells = [
            r.case,
            str(r.runs or ""),
            _ms(r.median_ms),
            _ms(r.p95_ms),
            value.replace("|", "/"),
            r.target,
            verdict,
            stock,
            ratio,
        ]
        if compare:
            cells.append(
                f"{r.median_ms / r.baseline_median_ms:.2f}x"
                if r.baseline_median_ms and r.median_ms
                else ""
            )
        lines.append("| " + " | ".join(cells) + " |")
    notes = [r for r in results if r.note and r.value]
    if notes:
        lines.append("")
        for r in notes:
            lines.append(f"- {r.case}: {r.note}")
    return "\n".join(lines)


def render_file(path: str, compare: str | None) -> int:
    data = json.loads(Path(path).read_text())
    meta = data["meta"]
    baseline = {}
    if compare:
        other = json.loads(Path(compare).read_text())
        baseline = {r["case"]: r["median_ms"] for r in other["results"] if r.get("median_ms")}
        meta["compared_with"] = {"file": compare, "calls": other["meta"].get("calls")}
    results = []
    for row in data["results"]:
        result = Result(**row)
        if result.section in ("admin", "portal") and result.case in baseline:
            result.baseline_median_ms = baseline[result.case]
            if result.median_ms is not None and not result.error:
                result.target = f"≤ {LIST_TARGET_MS} ms, ≤ {SCALE_TARGET}x 100k"
                result.passed = (
                    result.median_ms <= LIST_TARGET_MS
                    and result.median_ms / result.baseline_median_ms <= SCALE_TARGET
                )
        results.append(result)
    print(render_markdown(meta, results))
    return 0


# --- child processes (exports) ------------------------------------------------------------------


def rss_mb(field_name: str = "VmRSS") -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_child(kind: str) -> int:
    from django.contrib.auth import get_user_model
    from django.test import Client

    spec = json.loads(os.environ["BENCH_CHILD_SPEC"])
    client = Client()
    query = spec["query"]
    if kind == "api-export":
        url = "/api/v1/calls/export/" + ("?" + urlencode(query) if query else "")
        request = {"path": url, "HTTP_AUTHORIZATION": f"Bearer {spec['token']}"}
        method = "get"
    else:
        client.force_login(get_user_model().objects.get(username=spec["username"]))
        if kind == "admin-export":
            url = "/admin/logs/callrecord/export/" + ("?" + urlencode(query) if query else "")
            request = {"path": url}
            method = "get"
        elif kind == "stock-export":
            url = "/stockexport/logs/callrecord/export/" + ("?" + urlencode(query) if query else "")
            request = {"path": url, "data": stock_export_form_data()}
            method = "post"
        else:
            raise SystemExit(f"unknown child {kind}")
    baseline = rss_mb()
    began = time.perf_counter()
    first_byte = None
    size = newlines = 0
    last = b""
    response = getattr(client, method)(**request)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    with open(os.devnull, "wb") as sink:
        chunks = response.streaming_content if response.streaming else [response.content]
        for chunk in chunks:
            if first_byte is None:
                first_byte = time.perf_counter() - began
            sink.write(chunk)
            size += len(chunk)
            newlines += chunk.count(b"\n")
            last = chunk or last
    seconds = time.perf_counter() - began
    # Our exports close with "# end of export: N calls" (logs.read.export); the stock one does not.
    closing = last.rstrip(b"\r\n").rsplit(b"\n", 1)[-1].startswith(b"# end of export:")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "url": url,
                "rows": max(newlines - 1 - closing, 0),
                "bytes": size,
                "seconds": seconds,
                "first_byte_s": first_byte or seconds,
                "peak_mb": peak,
                "peak_hwm_mb": rss_mb("VmHWM"),
                "baseline_mb": baseline,
            }
        )
    )
    return 0


def stock_export_form_data() -> dict:
    """What a person submits on django-import-export's export form: CSV, every field."""
    from django.test import RequestFactory

    from bench.stock_admin import stock_export_site
    from logs.models import CallRecord

    model_admin = stock_export_site._registry[CallRecord]
    request = RequestFactory().get("/")
    formats = model_admin.get_export_formats()
    csv_index = next(i for i, f in enumerate(formats) if f().get_title() == "csv")
    form = model_admin.get_export_form_class()(
        formats, model_admin.get_export_resource_classes(request)
    )
    data = {"format": str(csv_index), "resource": "0"}
    for name, form_field in form.fields.items():
        if getattr(form_field, "is_selectable_field", False):
            data[name] = "on"
    return data


# --- main ----------------------------------------------------------------------------------------


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=0, help="timed runs per case (15; 3 quick)")
    parser.add_argument("--stock-repeat", type=int, default=0, help="for the stock admin (5; 1)")
    parser.add_argument("--quick", action="store_true", help="CI: fewer runs, small sizes")
    parser.add_argument(
        "--no-stock", action="store_true", help="skip the stock admin (for iterating on ours)"
    )
    parser.add_argument("--json-out", help="write the results as JSON here")
    parser.add_argument("--compare", help="JSON of a run at 100k calls: list pages vs it")
    parser.add_argument(
        "--only", help="comma-separated: list,search,totals (or stats),API,exports,ingest,rollups,…"
    )
    parser.add_argument("--export-rows", type=int, default=0, help="streamed export (5,000,000)")
    parser.add_argument(
        "--memory-export-rows", default="", help="in-memory exports, comma-separated sizes"
    )
    parser.add_argument("--export-timeout", type=int, default=3600, help="seconds per export")
    parser.add_argument("--ingest-batches", type=int, default=0, help="batches of 1000 (30)")
    parser.add_argument(
        "--records",
        choices=RECORD_SHAPES,
        default="gateway",
        help="what ingest and import_calls send: gateway (~1.4 KB) or demo (~7.4 KB) records",
    )
    parser.add_argument("--import-records", type=int, default=0, help="import_calls (100,000)")
    parser.add_argument("--prune-rows", type=int, default=0, help="calls in the month (1,000,000)")
    parser.add_argument(
        "--render", help="print the table of a --json-out file (with --compare) and stop"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render:
        return render_file(args.render, args.compare)
    if not args.database_url:
        parser.error("--database-url is required")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgres:// URL")
    setup_django(args.database_url)
    if args.child:
        return run_child(args.child)
    return Suite(args).run()


if __name__ == "__main__":
    sys.exit(main())
