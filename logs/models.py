"""What a call record is.

Reads go through ``logs.read`` (scoping, filters, totals, stats); writes go
through ``logs.ingest`` (validation, redaction, storage) and ``logs.rollups``. Nothing but ``CallPayload``
refers to a call, so the calls table can be partitioned by month on
PostgreSQL without foreign keys into it getting in the way.
"""

import bisect
from datetime import datetime
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core import exceptions
from django.db import models
from django.db.models import Q

from accounts.models import Account, ApiKey, Group
from logs.periods import DAY, HOUR, MONTH, QUARTER_HOUR, Grid


class CallType(models.TextChoices):
    CHAT = "chat", "Chat"
    COMPLETION = "completion", "Completion"
    EMBEDDING = "embedding", "Embeddings"
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"
    MODERATION = "moderation", "Moderation"
    RERANK = "rerank", "Rerank"
    OTHER = "other", "Other"


class StatusClass(models.TextChoices):
    SUCCESS = "success", "Success (1xx-3xx)"
    CLIENT_ERROR = "client_error", "Client error (4xx)"
    SERVER_ERROR = "server_error", "Server error (5xx)"

    @classmethod
    def q(cls, value: str) -> Q:
        """The condition on ``status_code`` that a status class stands for."""
        if value == cls.SUCCESS:
            return Q(status_code__lt=400)
        if value == cls.CLIENT_ERROR:
            return Q(status_code__gte=400, status_code__lt=500)
        if value == cls.SERVER_ERROR:
            return Q(status_code__gte=500)
        raise ValueError(f"unknown status class {value!r}")

    @classmethod
    def of(cls, status_code: int) -> "StatusClass":
        if status_code >= 500:
            return cls.SERVER_ERROR
        if status_code >= 400:
            return cls.CLIENT_ERROR
        return cls.SUCCESS


# Upper edges of the duration histogram (ms); the last bucket is open-ended.
# Rollups keep one count per bucket, so p50/p95 come from rollups as from raw calls.
DURATION_BUCKET_EDGES_MS: tuple[int, ...] = (
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000,
    7_500, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000,
)  # fmt: skip
HISTOGRAM_FIELDS = tuple(f"h{index:02d}" for index in range(len(DURATION_BUCKET_EDGES_MS) + 1))


def duration_bucket(duration_ms: int) -> int:
    """Index of the histogram bucket a duration falls in."""
    return bisect.bisect_right(DURATION_BUCKET_EDGES_MS, duration_ms)


USAGE_DECIMAL_PLACES = 6
COST_DECIMAL_PLACES = 8


def to_units(value: Decimal, places: int) -> int:
    """A decimal with at most ``places`` places as the integer a FixedDecimalField stores."""
    return int(value.scaleb(places))


def from_units(units: int, places: int) -> Decimal:
    """The Decimal a FixedDecimalField reads from its stored integer (exponent ``-places``)."""
    return Decimal(units).scaleb(-places)


class FixedDecimalField(models.BigIntegerField):
    """A ``Decimal`` with a fixed number of places, stored as a scaled integer.

    SQLite keeps DECIMAL columns as floating point, so its SUM drifts; integer
    SUM is exact on every database (and faster than NUMERIC on PostgreSQL).
    Python code only ever sees ``Decimal``: values, filters and aggregates
    (``Sum`` keeps this field as its output field) are converted both ways.
    """

    def __init__(self, *args, decimal_places: int, **kwargs):
        self.decimal_places = decimal_places
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["decimal_places"] = self.decimal_places
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return from_units(value, self.decimal_places)

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        try:
            return Decimal(str(value))
        except ArithmeticError as exc:
            raise exceptions.ValidationError(f"{value!r} is not a decimal number") from exc

    def get_prep_value(self, value):
        if value is None:
            return None
        scaled = self.to_python(value).scaleb(self.decimal_places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.decimal_places} decimal places")
        return int(scaled)

    def formfield(self, **kwargs):
        return forms.DecimalField(decimal_places=self.decimal_places, **kwargs)

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return "" if value is None else str(value)


