"""Calls as the console shows them: a search in keyset pages (newest first), one call's timeline.

A clerk's searches are narrowed to its own unit or branch here, in the query, whatever the
request asks for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.store.queries import AmbiguousCall, get_call
from ivr.web.roles import Viewer
from models import Call

PAGE = 50


class NotYours(Exception):
    """It exists, and belongs to another unit or branch than this clerk's."""


@dataclass(frozen=True)
class CallSearch:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    caller: str | None = None
    branch: str | None = None
    unit: str | None = None
    phone: str | None = None  # the desk phone (endpoint) that was dialled or answered
    disposition: str | None = None
    after: tuple[dt.datetime, str] | None = None  # the last row of the previous page
    limit: int = PAGE


@dataclass(frozen=True)
class CallPage:
    calls: list[Call]
    next: tuple[dt.datetime, str] | None  # where the next page starts; None: no more


def scoped(q: Select[Call], who: Viewer) -> Select[Call]:
    """Only the calls this person may see (a clerk: its unit's or branch's)."""
    if who.sees_all:
        return q
    mine = []
    if who.unit:
        mine.append(Call.unit == who.unit)
    if who.branch:
        mine.append(Call.branch == who.branch)
    return q.where(or_(*mine)) if mine else q.where(Call.id.is_(None))


def _filtered(f: CallSearch) -> Select[Call]:
    q = select(Call)
    for column, value in (
        (Call.caller_number, f.caller),
        (Call.branch, f.branch),
        (Call.unit, f.unit),
        (Call.disposition, f.disposition),
    ):
        if value:
            q = q.where(column == value)
    if f.phone:
        q = q.where(Call.endpoint == f.phone)
    if f.since is not None:
        q = q.where(Call.started_at >= f.since)
    if f.until is not None:
        q = q.where(Call.started_at < f.until)
    if f.after is not None:
        at, key = f.after
        # the plain bound lets the index on started_at start the scan at the page's edge (the
        # OR alone is read as a filter over every newer row: slow deep in a large table)
        q = q.where(
            Call.started_at <= at,
            or_(Call.started_at < at, and_(Call.started_at == at, Call.id < key)),
        )
    return q


async def search(engine: AsyncEngine, who: Viewer, f: CallSearch) -> CallPage:
    q = scoped(_filtered(f), who).order_by(Call.started_at.desc(), Call.id.desc())
    async with AsyncSession(engine) as s:
        rows = list((await s.scalars(q.limit(f.limit + 1))).all())
    if len(rows) <= f.limit:
        return CallPage(rows, None)
    rows = rows[: f.limit]
    return CallPage(rows, (rows[-1].started_at, rows[-1].id))


async def one(engine: AsyncEngine, who: Viewer, key: str) -> Call | None:
    """The call with its steps and voicemail; None when absent, NotYours when another unit's."""
    try:
        call = await get_call(engine, key)
    except AmbiguousCall:
        return None
    if call is not None and not who.owns(call.unit, call.branch):
        raise NotYours(key)
    return call


def next_page(f: CallSearch, after: tuple[dt.datetime, str]) -> CallSearch:
    return replace(f, after=after)
