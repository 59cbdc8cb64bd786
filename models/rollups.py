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
    for name in (*COUNTS, *COUNTS_MORE, *bucket_columns("wait"), *bucket_columns("talk")):
        cols.append(Column(name, Integer, nullable=False, default=0))
    cols += [Column(n, Float, nullable=False, default=0.0) for n in ("wait_sum", "talk_sum")]
    return cols


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