# The columns the call list's filters read besides the time and the account.
FILTER_COLUMNS = ["api_key", "group", "model", "call_type", "status_code"]


class CallRecord(models.Model):
    """One API call that passed through the gateway. Narrow on purpose: list
    pages and aggregates read only this table; bulky parts live in CallPayload.

    On PostgreSQL the table is partitioned by month of ``created_at``
    (migration 0002, ``logs.retention.partitions``): there the primary key is
    (id, created_at) and request ids are unique per (request_id, created_at),
    with the ingest service guarding request-id uniqueness across months.
    """

    request_id = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(help_text="When the gateway received the request (UTC).")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="+")
    group = models.ForeignKey(
        Group, on_delete=models.PROTECT, related_name="+", help_text="The group at call time."
    )
    call_type = models.CharField(max_length=16, choices=CallType.choices)
    model = models.CharField(max_length=128)
    endpoint = models.CharField(max_length=255, blank=True)
    is_stream = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField()
    error_reason = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField()
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField()
    output_tokens = models.PositiveIntegerField()
    total_tokens = models.PositiveBigIntegerField()
    usage = FixedDecimalField(
        decimal_places=USAGE_DECIMAL_PLACES, help_text="Quota/credits consumed."
    )
    cost = FixedDecimalField(decimal_places=COST_DECIMAL_PLACES, help_text="Cost in USD.")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    upstream = models.CharField(
        max_length=128, blank=True, help_text="Internal: the upstream channel that served it."
    )
    # SHA-256 of the canonical, redacted record: a replay of the same request_id
    # is accepted only when this matches.
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "call"
        permissions = [("ingest_callrecord", "Can ingest call records through the API")]
        indexes = [
            # The list's two orders, newest first overall and per account, carry
            # every column a filter reads (INCLUDE, PostgreSQL only): a filtered
            # page, however deep, is found by an index-only scan, and only its
            # 100 rows are read from the table (CallChangeList).
            models.Index(
                fields=["-created_at", "-id"],
                include=[*FILTER_COLUMNS, "account"],
                name="call_newest_cover_idx",
            ),
            models.Index(
                fields=["account", "-created_at", "-id"],
                include=FILTER_COLUMNS,
                name="call_account_cover_idx",
            ),
            # One filter over every account: its own index in the list's order,
            # the id included, so a deep page walks only that filter's entries
            # (index-only) instead of the newest-first index's every entry
            # (group page 100 at 10 M calls: 1.7 ms instead of ~20).
            models.Index(fields=["api_key", "-created_at", "-id"], name="call_key_page_idx"),
            models.Index(fields=["model", "-created_at", "-id"], name="call_model_page_idx"),
            models.Index(fields=["group", "-created_at", "-id"], name="call_group_page_idx"),
            models.Index(fields=["call_type", "-created_at", "-id"], name="call_type_page_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_tokens=models.F("input_tokens") + models.F("output_tokens")),
                name="call_total_tokens_is_sum",
            ),
        ]

    def __str__(self) -> str:
        return self.request_id

    @property
    def status_class(self) -> StatusClass:
        return StatusClass.of(self.status_code)

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def output_tokens_per_second(self) -> float | None:
        """Generation speed: output tokens over the time after the first token
        (or the whole duration when the first-token time is unknown)."""
        generation_ms = self.duration_ms - (self.ttft_ms or 0)
        if self.output_tokens <= 0 or generation_ms <= 0:
            return None
        return self.output_tokens * 1000 / generation_ms


