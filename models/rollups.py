"""Call rollups for long reports: per UTC hour (per minute for calls whose office-hours class is
left to the report) × branch × unit × disposition × office-hours class × keys pressed, the counts
and duration sums and buckets the report's measures need (ivr.reports.rollups)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, PrimaryKeyConstraint, String, Table

from models.base import Base, UTCDateTime

# upper edges (seconds) of the duration buckets; the last bucket holds everything from 3600 on
EDGES = (1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1800, 3600)
BUCKETS = len(EDGES) + 1
COUNTS = ("calls", "answered", "abandoned_menu", "abandoned_ringing", "abandoned_short")
COUNTS_MORE = ("routed", "answered_in_time", "wait_n", "talk_n")
KEYS = ("slot", "branch", "unit", "disposition", "hours", "digits")


def bucket_columns(measure: str) -> list[str]:
    return [f"{measure}_b{i}" for i in range(BUCKETS)]


def _columns() -> list[Column[object]]:
    cols: list[Column[object]] = [
        Column("slot", UTCDateTime(), nullable=False),
        Column("branch", String(8), nullable=False),  # "" for none
        Column("unit", String(16), nullable=False),
        Column("disposition", String(16), nullable=False),
        Column("hours", String(8), nullable=False),  # "" when the call has no hours step
        Column("digits", String(64), nullable=False),
    ]
    return cols + _value_columns()


def _value_columns() -> list[Column[object]]:
    names = (*COUNTS, *COUNTS_MORE, *bucket_columns("wait"), *bucket_columns("talk"))
    cols: list[Column[object]] = [Column(n, Integer, nullable=False, default=0) for n in names]
    return cols + [Column(n, Float, nullable=False, default=0.0) for n in ("wait_sum", "talk_sum")]


# SQLite: clustered on the key, so a period's rows are read in one sequential range
call_rollups = Table(
    "call_rollups",
    Base.metadata,
    *_columns(),
    PrimaryKeyConstraint(*KEYS),
    sqlite_with_rowid=False,
)

lookup_rollups = Table(
    "lookup_rollups",
    Base.metadata,
    Column("slot", UTCDateTime(), nullable=False),
    Column("code", String(64), nullable=False),
    Column("lookups", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("slot", "code"),
    sqlite_with_rowid=False,
)


# Coarse rollups for a long report grouped by branch, disposition or calendar day (issue 10
# scale): per local day of the hotline's zone (``day``: the UTC instant of its midnight) × office-
# hours class × branch × disposition × keys pressed, units folded in, the same sums as
# call_rollups. A call whose class the report decides keeps its minute of that day (``minute``,
# else -1) so the report can classify it; the heat map reads the calls per UTC hour.
DAY_ZONE = "Asia/Ho_Chi_Minh"  # a fixed offset (UTC+7 since 1975): local days are whole hours
DAY_KEYS = ("day", "hours", "minute", "branch", "disposition", "digits")


def _day_columns() -> list[Column[object]]:
    cols: list[Column[object]] = [
        Column("day", UTCDateTime(), nullable=False),
        Column("hours", String(8), nullable=False),
        Column("minute", Integer, nullable=False),
        Column("branch", String(8), nullable=False),
        Column("disposition", String(16), nullable=False),
        Column("digits", String(64), nullable=False),
    ]
    return cols + _value_columns()


call_days = Table(
    "call_days",
    Base.metadata,
    *_day_columns(),
    PrimaryKeyConstraint(*DAY_KEYS),
    sqlite_with_rowid=False,
)

call_hours = Table(
    "call_hours",
    Base.metadata,
    Column("slot", UTCDateTime(), nullable=False),
    Column("calls", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("slot"),
    sqlite_with_rowid=False,
)
