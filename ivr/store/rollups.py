"""Keeping the call rollups (models/rollups.py) equal to the calls stored.

Every write that changes calls or their steps runs inside :func:`kept`: the facts of the calls
it touches are read before and after, and the difference is added to the rollups in the same
transaction. Writing a batch again changes nothing; a call written first in progress and then
finished moves from one rollup row to another. :func:`rebuild` recomputes them all.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.reports.facts import _CALL_COLUMNS, STEP_KINDS, CallFact, StepFact, fact_of
from ivr.reports.measures import Options, is_short_abandon, within_service
from models import Call, CallStep, call_rollups, lookup_rollups
from models.rollups import BUCKETS, COUNTS, COUNTS_MORE, EDGES, KEYS, bucket_columns

Key = tuple[dt.datetime, str, str, str, str, str]  # KEYS
VALUES = (
    *COUNTS,
    *COUNTS_MORE,
    *bucket_columns("wait"),
    *bucket_columns("talk"),
    "wait_sum",
    "talk_sum",
)
DEFAULTS = Options()  # the thresholds the rollups count with (short abandon, service level)
CHUNK = 500
WINDOW = dt.timedelta(days=1)  # a rebuild reads the calls a day at a time


def unclassified(_at: dt.datetime) -> str:
    """A call with no ``hours`` step is classified by the report, from its rollup's minute."""
    return ""


def slot_of(f: CallFact) -> dt.datetime:
    """The UTC hour the call started in; its minute when the report must classify it."""
    at = f.started_at.astimezone(dt.UTC)
    return (
        at.replace(second=0, microsecond=0)
        if not f.hours
        else at.replace(minute=0, second=0, microsecond=0)
    )


def bucket(seconds: float) -> int:
    """Index of the duration bucket: [EDGES[i-1], EDGES[i]), the last one open."""
    return min(bisect_right(EDGES, seconds), BUCKETS - 1)


