"""The desk phones' states written by the controllers for the web console's wallboard.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phones",
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("node", "endpoint", name=op.f("pk_phones")),
    )
    op.create_index(op.f("ix_phones_seen_at"), "phones", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_phones_seen_at"), "phones")
    op.drop_table("phones")
