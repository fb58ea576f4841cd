"""What a call record is, and what is kept about calls.

Reads go through ``logs.read`` (scoping, filters, totals, stats); writes go
through ``logs.ingest`` (validation, redaction, storage) and ``logs.rollups``.
Nothing but ``CallPayload`` refers to a call, so the calls table can be
partitioned by month on PostgreSQL without foreign keys into it getting in
the way.
"""

from logs.models.audit import AccessRecord
from logs.models.calls import (
    FILTER_COLUMNS,
    CallPayload,
    CallRecord,
    CallType,
    StatusClass,
)
from logs.models.fields import (
    COST_DECIMAL_PLACES,
    USAGE_DECIMAL_PLACES,
    FixedDecimalField,
    from_units,
    to_units,
)
from logs.models.imports import ImportRun
from logs.models.pricing import PRICE_DECIMAL_PLACES, ModelPrice
from logs.models.registries import AccountEndUser, AccountGroup, AccountModel, AccountTag
from logs.models.retention import PruneRun
from logs.models.rollups import (
    COARSE_ROLLUP_LEVELS,
    FINE_ROLLUP_LEVELS,
    LEVELS_BY_GRID,
    ROLLUP_LEVELS,
    SUMMARY_ROLLUP_LEVELS,
    DailyAccountModelRollup,
    DailyCallRollup,
    DailyKeyRollup,
    DailyModelRollup,
    FoldStatus,
    HourlyAccountModelRollup,
    HourlyAccountRollup,
    HourlyCallRollup,
    HourlyModelRollup,
    HourlyTotalRollup,
    MonthlyCallRollup,
    PendingRollupDelta,
    QuarterHourAccountModelRollup,
    QuarterHourModelRollup,
    RollupMeasures,
    RollupRow,
    SummaryRollup,
)

__all__ = [
    "COARSE_ROLLUP_LEVELS",
    "COST_DECIMAL_PLACES",
    "FILTER_COLUMNS",
    "FINE_ROLLUP_LEVELS",
    "LEVELS_BY_GRID",
    "PRICE_DECIMAL_PLACES",
    "ROLLUP_LEVELS",
    "SUMMARY_ROLLUP_LEVELS",
    "USAGE_DECIMAL_PLACES",
    "AccessRecord",
    "AccountEndUser",
    "AccountGroup",
    "AccountModel",
    "AccountTag",
    "CallPayload",
    "CallRecord",
    "CallType",
    "DailyAccountModelRollup",
    "DailyCallRollup",
    "DailyKeyRollup",
    "DailyModelRollup",
    "FixedDecimalField",
    "FoldStatus",
    "HourlyAccountModelRollup",
    "HourlyAccountRollup",
    "HourlyCallRollup",
    "HourlyModelRollup",
    "HourlyTotalRollup",
    "ImportRun",
    "ModelPrice",
    "MonthlyCallRollup",
    "PendingRollupDelta",
    "PruneRun",
    "QuarterHourAccountModelRollup",
    "QuarterHourModelRollup",
    "RollupMeasures",
    "RollupRow",
    "StatusClass",
    "SummaryRollup",
    "from_units",
    "to_units",
]