class Delta:
    """Changes to add to the rollups: per rollup key, per column."""

    def __init__(self) -> None:
        self.calls: defaultdict[Key, defaultdict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.lookups: Counter[tuple[dt.datetime, str]] = Counter()

    def add(self, f: CallFact, sign: int = 1) -> None:
        slot = slot_of(f)
        key = (slot, f.branch or "", f.unit or "", f.disposition, f.hours, f.digits)
        c = self.calls[key]
        c["calls"] += sign
        c["answered"] += sign * f.answered
        c["abandoned_menu"] += sign * (f.abandoned == "menu")
        c["abandoned_ringing"] += sign * (f.abandoned == "ringing")
        c["abandoned_short"] += sign * is_short_abandon(f, DEFAULTS)
        c["routed"] += sign * f.routed
        c["answered_in_time"] += sign * within_service(f, DEFAULTS)
        if f.waiting_seconds is not None:
            self._duration(c, "wait", f.waiting_seconds, sign)
        if f.answered:
            self._duration(c, "talk", f.talk_seconds, sign)
        hour = slot.replace(minute=0)
        for code in f.lookups:
            self.lookups[(hour, code)] += sign

    @staticmethod
    def _duration(c: defaultdict[str, float], measure: str, seconds: float, sign: int) -> None:
        c[f"{measure}_n"] += sign
        c[f"{measure}_sum"] += sign * seconds
        c[f"{measure}_b{bucket(seconds)}"] += sign

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        calls = [
            {**dict(zip(KEYS, key, strict=True)), **_values(c)}
            for key, c in self.calls.items()
            if any(c.values())
        ]
        lookups = [
            {"slot": slot, "code": code, "lookups": n}
            for (slot, code), n in self.lookups.items()
            if n
        ]
        return calls, lookups


def _values(c: defaultdict[str, float]) -> dict[str, float | int]:
    return {v: c.get(v, 0.0) if v.endswith("_sum") else round(c.get(v, 0)) for v in VALUES}


async def facts_of(conn: AsyncConnection, keys: Collection[str]) -> list[CallFact]:
    """The facts of the stored calls among ``keys`` (rollup form: unclassified hours)."""
    facts: list[CallFact] = []
    keys = list(keys)
    for i in range(0, len(keys), CHUNK):
        part = keys[i : i + CHUNK]
        rows = (await conn.execute(select(*_CALL_COLUMNS).where(Call.id.in_(part)))).all()
        if not rows:
            continue
        steps: dict[str, list[StepFact]] = {}
        found = await conn.execute(
            select(CallStep.call_id, CallStep.kind, CallStep.outcome, CallStep.input, CallStep.at)
            .where(CallStep.call_id.in_([r.id for r in rows]), CallStep.kind.in_(STEP_KINDS))
            .order_by(CallStep.call_id, CallStep.seq)
        )
        for s in found:
            at = s.at if s.at.tzinfo is not None else s.at.replace(tzinfo=dt.UTC)
            steps.setdefault(s.call_id, []).append(StepFact(s.kind, s.outcome, s.input or "", at))
        facts += [fact_of(r, steps.get(r.id, []), unclassified) for r in rows]
    return facts


@asynccontextmanager
async def kept(conn: AsyncConnection, keys: Collection[str]) -> AsyncIterator[None]:
    """Run writes to the calls ``keys`` (in ``conn``'s transaction) keeping the rollups equal."""
    before = await facts_of(conn, keys) if keys else []
    yield
    if not keys:
        return
    after = await facts_of(conn, keys)
    delta = Delta()
    for f in before:
        delta.add(f, -1)
    for f in after:
        delta.add(f)
    await apply(conn, delta)


async def apply(conn: AsyncConnection, delta: Delta) -> None:
    calls, lookups = delta.rows()
    insert: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for table, rows, keys, values in (
        (call_rollups, calls, KEYS, VALUES),
        (lookup_rollups, lookups, ("slot", "code"), ("lookups",)),
    ):
        for i in range(0, len(rows), CHUNK):
            stmt = insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={v: table.c[v] + stmt.excluded[v] for v in values},
            )
            await conn.execute(stmt, rows[i : i + CHUNK])


async def rebuild(engine: AsyncEngine) -> int:
    """Recompute every rollup from the calls stored; returns the number of calls counted.
    Idempotent. Calls written while it runs may be counted twice or not at all: run it when
    no controller writes (after `ivr db upgrade`), or run it again."""
    delta = Delta()
    counted = 0
    async with engine.connect() as conn:
        first, last = (
            await conn.execute(select(func.min(Call.started_at), func.max(Call.started_at)))
        ).one()
        at = _aware(first) if first is not None else None
        while at is not None and at <= _aware(last):
            for f in await facts_between(conn, at, at + WINDOW):
                delta.add(f)
                counted += 1
            at += WINDOW
    async with engine.begin() as conn:
        await conn.execute(delete(call_rollups))
        await conn.execute(delete(lookup_rollups))
        await apply(conn, delta)
    return counted


async def facts_between(
    conn: AsyncConnection, start: dt.datetime, end: dt.datetime
) -> list[CallFact]:
    """The facts of the calls started in [start, end), read whole (rollup form)."""
    window = and_(Call.started_at >= start, Call.started_at < end)
    rows = (await conn.execute(select(*_CALL_COLUMNS).where(window))).all()
    found = await conn.execute(
        select(CallStep.call_id, CallStep.kind, CallStep.outcome, CallStep.input, CallStep.at)
        .join(Call, Call.id == CallStep.call_id)
        .where(window, CallStep.kind.in_(STEP_KINDS))
        .order_by(CallStep.call_id, CallStep.seq)
    )
    steps: dict[str, list[StepFact]] = {}
    for s in found:
        steps.setdefault(s.call_id, []).append(
            StepFact(s.kind, s.outcome, s.input or "", _aware(s.at))
        )
    return [fact_of(r, steps.get(r.id, []), unclassified) for r in rows]


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
