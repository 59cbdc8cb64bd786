"""Reading and writing cases. Every change goes through ivr.cases.status and leaves a line in
the case's timeline (case_events) in the same transaction."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from ivr.cases.access import Viewer, may_act, may_see
from ivr.cases.deadlines import Deadlines, local_day
from ivr.cases.numbering import next_number
from ivr.cases.owners import Owner
from ivr.cases.status import Change, Status, opened, transition
from ivr.routing.model import Routing
from models import Case, CaseEvent

NUMBER_ATTEMPTS = 8


class CaseError(ValueError):
    """A request the store refuses (message in Vietnamese)."""


class NotFound(CaseError):
    pass


class NotAllowed(CaseError):
    pass


class Conflict(CaseError):
    """Someone else changed the case meanwhile."""


@dataclass(frozen=True)
class NewCase:
    received_at: dt.datetime
    channel: str
    subject: str
    category: str
    owner: Owner
    citizen_name: str = ""
    citizen_phone: str = ""
    content: str = ""
    assignee: str | None = None
    call_id: str | None = None
    voicemail_id: int | None = None


@dataclass(frozen=True)
class CaseFilter:
    owner: str | None = None  # a unit code or "branch:N"
    status: Status | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    open_only: bool = False
    limit: int = 500


async def open_case(
    engine: AsyncEngine, routing: Routing, new: NewCase, due: Deadlines, who: str
) -> Case:
    """Insert the case with the next number of its year; a lost race for the counter row (or a
    busy SQLite file) is retried with a short backoff."""
    change = opened(who, new.received_at, new.owner.note)
    year = local_day(routing, new.received_at).year
    for attempt in range(NUMBER_ATTEMPTS):
        try:
            return await _insert(engine, new, due, change, year)
        except (IntegrityError, OperationalError) as e:
            if attempt == NUMBER_ATTEMPTS - 1 or not _retryable(e):
                raise
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def _retryable(e: Exception) -> bool:
    text = str(e).lower()
    return any(w in text for w in ("unique", "duplicate", "locked", "busy", "deadlock"))


async def _insert(
    engine: AsyncEngine, new: NewCase, due: Deadlines, change: Change, year: int
) -> Case:
    async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
        case = Case(
            number=await next_number(s, year),
            year=year,
            received_at=new.received_at,
            channel=new.channel,
            citizen_name=new.citizen_name,
            citizen_phone=new.citizen_phone,
            subject=new.subject,
            content=new.content,
            category=new.category,
            owner_unit=new.owner.unit,
            owner_name=new.owner.name,
            branch=new.owner.branch,
            assignee=new.assignee,
            status=Status.RECEIVED.value,
            call_id=new.call_id,
            voicemail_id=new.voicemail_id,
            forward_due=due.forward_due,
            answer_due=due.answer_due,
            answer="",
            reject_reason="",
        )
        case.events = [_event(change)]
        s.add(case)
    return case


def _event(change: Change) -> CaseEvent:
    return CaseEvent(**_event_fields(change))


async def get_case(engine: AsyncEngine, number: str, viewer: Viewer) -> Case:
    async with AsyncSession(engine) as s:
        case = await _load(s, number)
    if not may_see(viewer, case.owner_unit, case.branch):
        raise NotAllowed(f"{viewer.name} không được xem hồ sơ {case.number} (đơn vị khác)")
    return case


async def _load(s: AsyncSession, number: str) -> Case:
    q = select(Case).options(selectinload(Case.events)).where(Case.number == number.upper())
    case = (await s.scalars(q)).one_or_none()
    if case is None:
        raise NotFound(f"không có hồ sơ {number}")
    return case


async def list_cases(engine: AsyncEngine, f: CaseFilter, viewer: Viewer) -> list[Case]:
    q = select(Case).order_by(Case.received_at.desc()).limit(f.limit)
    if f.owner is not None:
        q = q.where(_owner_is(f.owner))
    if f.status is not None:
        q = q.where(Case.status == f.status.value)
    if f.open_only:
        q = q.where(Case.status.in_(["received", "forwarded", "verifying"]))
    if f.since is not None:
        q = q.where(Case.received_at >= f.since)
    if f.until is not None:
        q = q.where(Case.received_at < f.until)
    async with AsyncSession(engine) as s:
        rows = list((await s.scalars(q)).all())
    return [c for c in rows if may_see(viewer, c.owner_unit, c.branch)]


def _owner_is(key: str) -> ColumnElement[bool]:
    if key.startswith("branch:"):
        return Case.branch == key.removeprefix("branch:")
    return Case.owner_unit == key


async def assign(
    engine: AsyncEngine, number: str, assignee: str, viewer: Viewer, at: dt.datetime
) -> Case:
    if not assignee.strip():
        raise CaseError("cần tên người xử lý")
    async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
        case = await _load(s, number)
        _may_act(viewer, case)
        before = case.assignee or ""
        case.assignee = assignee
        s.add(
            CaseEvent(
                case_id=case.id,
                at=at,
                who=viewer.name,
                kind="assign",
                before=before,
                after=assignee,
                note="",
            )
        )
    return case


async def move(
    engine: AsyncEngine,
    number: str,
    target: Status,
    viewer: Viewer,
    at: dt.datetime,
    note: str = "",
) -> Case:
    """Change the status (the machine decides whether it may); the answer's text goes in
    ``note`` for ANSWERED, the reason for REJECTED."""
    async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
        case = await _load(s, number)
        _may_act(viewer, case)
        change = transition(Status(case.status), target, viewer.name, at, note)
        values: dict[str, object] = {"status": target.value}
        stamp = {
            Status.FORWARDED: "forwarded_at",
            Status.ANSWERED: "answered_at",
            Status.CLOSED: "closed_at",
            Status.REJECTED: "closed_at",
        }.get(target)
        if stamp:
            values[stamp] = at
        if target is Status.ANSWERED:
            values["answer"] = note
        if target is Status.REJECTED:
            values["reject_reason"] = note
        done = await s.execute(
            update(Case).where(Case.id == case.id, Case.status == case.status).values(**values)
        )
        if getattr(done, "rowcount", 1) != 1:
            raise Conflict(f"hồ sơ {case.number} vừa được người khác cập nhật; thử lại")
        s.add(CaseEvent(case_id=case.id, **_event_fields(change)))
    async with AsyncSession(engine) as s:
        return await _load(s, number)


def _event_fields(change: Change) -> dict[str, object]:
    return {
        "at": change.at,
        "who": change.who,
        "kind": "status",
        "before": change.before.value if change.before else "",
        "after": change.after.value,
        "note": change.note,
    }


def _may_act(viewer: Viewer, case: Case) -> None:
    if not may_act(viewer, case.owner_unit, case.branch):
        raise NotAllowed(f"{viewer.name} không được xử lý hồ sơ {case.number}")
