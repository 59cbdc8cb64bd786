"""Finished calls in ``cel`` → ``fallback`` rows for those the store does not have.

Calls are taken in the order Asterisk ended them (their LINKEDID_END), once ended ``settle``
seconds ago (time for a controller's own record of the call to reach the store). A call that
already has a row, by its key or by its channel and linked id (any node), is left alone; a row
is written with INSERT … ON CONFLICT DO NOTHING, and the last call looked at is remembered in
``reconcile_state``, in the same transaction: running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import takewhile
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.flow.record import Disposition, call_key
from ivr.store.reconcile.cel import CelEvent
from ivr.store.reconcile.facts import CallFacts, fold
from ivr.store.reconcile.source import save_state
from ivr.store.rollups import Delta, apply, facts_of
from ivr.store.rows import Row, bounded
from models import Call, ReconcileState
from models import CelEvent as CelRow

log = structlog.get_logger("ivr.reconcile")

MARK = "cel:reconciled"  # reconcile_state.offset: the id of the last LINKEDID_END looked at
BATCH = 200


@dataclass(frozen=True, slots=True)
class Pass:
    looked_at: int  # ended calls examined
    written: int  # fallback rows written
    waiting_since: float | None  # end time of the oldest ended call left for later (Unix)


def fallback_row(f: CallFacts) -> Row:
    """The row of a call no controller recorded (pure)."""
    return bounded(
        "call",
        {
            "id": call_key(f.node, f.channel_id),
            "channel_id": f.channel_id,
            "node": f.node,
            "controller": "",
            "linked_id": f.linked_id,
            "caller_number": f.caller_number,
            "caller_name": f.caller_name,
            "dialed": f.dialed,
            "started_at": f.started_at,
            "answered_at": f.answered_at,
            "ended_at": f.ended_at,
            "path": ">".join(f.contexts),
            "digits": "",
            "branch": None,
            "unit": None,
            "endpoint": f.endpoint,
            "disposition": Disposition.FALLBACK.value,
            "wait_seconds": f.wait_seconds,
            "talk_seconds": f.talk_seconds,
            "routing_version": "",
            "hangup_by": f.hangup_by,
            "hangup_cause": f.hangup_cause,
            "hangup_cause_text": None,
            "error": None,
        },
    )


async def reconcile(
    engine: AsyncEngine, now: float, *, settle: float = 0.0, node: str = ""
) -> Pass:
    """One pass over the calls ended since the last one. ``now``: Unix time."""
    looked = written = 0
    while True:
        async with engine.begin() as conn:
            mark = await _mark(conn)
            ends = (
                await conn.execute(
                    select(CelRow.id, CelRow.linkedid, CelRow.eventtime)
                    .where(CelRow.eventtype == "LINKEDID_END", CelRow.id > mark)
                    .order_by(CelRow.id)
                    .limit(BATCH)
                )
            ).all()
            ready = list(takewhile(lambda e: e.eventtime <= now - settle, ends))
            recorded = await _recorded(conn, [end.linkedid for end in ready]) if ready else set()
            for end in ready:
                if end.linkedid not in recorded:
                    written += await _one(conn, end.linkedid, end.id, node)
                mark = end.id
            if ready:
                await save_state(conn, MARK, 0, mark)
            looked += len(ready)
        if len(ready) < len(ends) or len(ends) < BATCH:
            left = ends[len(ready)] if len(ready) < len(ends) else None
            return Pass(looked, written, left.eventtime if left else None)


async def _mark(conn: AsyncConnection) -> int:
    found = await conn.scalar(select(ReconcileState.offset).where(ReconcileState.source == MARK))
    return int(found or 0)


# The calls of a batch that already have a row, found as _known finds them by channel and linked
# id (a call's caller channel is the one that began it: its uniqueid is the linkedid, see fold):
# their events need not be read nor folded. Nearly every call is one: a controller recorded it.
# Built once, like the writer's statements (ivr.store.sql).
_RECORDED = select(Call.channel_id).where(
    Call.channel_id.in_(bindparam("ids", expanding=True)), Call.linked_id == Call.channel_id
)


async def _recorded(conn: AsyncConnection, linkedids: list[str]) -> set[str]:
    return set((await conn.execute(_RECORDED, {"ids": linkedids})).scalars())


async def _one(conn: AsyncConnection, linkedid: str, end_id: int, node: str) -> int:
    rows = await conn.execute(
        select(CelRow).where(CelRow.linkedid == linkedid, CelRow.id <= end_id).order_by(CelRow.id)
    )
    facts = fold((_event(r) for r in rows), node)
    if facts is None or await _known(conn, facts):
        return 0
    if facts.controller_saw:
        log.warning(
            "cuộc gọi đã vào bộ điều khiển nhưng không có bản ghi: ghi là fallback",
            channel=facts.channel_id,
        )
    insert: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    row = fallback_row(facts)
    result = await conn.execute(insert(Call).values(row).on_conflict_do_nothing())
    inserted = int(result.rowcount or 0)
    if inserted:  # counted from nothing: a row only this transaction has seen yet. A row stored
        # meanwhile by a controller (its late records) is that one's to count, not this one's
        await apply(conn, Delta.between([], await facts_of(conn, [row["id"]])))
    return inserted


async def _known(conn: AsyncConnection, f: CallFacts) -> bool:
    """A row for this call exists: by key, or by its channel and linked id on any node."""
    found = await conn.scalar(
        select(Call.id)
        .where(
            or_(
                Call.id == call_key(f.node, f.channel_id),
                and_(Call.channel_id == f.channel_id, Call.linked_id == f.linked_id),
            )
        )
        .limit(1)
    )
    return found is not None


def _event(r: Any) -> CelEvent:
    return CelEvent(
        eventtype=r.eventtype,
        eventtime=r.eventtime,
        uniqueid=r.uniqueid,
        linkedid=r.linkedid,
        channame=r.channame,
        context=r.context,
        exten=r.exten,
        appname=r.appname,
        appdata=r.appdata,
        cid_name=r.cid_name,
        cid_num=r.cid_num,
        cid_dnid=r.cid_dnid,
        peer=r.peer,
        extra=r.extra,
        eid=r.eid,
    )


def lag(p: Pass, now: float) -> float:
    """Seconds the oldest ended call left for later has been waiting (0: none)."""
    return max(now - p.waiting_since, 0.0) if p.waiting_since is not None else 0.0