class CallPayload(models.Model):
    """The bulky, redacted parts of a call, each stored as JSON text capped at
    ``USAGELOGS_PAYLOAD_MAX_BYTES``. When a part was cut, its ``*_truncated``
    flag is set and ``*_original_bytes`` keeps the size it had."""

    PARTS = ("request_params", "request_headers", "request_body", "response", "error_detail")

    # No database-level foreign key: on PostgreSQL the calls table is
    # partitioned by month and its primary key is (id, created_at), which a
    # foreign key cannot reference. The ORM still cascades deletes.
    call = models.OneToOneField(
        CallRecord,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="payload",
        db_constraint=False,
    )
    # The call's time, so payloads are partitioned (and pruned) with their calls.
    created_at = models.DateTimeField()
    request_params = models.TextField(blank=True)
    request_params_truncated = models.BooleanField(default=False)
    request_params_original_bytes = models.PositiveIntegerField(null=True, blank=True)
    request_headers = models.TextField(blank=True)
    request_headers_truncated = models.BooleanField(default=False)
    request_headers_original_bytes = models.PositiveIntegerField(null=True, blank=True)
    request_body = models.TextField(blank=True)
    request_body_truncated = models.BooleanField(default=False)
    request_body_original_bytes = models.PositiveIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    response_original_bytes = models.PositiveIntegerField(null=True, blank=True)
    error_detail = models.TextField(blank=True)
    error_detail_truncated = models.BooleanField(default=False)
    error_detail_original_bytes = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "call payload"

    def __str__(self) -> str:
        return f"payload of call {self.call_id}"


class AccountModel(models.Model):
    """Which models an account has called, kept by ingest.

    Filter choices and autocomplete read this small table instead of running
    SELECT DISTINCT over millions of calls.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=128)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "model"], name="account_model_uniq")
        ]
        indexes = [models.Index(fields=["model"], name="account_model_model_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.model}"


class AccountGroup(models.Model):
    """Which pricing groups an account's calls were made in, kept by ingest.

    A key can move to another group; its old calls keep the group they were
    made in, and the owner must still be able to filter on it.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "group"], name="account_group_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.group_id}"


class AccessRecord(models.Model):
    """Reading customers' prompts is itself recorded.

    One row per opening of a call's detail (with its payload) and per export,
    on any surface. Written by ``logs.audit.record_access``; never edited.
    ``call_id`` is a plain number, not a foreign key: only CallPayload refers to
    calls, so old calls can be pruned (or partitions dropped) while the record
    of who read them stays.
    """

    class Action(models.TextChoices):
        VIEW_CALL = "view_call", "Viewed a call"
        EXPORT = "export", "Exported calls"

    class Surface(models.TextChoices):
        ADMIN = "admin", "Staff admin"
        PORTAL = "portal", "Portal"
        API = "api", "REST API"

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Kept if the user is deleted.")
    action = models.CharField(max_length=16, choices=Action.choices)
    surface = models.CharField(max_length=16, choices=Surface.choices)
    call_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"], name="access_user_at_idx")]

    def __str__(self) -> str:
        return f"{self.username} {self.get_action_display().lower()} at {self.at:%Y-%m-%d %H:%M}"


class PruneRun(models.Model):
    """One run of ``prune_calls``: no call received before ``cutoff`` is kept.

    Rollups outlive the raw calls, so the rollups alone cannot say which calls
    still exist. The call list counts (and pages through) calls from rollups;
    it reads the latest cutoff here so it never promises pages of pruned calls.
    Written by ``logs.retention.prune.prune_calls`` once every call before the cutoff
    is gone (a run that fails halfway leaves no row; running it again does).
    """

    cutoff = models.DateTimeField(db_index=True)
    ran_at = models.DateTimeField()
    partitions_dropped = models.JSONField(default=list, blank=True)
    calls_deleted = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "prune run"
        ordering = ["-ran_at", "-id"]

    def __str__(self) -> str:
        return f"calls before {self.cutoff:%Y-%m-%d %H:%M} removed at {self.ran_at:%Y-%m-%d %H:%M}"


