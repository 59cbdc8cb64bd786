"""What `ivr db purge` removed, one row per purge: `ivr db rollups rebuild` keeps the rollups of
the purged days instead of recounting them from calls no longer stored.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("before", UTCDateTime(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("purges")
