"""Call identity (node, channel, controller), controller leases, the `fallback` disposition.

A call's key becomes "<node>/<channel id>" (the Asterisk's entity id before Asterisk's uniqueid),
unique across nodes and restarts. Existing rows came from one unnamed Asterisk: their node and
controller are unknown (""), their channel id is their old key, and their key stays as it was
(``call_key("", channel)`` is the bare channel id), so nothing that refers to them changes.

SQLite cannot alter a column in place: tables are rebuilt (Alembic's batch mode). A rebuilt
``calls`` would take its steps and voicemails with it (ON DELETE CASCADE), so the children's
foreign keys are dropped first and put back last.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OLD = (
    "'answered', 'busy', 'no_answer', 'unreachable', 'voicemail', 'abandoned', 'closed', "
    "'dialplan', 'errored', 'interrupted', 'in_progress'"
)
_NEW = (
    "'answered', 'busy', 'no_answer', 'unreachable', 'voicemail', 'abandoned', 'closed', "
    "'dialplan', 'errored', 'interrupted', 'fallback', 'in_progress'"
)
_CHILDREN = (
    ("call_steps", "fk_call_steps_call_id_calls"),
    ("voicemails", "fk_voicemails_call_id_calls"),
)


def _children_keys(length: int, *, linked: bool) -> None:
    for table, fk in _CHILDREN:
        with op.batch_alter_table(table) as batch:
            if linked:
                batch.create_foreign_key(op.f(fk), "calls", ["call_id"], ["id"], ondelete="CASCADE")
            else:
                batch.drop_constraint(op.f(fk), type_="foreignkey")
                batch.alter_column("call_id", type_=sa.String(length))


def upgrade() -> None:
    _children_keys(220, linked=False)
    with op.batch_alter_table("calls") as batch:
        batch.alter_column("id", type_=sa.String(220))
        batch.add_column(sa.Column("channel_id", sa.String(150), nullable=True))
        batch.add_column(sa.Column("node", sa.String(64), nullable=True))
        batch.add_column(sa.Column("controller", sa.String(64), nullable=True))
        batch.drop_constraint(op.f("ck_calls_disposition"), type_="check")
        batch.create_check_constraint(op.f("ck_calls_disposition"), f"disposition IN ({_NEW})")
    op.execute("UPDATE calls SET channel_id = id, node = '', controller = ''")
    with op.batch_alter_table("calls") as batch:
        for column in ("channel_id", "node", "controller"):
            batch.alter_column(column, nullable=False)
        batch.create_unique_constraint(op.f("uq_calls_node_channel_id"), ["node", "channel_id"])
        batch.create_index(op.f("ix_calls_channel_id"), ["channel_id"])
    _children_keys(220, linked=True)
    op.create_table(
        "controllers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controllers")),
    )


def downgrade() -> None:
    op.drop_table("controllers")
    _children_keys(64, linked=False)
    with op.batch_alter_table("calls") as batch:
        batch.drop_index(op.f("ix_calls_channel_id"))
        batch.drop_constraint(op.f("uq_calls_node_channel_id"), type_="unique")
        batch.drop_column("controller")
        batch.drop_column("node")
        batch.drop_column("channel_id")
        batch.alter_column("id", type_=sa.String(64))
        batch.drop_constraint(op.f("ck_calls_disposition"), type_="check")
        batch.create_check_constraint(op.f("ck_calls_disposition"), f"disposition IN ({_OLD})")
    _children_keys(64, linked=True)
