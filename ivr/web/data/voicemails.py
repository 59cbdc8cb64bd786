"""Voicemails as the console shows them: each department's inbox, one message, marking it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from ivr.store.queries import set_voicemail_status
from ivr.store.recordings import recording_file
from ivr.web.data.users import audit
from ivr.web.roles import Viewer
from models import Voicemail


class NotYours(Exception):
    """It exists, and belongs to another unit or branch than this clerk's."""


STATUS_ORDER = {"new": 0, "heard": 1, "handled": 2}


async def inbox(
    engine: AsyncEngine,
    who: Viewer,
    *,
    branch: str | None = None,
    unit: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[Voicemail]:
    """Unhandled first, newest first within each status."""
    q = select(Voicemail).options(selectinload(Voicemail.call))
    if not who.sees_all:
        mine = [Voicemail.unit == who.unit] if who.unit else []
        mine += [Voicemail.branch == who.branch] if who.branch else []
        q = q.where(or_(*mine))
    if branch:
        q = q.where(Voicemail.branch == branch)
    if unit:
        q = q.where(Voicemail.unit == unit)
    if status:
        q = q.where(Voicemail.status == status)
    q = q.order_by(Voicemail.recorded_at.desc()).limit(limit)
    async with AsyncSession(engine) as s:
        rows = list((await s.scalars(q)).all())
    return sorted(rows, key=lambda v: (STATUS_ORDER.get(v.status, 9), -v.recorded_at.timestamp()))


async def one(engine: AsyncEngine, who: Viewer, vm_id: int) -> Voicemail | None:
    async with AsyncSession(engine) as s:
        q = select(Voicemail).options(selectinload(Voicemail.call)).where(Voicemail.id == vm_id)
        vm = (await s.scalars(q)).one_or_none()
    if vm is not None and not who.owns(vm.unit, vm.branch):
        raise NotYours(vm_id)
    return vm


async def mark(engine: AsyncEngine, who: Viewer, vm_id: int, status: str) -> bool:
    """False when there is no such message; NotYours when it is another unit's."""
    if await one(engine, who, vm_id) is None:
        return False
    await set_voicemail_status(engine, vm_id, status, who.name, dt.datetime.now(dt.UTC))
    await audit(engine, who.name, f"voicemail_{status}", str(vm_id))
    return True


def audio_file(vm: Voicemail, recordings_dir: Path) -> Path | None:
    """The message's file, from its row, only if it lies inside the recordings folder."""
    return recording_file(vm.location, recordings_dir)
