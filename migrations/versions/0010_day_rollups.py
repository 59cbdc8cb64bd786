"""Coarse call rollups for long reports (issue 10 scale): per local day × office-hours class ×
branch × disposition × keys pressed (units folded in; the minute kept for calls the report
classifies), and the calls per UTC hour for the heat map. Filled here from call_rollups, then
kept by the writer and the reconciler; `ivr db rollups rebuild` recomputes them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# the schema as of this revision (models/rollups.py may grow later)
BUCKETS = 22
COUNTS = ("calls", "answered", "abandoned_menu", "abandoned_ringing", "abandoned_short")
COUNTS_MORE = ("routed", "answered_in_time", "wait_n", "talk_n")
VALUES = (
    *COUNTS,
    *COUNTS_MORE,
    *(f"{m}_b{i}" for m in ("wait", "talk") for i in range(BUCKETS)),
    "wait_sum",
    "talk_sum",
)
DAY_KEYS = ("day", "hours", "minute", "branch", "disposition", "digits")
OFFSET = 7  # Asia/Ho_Chi_Minh, hours east of UTC


def upgrade() -> None:
    op.create_table(
        "call_days",
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("hours", sa.String(8), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(8), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("digits", sa.String(64), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in VALUES[:-2]),
        sa.Column("wait_sum", sa.Float(), nullable=False),
        sa.Column("talk_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*DAY_KEYS, name=op.f("pk_call_days")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "call_hours",
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_call_hours")),
        sqlite_with_rowid=False,
    )
    _fill()


def _fill() -> None:
    """From the rollups already kept (the same statements as ivr.store.rollups.RebuildSql)."""
    if op.get_bind().dialect.name == "sqlite":
        local = f"date(substr(slot, 1, 19), '+{OFFSET} hours')"
        day = f"datetime({local}, '-{OFFSET} hours') || '.000000'"
        minute = (
            f"(CAST(strftime('%s', substr(slot, 1, 19)) AS INTEGER)"
            f" - CAST(strftime('%s', {local}) AS INTEGER) + {OFFSET * 3600}) / 60"
        )
        hour = "substr(slot, 1, 13) || ':00:00.000000'"
    else:
        zone = "'Asia/Ho_Chi_Minh'"
        day = f"(date_trunc('day', slot AT TIME ZONE {zone}) AT TIME ZONE {zone})"
        minute = f"CAST(extract(epoch FROM slot - {day}) AS INTEGER) / 60"
        hour = "date_trunc('hour', slot AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    sums = ", ".join(f"sum({v})" for v in VALUES)
    op.execute(f"""
        INSERT INTO call_days ({", ".join((*DAY_KEYS, *VALUES))})
        SELECT {day}, hours, CASE WHEN hours = '' THEN {minute} ELSE -1 END, branch,
            disposition, digits, {sums}
        FROM call_rollups GROUP BY 1, 2, 3, 4, 5, 6""")
    op.execute(f"INSERT INTO call_hours (slot, calls) SELECT {hour}, sum(calls) FROM call_rollups"
               " GROUP BY 1")  # fmt: skip


def downgrade() -> None:
    op.drop_table("call_hours")
    op.drop_table("call_days")
