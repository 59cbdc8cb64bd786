"""The outbox's table operations (SQLAlchemy; no HTTP here).

A row is made from a stored call that carries the consent step, so nothing is asked of the call
itself; claiming a row is one conditional UPDATE, so two controllers on one database never send
the same survey; a claim that outlives its lease (the process died mid-request) turns ``unsure``
and is not sent again: a survey twice is worse than a survey lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.flow.survey import SURVEY_KIND, ZALO_CONSENT
from ivr.survey.zalo.phone import BadPhone, normalise
from models import Call, CallStep
from models.survey import ZaloOutbox


@dataclass(frozen=True, slots=True)
class Pending:
    tracking_id: str
    call_id: str | None
    phone: str
    attempts: int
    started_at: dt.datetime | None


async def enqueue(engine: AsyncEngine, now: dt.datetime, since: dt.datetime) -> int:
    """Rows for calls since ``since`` whose caller agreed and that have none yet; how many."""
    consented = (
        select(Call.id, Call.caller_number)
        .join(CallStep, CallStep.call_id == Call.id)
        .where(
            Call.started_at >= since,
            CallStep.kind == SURVEY_KIND,
            CallStep.outcome == ZALO_CONSENT,
            ~exists().where(ZaloOutbox.tracking_id == Call.id),
        )
        .distinct()
    )
    async with AsyncSession(engine) as s:
        found = (await s.execute(consented)).all()
    added = 0
    for call_id, number in found:
        added += await _add(engine, _row(call_id, number, now))
    return added


def _row(call_id: str, number: str, now: dt.datetime) -> ZaloOutbox:
    row = ZaloOutbox(tracking_id=call_id, call_id=call_id, attempts=0, created_at=now, next_at=now)
    try:
        row.phone, row.status = normalise(number), "pending"
    except BadPhone as e:
        row.phone, row.status, row.error = "", "failed", str(e)
    return row


async def _add(engine: AsyncEngine, row: ZaloOutbox) -> int:
    try:
        async with AsyncSession(engine) as s, s.begin():
            s.add(row)
    except IntegrityError:  # another controller made it first
        return 0
    return 1


async def due(engine: AsyncEngine, now: dt.datetime, limit: int) -> Sequence[Pending]:
    q = (
        select(ZaloOutbox, Call.started_at)
        .outerjoin(Call, Call.id == ZaloOutbox.call_id)
        .where(ZaloOutbox.status == "pending", ZaloOutbox.next_at <= now)
        .order_by(ZaloOutbox.created_at, ZaloOutbox.tracking_id)  # oldest consent first
        .limit(limit)
    )
    async with AsyncSession(engine) as s:
        rows = (await s.execute(q)).all()
    return [Pending(r.tracking_id, r.call_id, r.phone, r.attempts, at) for r, at in rows]


async def claim(engine: AsyncEngine, tracking_id: str, until: dt.datetime) -> bool:
    """Ours to send until ``until``, if it is still pending (committed before the request)."""
    return await _set(engine, tracking_id, "pending", status="sending", next_at=until)


async def finish(engine: AsyncEngine, tracking_id: str, **values: object) -> None:
    """The claimed row's outcome: sent, failed, or pending again with a later ``next_at``."""
    await _set(engine, tracking_id, "sending", **values)


async def expire_claims(engine: AsyncEngine, now: dt.datetime) -> int:
    """Claims whose lease ran out: their request may have reached Zalo, so ``unsure``."""
    stmt = (
        update(ZaloOutbox)
        .where(and_(ZaloOutbox.status == "sending", ZaloOutbox.next_at < now))
        .values(status="unsure", error="bị ngắt giữa lúc gửi; không gửi lại để tránh gửi hai lần")
    )
    async with AsyncSession(engine) as s, s.begin():
        result = await s.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def _set(engine: AsyncEngine, tracking_id: str, was: str, **values: object) -> bool:
    stmt = (
        update(ZaloOutbox)
        .where(ZaloOutbox.tracking_id == tracking_id, ZaloOutbox.status == was)
        .values(**values)
    )
    async with AsyncSession(engine) as s, s.begin():
        result = await s.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0) == 1
