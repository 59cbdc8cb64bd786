"""Calls, their steps and voicemails.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DISPOSITIONS = (
    "'answered', 'busy', 'no_answer', 'unreachable', 'voicemail', 'abandoned', 'closed', "
    "'dialplan', 'errored', 'interrupted', 'in_progress'"
)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("linked_id", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("caller_name", sa.String(128), nullable=False),
        sa.Column("dialed", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digits", sa.String(64), nullable=False),
        sa.Column("branch", sa.String(8), nullable=True),
        sa.Column("unit", sa.String(16), nullable=True),
        sa.Column("endpoint", sa.String(128), nullable=True),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("wait_seconds", sa.Float(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("routing_version", sa.String(32), nullable=False),
        sa.Column("hangup_by", sa.String(16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(f"disposition IN ({DISPOSITIONS})", name=op.f("ck_calls_disposition")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_started_at"), "calls", ["started_at"])
    op.create_index(op.f("ix_calls_branch_started_at"), "calls", ["branch", "started_at"])
    op.create_index(op.f("ix_calls_unit_started_at"), "calls", ["unit", "started_at"])
    op.create_index(op.f("ix_calls_disposition_started_at"), "calls", ["disposition", "started_at"])
    op.create_index(
        op.f("ix_calls_caller_number_started_at"), "calls", ["caller_number", "started_at"]
    )
    op.create_table(
        "call_steps",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("input", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], ondelete="CASCADE", name=op.f("fk_call_steps_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("call_id", "seq", name=op.f("pk_call_steps")),
    )
    op.create_table(
        "voicemails",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("branch", sa.String(8), nullable=True),
        sa.Column("unit", sa.String(16), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("status_by", sa.String(64), nullable=True),
        sa.Column("status_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('new', 'heard', 'handled')", name=op.f("ck_voicemails_status")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], ondelete="CASCADE", name=op.f("fk_voicemails_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemails")),
        sa.UniqueConstraint("call_id", name=op.f("uq_voicemails_call_id")),
    )
    op.create_index(
        op.f("ix_voicemails_status_recorded_at"), "voicemails", ["status", "recorded_at"]
    )
    op.create_index(
        op.f("ix_voicemails_branch_recorded_at"), "voicemails", ["branch", "recorded_at"]
    )
    op.create_index(op.f("ix_voicemails_unit_recorded_at"), "voicemails", ["unit", "recorded_at"])


def downgrade() -> None:
    op.drop_table("voicemails")
    op.drop_table("call_steps")
    op.drop_table("calls")
