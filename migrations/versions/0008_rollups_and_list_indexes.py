"""Call rollups for long reports (filled by `ivr db rollups rebuild`, then kept by the writer
and the reconciler), and indexes for the web console's call list (keyset pages, phone filter).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# the schema as of this revision (models/rollups.py may grow later)
BUCKETS = 22
KEYS = ("slot", "branch", "unit", "disposition", "hours", "digits")
COUNTS = ("calls", "answered", "abandoned_menu", "abandoned_ringing", "abandoned_short")
COUNTS_MORE = ("routed", "answered_in_time", "wait_n", "talk_n")


def _rollup_columns() -> list[sa.Column[object]]:
    counts = [*COUNTS, *COUNTS_MORE]
    counts += [f"{m}_b{i}" for m in ("wait", "talk") for i in range(BUCKETS)]
    return [
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("branch", sa.String(8), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("hours", sa.String(8), nullable=False),
        sa.Column("digits", sa.String(64), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in counts),
        sa.Column("wait_sum", sa.Float(), nullable=False),
        sa.Column("talk_sum", sa.Float(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "call_rollups",
        *_rollup_columns(),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f("pk_call_rollups")),
        sqlite_with_rowid=False,  # clustered on the key: a period is one sequential range
    )
    op.create_table(
        "lookup_rollups",
        sa.Column("slot", UTCDateTime(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("lookups", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("slot", "code", name=op.f("pk_lookup_rollups")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_calls_started_at_id"), "calls", ["started_at", "id"])
    op.create_index(op.f("ix_calls_endpoint_started_at"), "calls", ["endpoint", "started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_endpoint_started_at"), "calls")
    op.drop_index(op.f("ix_calls_started_at_id"), "calls")
    op.drop_table("lookup_rollups")
    op.drop_table("call_rollups")
