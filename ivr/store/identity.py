"""A call's identity in its rows: its key, the channel, the Asterisk node, the owning controller.

The flow's record says which node carried the call (``record.node``, stamped by the adapter);
the writer says which controller owns it (the one holding the lease, unless the record names
one). Every row of the call (its steps, its voicemail) refers to it by ``record.key``.
"""

from __future__ import annotations

from ivr.flow.record import CallRecord
from ivr.store.rows import Op, Row, bounded


def identity(record: CallRecord, controller: str) -> Row:
    return bounded(
        "call",
        {
            "id": record.key,
            "channel_id": record.channel_id,
            "node": record.node,
            "controller": record.controller or controller,
        },
    )


def keyed(ops: list[Op], record: CallRecord, controller: str) -> list[Op]:
    """The call's rows with its identity: the call row stamped, the others pointing at its key."""
    out: list[Op] = []
    for kind, row in ops:
        if kind == "call":
            out.append((kind, {**row, **identity(record, controller)}))
        else:
            out.append((kind, {**row, "call_id": record.key}))
    return out
