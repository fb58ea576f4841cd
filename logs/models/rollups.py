"""Rollups: the calls of each period summed per combination of dimensions.

Three full levels (hour, day, month) keep every dimension a call is filtered
by; summaries keep a few (per model, per account and model, per key), on the
grids of ``logs.periods``. Ingest appends what calls add as pending deltas;
the folder (``logs.rollups``) moves them into every level."""

from __future__ import annotations

from datetime import datetime

from django.db import models

from accounts.models import Account, ApiKey, Group
from logs.models.calls import CallType, StatusClass
from logs.models.fields import COST_DECIMAL_PLACES, USAGE_DECIMAL_PLACES, FixedDecimalField
from logs.models.measures import MEASURE_NAMES
from logs.periods import DAY, HOUR, MONTH, QUARTER_HOUR, Grid


class RollupMeasures(models.Model):
    """The sums a rollup row keeps for the calls it stands for."""

    calls = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cached_input_tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    usage = FixedDecimalField(decimal_places=USAGE_DECIMAL_PLACES, default=0)
    cost = FixedDecimalField(decimal_places=COST_DECIMAL_PLACES, default=0)
    cache_savings = FixedDecimalField(decimal_places=COST_DECIMAL_PLACES, default=0, db_default=0)
    duration_ms_sum = models.PositiveBigIntegerField(default=0)
    # Time spent generating (duration minus time to first token) by calls with output.
    output_ms_sum = models.PositiveBigIntegerField(default=0)
    # Duration histogram (logs.models.measures): h00 counts calls under 50 ms, …
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

    # One column per measure, defined in logs.models.measures.
    MEASURES: tuple[str, ...] = MEASURE_NAMES

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


class HourlyCallRollup(RollupRow):
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
ROLLUP_LEVELS: tuple[type[RollupRow], ...] = (MonthlyCallRollup, DailyCallRollup, HourlyCallRollup)


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


class HourlySummaryRollup(SummaryRollup):
    hour = models.DateTimeField(help_text="Start of the hour (UTC).")

    PERIOD_FIELD = "hour"
    PERIOD_FORMAT = "%Y-%m-%d %H:00"
    GRID = HOUR

    class Meta:
        abstract = True


class HourlyTotalRollup(HourlySummaryRollup):
    """Per UTC hour, over every account and model: the staff's charts per hour
    over a month (720 rows, where the per-model summary has ~15,000)."""

    DIMENSIONS = ("hour",)

    class Meta:
        verbose_name = "hourly total"
        constraints = [models.UniqueConstraint(fields=["hour"], name="hourly_total_uniq")]


class HourlyAccountRollup(HourlySummaryRollup):
    """Per UTC hour and account: one account's charts per hour over a month
    (720 rows, where its per-model summary has thousands)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)

    DIMENSIONS = ("hour", "account")

    class Meta:
        verbose_name = "hourly per-account total"
        constraints = [
            models.UniqueConstraint(fields=["hour", "account"], name="hourly_account_total_uniq")
        ]
        indexes = [
            models.Index(fields=["account", "hour"], name="hourly_account_total_idx"),
        ]


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
    HourlyTotalRollup,
    HourlyModelRollup,
    HourlyAccountRollup,
    HourlyAccountModelRollup,
    QuarterHourModelRollup,
    QuarterHourAccountModelRollup,
)


# The levels on each grid, smallest first (the full level, where a grid has
# one, last): the first whose dimensions cover a question answers it.
LEVELS_BY_GRID: dict[Grid, tuple[type[RollupMeasures], ...]] = {
    MONTH: (MonthlyCallRollup,),
    DAY: (DailyModelRollup, DailyAccountModelRollup, DailyKeyRollup, DailyCallRollup),
    HOUR: (
        HourlyTotalRollup,
        HourlyModelRollup,
        HourlyAccountRollup,
        HourlyAccountModelRollup,
        HourlyCallRollup,
    ),
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
    HourlyTotalRollup,
    HourlyModelRollup,
    HourlyAccountRollup,
    HourlyAccountModelRollup,
)