class RollupMeasures(models.Model):
    """The sums a rollup row keeps for the calls it stands for."""

    calls = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    usage = FixedDecimalField(decimal_places=USAGE_DECIMAL_PLACES, default=0)
    cost = FixedDecimalField(decimal_places=COST_DECIMAL_PLACES, default=0)
    duration_ms_sum = models.PositiveBigIntegerField(default=0)
    # Time spent generating (duration minus time to first token) by calls with output.
    output_ms_sum = models.PositiveBigIntegerField(default=0)
    # Duration histogram: h00 counts calls under DURATION_BUCKET_EDGES_MS[0], …
    h00 = models.PositiveBigIntegerField(default=0)
    h01 = models.PositiveBigIntegerField(default=0)
    h02 = models.PositiveBigIntegerField(default=0)
    h03 = models.PositiveBigIntegerField(default=0)
    h04 = models.PositiveBigIntegerField(default=0)
    h05 = models.PositiveBigIntegerField(default=0)
    h06 = models.PositiveBigIntegerField(default=0)
    h07 = models.PositiveBigIntegerField(default=0)
    h08 = models.PositiveBigIntegerField(default=0)
    h09 = models.PositiveBigIntegerField(default=0)
    h10 = models.PositiveBigIntegerField(default=0)
    h11 = models.PositiveBigIntegerField(default=0)
    h12 = models.PositiveBigIntegerField(default=0)
    h13 = models.PositiveBigIntegerField(default=0)
    h14 = models.PositiveBigIntegerField(default=0)
    h15 = models.PositiveBigIntegerField(default=0)
    h16 = models.PositiveBigIntegerField(default=0)
    h17 = models.PositiveBigIntegerField(default=0)
    h18 = models.PositiveBigIntegerField(default=0)

    MEASURES: tuple[str, ...] = (
        "calls",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "usage",
        "cost",
        "duration_ms_sum",
        "output_ms_sum",
        *HISTOGRAM_FIELDS,
    )

    # The period column (first of DIMENSIONS) and the UTC grid of its periods
    # (``logs.periods``). Set by each level.
    PERIOD_FIELD: str
    GRID: Grid
    DIMENSIONS: tuple[str, ...]

    class Meta:
        abstract = True

    @classmethod
    def period_start(cls, moment: datetime) -> datetime:
        return cls.GRID.floor(moment)

    @classmethod
    def next_period(cls, start: datetime) -> datetime:
        return cls.GRID.next(start)

    @classmethod
    def has_dimension(cls, name: str) -> bool:
        return name in cls.DIMENSIONS


