"""The caller channel's hang-up cause, from AMI.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("hangup_cause", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hangup_cause_text", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("hangup_cause_text")
        batch.drop_column("hangup_cause")
