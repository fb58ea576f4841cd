"""What a call is: one narrow row per call (``CallRecord``) and its bulky,
redacted parts (``CallPayload``)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast

from accounts.models import Account, ApiKey, Group
from logs.models.fields import COST_DECIMAL_PLACES, USAGE_DECIMAL_PLACES, FixedDecimalField
from logs.models.tags import HasTag


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
    def of(cls, status_code: int) -> StatusClass:
        if status_code >= 500:
            return cls.SERVER_ERROR
        if status_code >= 400:
            return cls.CLIENT_ERROR
        return cls.SUCCESS


# The columns the call list's filters read besides the time and the account.
FILTER_COLUMNS = ["api_key", "group", "model", "call_type", "status_code"]
# The columns the call list sorts by besides the time (duration, tokens, usage, cost).
SORT_COLUMNS = ["duration_ms", "total_tokens", "usage", "cost"]


class CallRecord(models.Model):
    """One API call that passed through the gateway. Narrow on purpose: list
    pages and aggregates read only this table; bulky parts live in CallPayload.

    Request ids are unique per account: the same id sent by two accounts is
    two calls. Every key of this table and of ``CallPayload`` includes the
    account, so both can be distributed by ``account_id`` (Citus,
    docs/scaling.md) as they are. On PostgreSQL the table is partitioned by
    month of ``created_at`` (migration 0002, ``logs.retention.partitions``),
    so every key includes ``created_at`` too: the primary key is (id,
    created_at, account_id) there (migration 0014; the ORM knows ``id``
    only), and the ingest service guards (account, request id) uniqueness
    across months (``logs.ingest.idempotency``).
    """

    request_id = models.CharField(max_length=128)
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
    # Defaults in the database too: rows written by SQL that predates these
    # columns (bench/build_dataset.py) get them.
    cached_input_tokens = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Input tokens read from the provider's prompt cache (part of input).",
    )
    cache_write_tokens = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Input tokens written to the prompt cache (part of input).",
    )
    reasoning_tokens = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Reasoning tokens (part of output)."
    )
    usage = FixedDecimalField(
        decimal_places=USAGE_DECIMAL_PLACES, help_text="Quota/credits consumed."
    )
    cost = FixedDecimalField(decimal_places=COST_DECIMAL_PLACES, help_text="Cost in USD.")
    # What the prompt cache saved, from the price list in force (0 without one):
    # cached input tokens x (input price - cached-input price) x group ratio.
    cache_savings = FixedDecimalField(
        decimal_places=COST_DECIMAL_PLACES,
        default=0,
        db_default=0,
        help_text="USD the prompt cache saved, by the price list.",
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    upstream = models.CharField(
        max_length=128, blank=True, help_text="Internal: the upstream channel that served it."
    )
    end_user = models.CharField(
        max_length=128,
        blank=True,
        default="",
        db_default="",
        help_text="The customer's own end-user id.",
    )
    # How the cost was computed from the price list, when the record came
    # without one (logs.pricing.CostBasis.as_json); null: reported by the gateway.
    cost_basis = models.JSONField(null=True, blank=True)
    # A JSON list of distinct strings; "calls with tag X" is ``tags__has_tag=X``
    # (logs.models.tags), correct on PostgreSQL and SQLite alike.
    tags = models.JSONField(default=list, db_default=[], blank=True)
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
            # They also carry the columns the list sorts by: a sort of a
            # time range by duration, tokens, usage or cost reads the range
            # from the index alone and sorts it (CallChangeList.SORT_MAX_CALLS).
            models.Index(
                fields=["-created_at", "-id"],
                include=[*FILTER_COLUMNS, "account", *SORT_COLUMNS],
                name="call_newest_cover_idx",
            ),
            models.Index(
                fields=["account", "-created_at", "-id"],
                include=[*FILTER_COLUMNS, *SORT_COLUMNS],
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
            # Failed calls alone (about 2% of them), in the list's order: an
            # exact status code or "any error" over a day finds its calls and
            # their totals without reading the day's every call, for an index
            # entry per failed call only at ingest.
            models.Index(
                fields=["-created_at", "-id"],
                include=["status_code"],
                condition=Q(status_code__gte=400),
                name="call_errors_page_idx",
            ),
            # The end-user filter (raw calls only), on the calls that name one.
            models.Index(
                fields=["end_user", "-created_at", "-id"],
                condition=~Q(end_user=""),
                name="call_end_user_page_idx",
            ),
        ]
        constraints = [
            # request_id first: a search by request id over every account (the
            # staff list) probes it on each monthly partition, as does one
            # within an account and the ingest's replay check.
            models.UniqueConstraint(
                fields=["request_id", "account", "created_at"],
                name="call_request_id_account_uniq",
            ),
            models.CheckConstraint(
                # In 64 bits: each count fits in a 32-bit column, their sum may not.
                condition=Q(
                    total_tokens=Cast("input_tokens", models.BigIntegerField())
                    + models.F("output_tokens")
                ),
                name="call_total_tokens_is_sum",
            ),
            models.CheckConstraint(
                condition=Q(
                    input_tokens__gte=models.F("cached_input_tokens")
                    + models.F("cache_write_tokens")
                ),
                name="call_cache_tokens_within_input",
            ),
            models.CheckConstraint(
                condition=Q(output_tokens__gte=models.F("reasoning_tokens")),
                name="call_reasoning_tokens_within_output",
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


CallRecord._meta.get_field("tags").register_lookup(HasTag)


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
    # The call's account, so payloads are distributed (sharded) with their
    # calls and the key (call_id, created_at, account_id on PostgreSQL)
    # includes it. The call holds the foreign key to the account.
    account = models.ForeignKey(
        Account, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
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