class RollupRow(RollupMeasures):
    """What every full rollup level stores: the dimensions a call is filtered by
    and the sums a page shows. The levels differ only in the period a row covers."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="+")
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)
    status_class = models.CharField(max_length=16, choices=StatusClass.choices)

    class Meta:
        abstract = True


class CallRollup(RollupRow):
    """Hourly totals per account x key x group x model x call type x status class.

    Kept exact by the ingest service in the same transaction as the calls
    (``logs.rollups``), rebuilt from raw calls by ``rebuild_rollups``. Totals
    and stats over days of data read these few rows instead of millions of calls.
    """

    hour = models.DateTimeField(help_text="Start of the hour (UTC).")

    PERIOD_FIELD = "hour"
    GRID = HOUR
    DIMENSIONS = ("hour", "account", "api_key", "group", "model", "call_type", "status_class")

    class Meta:
        verbose_name = "hourly rollup"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "hour",
                    "account",
                    "api_key",
                    "group",
                    "model",
                    "call_type",
                    "status_class",
                ],
                name="rollup_dimensions_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["account", "hour"], name="rollup_account_hour_idx"),
            models.Index(fields=["hour"], name="rollup_hour_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model} ({self.calls} calls)"


class DailyCallRollup(RollupRow):
    """The hourly rollups summed per UTC day.

    Kept by the ingest service in the same transaction as the hourly rows (the
    same deltas, regrouped), so a sum over whole days reads ~24x fewer rows.
    Always equal to the hourly rows of the day grouped; ``rebuild_rollups``
    recomputes it from them.
    """

    day = models.DateTimeField(help_text="Start of the day (UTC).")

    PERIOD_FIELD = "day"
    GRID = DAY
    DIMENSIONS = ("day", "account", "api_key", "group", "model", "call_type", "status_class")

    class Meta:
        verbose_name = "daily rollup"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "account", "api_key", "group", "model", "call_type", "status_class"],
                name="daily_rollup_dimensions_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["account", "day"], name="daily_rollup_account_day_idx"),
            models.Index(fields=["day"], name="daily_rollup_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.model} ({self.calls} calls)"


class MonthlyCallRollup(RollupRow):
    """The hourly rollups summed per UTC calendar month: totals over months of
    data (an unfiltered list, a year of stats) read a few thousand rows."""

    month = models.DateTimeField(help_text="Start of the month (UTC).")

    PERIOD_FIELD = "month"
    GRID = MONTH
    DIMENSIONS = ("month", "account", "api_key", "group", "model", "call_type", "status_class")

    class Meta:
        verbose_name = "monthly rollup"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "month",
                    "account",
                    "api_key",
                    "group",
                    "model",
                    "call_type",
                    "status_class",
                ],
                name="monthly_rollup_dimensions_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["account", "month"], name="monthly_rollup_account_idx"),
            models.Index(fields=["month"], name="monthly_rollup_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.model} ({self.calls} calls)"


# Coarsest first: how a time range is cut into whole periods (logs.read.planner).
ROLLUP_LEVELS: tuple[type[RollupRow], ...] = (MonthlyCallRollup, DailyCallRollup, CallRollup)


# --- calls not folded into the rollups yet ---------------------------------------------


class PendingRollupDelta(RollupMeasures):
    """What a batch of ingested calls adds to the rollups, until it is folded in.

    Ingest appends these rows in the transaction that stores the calls (no
    conflicts: concurrent batches never wait on each other's rollup rows), one
    row per UTC quarter hour and combination of every dimension in the batch.
    Shortly after, ``logs.rollups.fold.fold_pending_rollups`` moves them into every
    rollup level in one transaction (a folder that dies midway leaves them
    here, whole). Every read that uses rollups adds what is still here, so
    totals and stats are exact at every moment, folded or not.
    """

    quarter = models.DateTimeField(help_text="Start of the quarter hour (UTC).")
    # No foreign key constraints or indexes: ingest appends, the folder empties.
    account = models.ForeignKey(
        Account, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    group = models.ForeignKey(
        Group, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)
    status_class = models.CharField(max_length=16, choices=StatusClass.choices)
    # The newest call's time: the folder moves its key's last_used_at forward.
    latest_at = models.DateTimeField()
    # When ingest wrote it: how far behind folding is (FoldStatus).
    added_at = models.DateTimeField()

    PERIOD_FIELD = "quarter"
    GRID = QUARTER_HOUR
    DIMENSIONS = ("quarter", "account", "api_key", "group", "model", "call_type", "status_class")

    class Meta:
        verbose_name = "pending rollup delta"

    def __str__(self) -> str:
        return f"{self.quarter:%Y-%m-%d %H:%M} {self.model} (+{self.calls} calls, not folded)"


class FoldStatus(models.Model):
    """The last fold of pending deltas into the rollups (one row).

    With how many deltas wait (``PendingRollupDelta``), it tells support staff
    how far behind folding is: reads stay exact either way, only slower.
    """

    last_fold_at = models.DateTimeField(null=True, blank=True)
    last_fold_deltas = models.PositiveBigIntegerField(default=0)
    last_fold_ms = models.PositiveIntegerField(default=0)
    folds = models.PositiveBigIntegerField(default=0)
    deltas_folded = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "rollup folding"
        verbose_name_plural = "rollup folding"

    def __str__(self) -> str:
        return "rollup folding"


# --- daily summaries ----------------------------------------------------------------
#
# The full levels keep every dimension a call is filtered by, so a day of the
# daily level holds thousands of rows (every key x model x call type x status
# class seen that day): thirty days of it are ~100k rows at ten million calls,
# too many to sum in the 100 ms a stats page has. Most questions need far fewer
# dimensions: the stats of all calls per day or per model, one account's, the
# busiest keys. Each summary below is the daily level with all but a few
# dimensions summed away (and errors kept as a count), so such a question reads
# tens or hundreds of rows a day. Selectors pick the smallest level that has
# every dimension a question filters or groups by; the rest read the full level.


class SummaryRollup(RollupMeasures):
    """The calls of each period of its grid summed over every dimension but the
    few a subclass keeps."""

    # Calls with an error status (4xx, 5xx): the summaries keep no status class.
    errors = models.PositiveBigIntegerField(default=0)

    MEASURES = (*RollupMeasures.MEASURES, "errors")
    # How its period is shown.
    PERIOD_FORMAT: str

    class Meta:
        abstract = True

    def __str__(self) -> str:
        kept = " ".join(str(getattr(self, name)) for name in self.DIMENSIONS[1:])
        period = getattr(self, self.PERIOD_FIELD)
        return f"{period:{self.PERIOD_FORMAT}} {kept} ({self.calls} calls)"


class DailySummaryRollup(SummaryRollup):
    day = models.DateTimeField(help_text="Start of the day (UTC).")

    PERIOD_FIELD = "day"
    PERIOD_FORMAT = "%Y-%m-%d"
    GRID = DAY

    class Meta:
        abstract = True


class DailyModelRollup(DailySummaryRollup):
    """Per UTC day and model, over every account: the staff's stats and totals.
    (A model serves one or two call types, so keeping the type costs few rows.)"""

    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)

    DIMENSIONS = ("day", "model", "call_type")

    class Meta:
        verbose_name = "daily per-model summary"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "model", "call_type"], name="daily_model_summary_uniq"
            )
        ]


class DailyAccountModelRollup(DailySummaryRollup):
    """Per UTC day, account and model: one account's stats and totals."""

    # No index of its own: (account, day) below serves lookups by account.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)

    DIMENSIONS = ("day", "account", "model", "call_type")

    class Meta:
        verbose_name = "daily per-account-and-model summary"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "account", "model", "call_type"],
                name="daily_account_model_summary_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["account", "day"], name="daily_acct_model_acct_day_idx"),
        ]


