"""The Zalo survey outbox: one row per call whose caller agreed to a survey over Zalo.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zalo_outbox",
        sa.Column("tracking_id", sa.String(220), nullable=False),
        sa.Column("call_id", sa.String(220), nullable=True),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("msg_id", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'unsure')",
            name=op.f("ck_zalo_outbox_status"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_zalo_outbox_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("tracking_id", name=op.f("pk_zalo_outbox")),
    )
    op.create_index(op.f("ix_zalo_outbox_status_next_at"), "zalo_outbox", ["status", "next_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_zalo_outbox_status_next_at"), "zalo_outbox")
    op.drop_table("zalo_outbox")
