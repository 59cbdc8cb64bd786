"""What supervisors and clerks ask of the store: call lists, one call's timeline, voicemails."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from models import Call, Voicemail


@dataclass(frozen=True)
class CallFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    branch: str | None = None
    unit: str | None = None
    disposition: str | None = None
    caller: str | None = None
    limit: int = 200


async def list_calls(engine: AsyncEngine, f: CallFilter) -> list[Call]:
    q = select(Call).order_by(Call.started_at.desc()).limit(f.limit)
    if f.since is not None:
        q = q.where(Call.started_at >= f.since)
    if f.until is not None:
        q = q.where(Call.started_at < f.until)
    if f.branch is not None:
        q = q.where(Call.branch == f.branch)
    if f.unit is not None:
        q = q.where(Call.unit == f.unit)
    if f.disposition is not None:
        q = q.where(Call.disposition == f.disposition)
    if f.caller is not None:
        q = q.where(Call.caller_number == f.caller)
    async with AsyncSession(engine) as s:
        return list((await s.scalars(q)).all())


class AmbiguousCall(ValueError):
    """A bare channel id that several Asterisk nodes used: the full key is needed."""


async def get_call(engine: AsyncEngine, key: str) -> Call | None:
    """The call with this key ("<node>/<channel id>"), or with this channel id when only one
    node used it (AmbiguousCall when several did)."""
    q = select(Call).options(selectinload(Call.steps), selectinload(Call.voicemail))
    async with AsyncSession(engine) as s:
        found = (await s.scalars(q.where(Call.id == key))).one_or_none()
        if found is not None:
            return found
        same = list((await s.scalars(q.where(Call.channel_id == key).limit(10))).all())
    if len(same) > 1:
        keys = ", ".join(sorted(c.id for c in same))
        raise AmbiguousCall(f"mã kênh {key} có ở nhiều máy chủ Asterisk; dùng mã đầy đủ: {keys}")
    return same[0] if same else None


_STATUS_ORDER = {"new": 0, "heard": 1, "handled": 2}


async def list_voicemails(
    engine: AsyncEngine, status: str | None = None, branch: str | None = None, limit: int = 200
) -> list[Voicemail]:
    q = select(Voicemail).options(selectinload(Voicemail.call)).limit(limit)
    if status is not None:
        q = q.where(Voicemail.status == status)
    if branch is not None:
        q = q.where(Voicemail.branch == branch)
    async with AsyncSession(engine) as s:
        rows = list((await s.scalars(q.order_by(Voicemail.recorded_at.desc()))).all())
    return sorted(rows, key=lambda v: (_STATUS_ORDER.get(v.status, 9), -v.recorded_at.timestamp()))


async def set_voicemail_status(
    engine: AsyncEngine, voicemail_id: int, status: str, who: str, at: dt.datetime
) -> bool:
    async with AsyncSession(engine) as s, s.begin():
        vm = await s.get(Voicemail, voicemail_id)
        if vm is None:
            return False
        vm.status, vm.status_by, vm.status_at = status, who, at
    return True


def mask_number(number: str) -> str:
    """0912345678 → 0912***678: enough for a supervisor to tell callers apart, no more."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 7) + number[-3:]
