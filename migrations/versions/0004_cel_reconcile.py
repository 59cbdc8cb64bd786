"""Asterisk's CEL events (cel_pgsql writes them here; SQLite sites copy cel_custom's file in) and
the reconciler's progress, for the calls no controller recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TEXT = (
    ("cid_name", sa.String(128)),
    ("cid_num", sa.String(64)),
    ("cid_dnid", sa.String(64)),
    ("exten", sa.String(64)),
    ("context", sa.String(80)),
    ("channame", sa.String(128)),
    ("appname", sa.String(80)),
    ("appdata", sa.Text()),
    ("uniqueid", sa.String(150)),
    ("linkedid", sa.String(150)),
    ("peer", sa.String(128)),
    ("extra", sa.Text()),
    ("eid", sa.String(64)),
)


def upgrade() -> None:
    op.create_table(
        "cel",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("eventtype", sa.String(30), nullable=False),
        sa.Column("eventtime", sa.Float(), nullable=False),
        *(sa.Column(name, kind, server_default="", nullable=False) for name, kind in _TEXT),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cel")),
    )
    op.create_index(op.f("ix_cel_linkedid"), "cel", ["linkedid"])
    op.create_index(op.f("ix_cel_eventtype_id"), "cel", ["eventtype", "id"])
    op.create_table(
        "reconcile_state",
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_reconcile_state")),
    )


def downgrade() -> None:
    op.drop_table("reconcile_state")
    op.drop_index(op.f("ix_cel_eventtype_id"), "cel")
    op.drop_index(op.f("ix_cel_linkedid"), "cel")
    op.drop_table("cel")