class DailyKeyRollup(DailySummaryRollup):
    """Per UTC day, account, key and group: the busiest keys, a key name's or a
    group's totals."""

    # Fewer indexes, cheaper upkeep on every ingest: (account, day) below serves
    # lookups by account; keys and groups are deleted rarely enough that the
    # check for their rows may scan this small table.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Calls are made in their key's group unless they name another: few extra rows.
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+", db_index=False)

    DIMENSIONS = ("day", "account", "api_key", "group")

    class Meta:
        verbose_name = "daily per-key summary"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "account", "api_key", "group"], name="daily_key_summary_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["account", "day"], name="daily_key_account_day_idx"),
        ]


# --- hourly summaries ---------------------------------------------------------------
#
# The same idea one level down, for charts per hour: thirty days of the hourly
# level are ~930k rows at ten million calls (a 30-day per-hour chart took half a
# second, per model three), of these ~15k per model and ~230k per account and
# model. Only the two summaries the stats pages' hour charts need are kept (each
# costs every ingest batch an upsert); key and group questions per hour read the
# full hourly level.


class HourlySummaryRollup(SummaryRollup):
    hour = models.DateTimeField(help_text="Start of the hour (UTC).")

    PERIOD_FIELD = "hour"
    PERIOD_FORMAT = "%Y-%m-%d %H:00"
    GRID = HOUR

    class Meta:
        abstract = True


class HourlyModelRollup(HourlySummaryRollup):
    """Per UTC hour and model, over every account: the staff's charts per hour."""

    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)

    DIMENSIONS = ("hour", "model", "call_type")

    class Meta:
        verbose_name = "hourly per-model summary"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "model", "call_type"], name="hourly_model_summary_uniq"
            )
        ]


class HourlyAccountModelRollup(HourlySummaryRollup):
    """Per UTC hour, account and model: one account's charts per hour."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)

    DIMENSIONS = ("hour", "account", "model", "call_type")

    class Meta:
        verbose_name = "hourly per-account-and-model summary"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "account", "model", "call_type"],
                name="hourly_account_model_summary_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["account", "hour"], name="hourly_acct_model_hour_idx"),
        ]


# --- quarter-hour summaries ---------------------------------------------------------
#
# Where a zone's clock is not a whole number of hours from UTC (India +05:30,
# Nepal +05:45, South Australia, Newfoundland), its hours and days begin inside
# a UTC hour, so an hourly row cannot say which of two local hours (or days)
# its calls belong to. Quarter hours fit every zone in use. Only the two
# summaries the stats pages need are kept at this grain (each is about four
# times its hourly twin); questions they cannot answer read raw calls for the
# hours that are cut in two (``logs.read.planner``).


class QuarterHourSummaryRollup(SummaryRollup):
    quarter = models.DateTimeField(help_text="Start of the quarter hour (UTC).")

    PERIOD_FIELD = "quarter"
    PERIOD_FORMAT = "%Y-%m-%d %H:%M"
    GRID = QUARTER_HOUR

    class Meta:
        abstract = True


class QuarterHourModelRollup(QuarterHourSummaryRollup):
    """Per UTC quarter hour and model, over every account."""

    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)

    DIMENSIONS = ("quarter", "model", "call_type")

    class Meta:
        verbose_name = "quarter-hour per-model summary"
        constraints = [
            models.UniqueConstraint(
                fields=["quarter", "model", "call_type"], name="quarter_model_summary_uniq"
            )
        ]


class QuarterHourAccountModelRollup(QuarterHourSummaryRollup):
    """Per UTC quarter hour, account and model."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    model = models.CharField(max_length=128)
    call_type = models.CharField(max_length=16, choices=CallType.choices)

    DIMENSIONS = ("quarter", "account", "model", "call_type")

    class Meta:
        verbose_name = "quarter-hour per-account-and-model summary"
        constraints = [
            models.UniqueConstraint(
                fields=["quarter", "account", "model", "call_type"],
                name="quarter_account_model_summary_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["account", "quarter"], name="quarter_acct_model_idx"),
        ]


# Smallest first: the first whose dimensions cover a question answers it (among
# the summaries on the grid the question's periods come from).
SUMMARY_ROLLUP_LEVELS: tuple[type[SummaryRollup], ...] = (
    DailyModelRollup,
    DailyAccountModelRollup,
    DailyKeyRollup,
    HourlyModelRollup,
    HourlyAccountModelRollup,
    QuarterHourModelRollup,
    QuarterHourAccountModelRollup,
)

# The levels on each grid, smallest first (the full level, where a grid has
# one, last): the first whose dimensions cover a question answers it.
LEVELS_BY_GRID: dict[Grid, tuple[type[RollupMeasures], ...]] = {
    MONTH: (MonthlyCallRollup,),
    DAY: (DailyModelRollup, DailyAccountModelRollup, DailyKeyRollup, DailyCallRollup),
    HOUR: (HourlyModelRollup, HourlyAccountModelRollup, CallRollup),
    QUARTER_HOUR: (QuarterHourModelRollup, QuarterHourAccountModelRollup),
}

# Levels too fine to be summed from the hourly rows: kept from each call's
# own time (by ingest, by rebuild_rollups).
FINE_ROLLUP_LEVELS: tuple[type[SummaryRollup], ...] = (
    QuarterHourModelRollup,
    QuarterHourAccountModelRollup,
)

# Every level kept from the hourly rows (by ingest, by rebuild_rollups).
COARSE_ROLLUP_LEVELS: tuple[type[RollupMeasures], ...] = (
    DailyCallRollup,
    MonthlyCallRollup,
    DailyModelRollup,
    DailyAccountModelRollup,
    DailyKeyRollup,
    HourlyModelRollup,
    HourlyAccountModelRollup,
)
