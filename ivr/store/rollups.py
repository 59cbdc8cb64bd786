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
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.reports.facts import (
    _CALL_COLUMNS,
    DIAL_KINDS,
    RING_OUTCOMES,
    STEP_KINDS,
    CallFact,
    StepFact,
    fact_of,
)
from ivr.reports.measures import Options, is_short_abandon, within_service
from models import Call, CallStep, Purge, call_days, call_hours, call_rollups, lookup_rollups
from models.rollups import (
    BUCKETS,
    COUNTS,
    COUNTS_MORE,
    DAY_KEYS,
    DAY_ZONE,
    EDGES,
    KEYS,
    bucket_columns,
)

Key = tuple[dt.datetime, str, str, str, str, str]  # KEYS
DayKey = tuple[dt.datetime, str, int, str, str, str]  # DAY_KEYS
ZONE = ZoneInfo(DAY_ZONE)
_OFFSET = ZONE.utcoffset(dt.datetime(2020, 1, 1))
assert _OFFSET is not None
assert _OFFSET.total_seconds() % 3600 == 0
OFFSET_HOURS = int(_OFFSET.total_seconds() // 3600)  # the SQLite rebuild's local days
VALUES = (
    *COUNTS,
    *COUNTS_MORE,
    *bucket_columns("wait"),
    *bucket_columns("talk"),
    "wait_sum",
    "talk_sum",
)
FACT_STEPS = frozenset(STEP_KINDS)  # a step of another kind changes no call's facts
DEFAULTS = Options()  # the thresholds the rollups count with (short abandon, service level)
CHUNK = 500


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


def local_midnight(at: dt.datetime) -> dt.datetime:
    """The start (UTC) of the local day ``at`` falls in."""
    return dt.datetime.combine(at.astimezone(ZONE).date(), dt.time(), ZONE).astimezone(dt.UTC)


def day_of(slot: dt.datetime, hours: str) -> tuple[dt.datetime, int]:
    """The local day (its midnight, UTC) of a rollup slot; the minute of that day for a call the
    report classifies, else -1."""
    midnight = local_midnight(slot)
    return midnight, -1 if hours else int((slot - midnight).total_seconds()) // 60


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
        self.hours: Counter[dt.datetime] = Counter()

    @classmethod
    def between(cls, before: Iterable[CallFact], after: Iterable[CallFact]) -> Delta:
        """What turns the facts ``before`` into the facts ``after`` in the rollups."""
        delta = cls()
        for f in before:
            delta.add(f, -1)
        for f in after:
            delta.add(f)
        return delta

    def add(self, f: CallFact, sign: int = 1) -> None:
        slot = slot_of(f)
        key = (slot, f.branch or "", f.unit or "", f.disposition, f.hours, f.digits)
        c = self.calls[key]
        self.hours[slot.replace(minute=0)] += sign
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

    @staticmethod
    def days(changed: dict[Key, dict[str, float | int]]) -> dict[DayKey, dict[str, float | int]]:
        """The call rollups' changes summed per local day (units folded in)."""
        days: dict[DayKey, dict[str, float | int]] = {}
        for (slot, branch, _unit, disposition, hours, digits), values in changed.items():
            day, minute = day_of(slot, hours)
            key = (day, hours, minute, branch, disposition, digits)
            seen = days.get(key)
            days[key] = values if seen is None else {v: seen[v] + values[v] for v in VALUES}
        return days

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """The rows to add, per rollup table (a call whose facts did not change adds none)."""
        changed = {key: _values(c) for key, c in self.calls.items() if any(c.values())}
        calls = [{**dict(zip(KEYS, key, strict=True)), **v} for key, v in changed.items()]
        days = [
            {**dict(zip(DAY_KEYS, key, strict=True)), **values}
            for key, values in self.days(changed).items()
            if any(values.values())
        ]
        lookups = [
            {"slot": slot, "code": code, "lookups": n}
            for (slot, code), n in self.lookups.items()
            if n
        ]
        hours = [{"slot": slot, "calls": n} for slot, n in self.hours.items() if n]
        return {"call_rollups": calls, "call_days": days, "lookup_rollups": lookups,
                "call_hours": hours}  # fmt: skip


_FLOATS = frozenset(v for v in VALUES if v.endswith("_sum"))


def _values(c: defaultdict[str, float]) -> dict[str, float | int]:
    get = c.get
    return {v: get(v, 0.0) if v in _FLOATS else round(get(v, 0)) for v in VALUES}


# Built once: the writer reads the facts of every batch's calls, and building these expressions
# anew cost more than running them (SQLite, a batch of a call or two). One statement: each call
# with its steps of the kinds a report reads, a row per step (one row, its step columns NULL, for
# a call without such steps); Stored.fact puts the steps in order. On PostgreSQL the calls' rows
# are locked as they are read, in key order, until the transaction ends: another writer of the
# same call (a survivor's sweep, its controller's late record, the reconciler) waits, then reads
# what this one left, instead of moving the rollups from facts that were no longer true.
# (SQLite lets one transaction write at a time.)
STEP_FACT_COLUMNS = ("kind", "outcome", "input", "at")  # what a step's fact is made of
_STEP = CallStep.__table__.c
_FACTS_OF = (
    select(*_CALL_COLUMNS, _STEP.seq, *(_STEP[c] for c in STEP_FACT_COLUMNS))
    .outerjoin(CallStep, and_(CallStep.call_id == Call.id, CallStep.kind.in_(STEP_KINDS)))
    .where(Call.id.in_(bindparam("ids", expanding=True)))
    .order_by(Call.id)
    .with_for_update(of=Call)
)
FACT_COLUMNS = tuple(c.key for c in _CALL_COLUMNS)  # what a call's facts are made of


@dataclass(slots=True)
class Stored:
    """What a call's facts are made of, as stored: its fact columns, its steps of the kinds a
    report reads (by their number)."""

    row: dict[str, Any]
    steps: dict[int, StepFact]

    def fact(self) -> CallFact:
        """The call's facts (rollup form: unclassified hours)."""
        ordered = [self.steps[seq] for seq in sorted(self.steps)]
        return fact_of(SimpleNamespace(**self.row), ordered, unclassified)


async def stored_of(conn: AsyncConnection, keys: Collection[str]) -> dict[str, Stored]:
    """What the stored calls among ``keys`` are made of, by key."""
    found: dict[str, Stored] = {}
    keys = list(keys)
    width = len(FACT_COLUMNS)
    for i in range(0, len(keys), CHUNK):
        for r in await conn.execute(_FACTS_OF, {"ids": keys[i : i + CHUNK]}):
            call = found.get(r.id)
            if call is None:
                call = found[r.id] = Stored(dict(zip(FACT_COLUMNS, r[:width], strict=True)), {})
            if r.seq is not None:
                call.steps[r.seq] = step_fact(r)
    return found


def step_fact(s: Any) -> StepFact:
    """A stored step's fact (``s`` has the STEP_FACT_COLUMNS)."""
    at = s.at if s.at.tzinfo is not None else s.at.replace(tzinfo=dt.UTC)
    return StepFact(s.kind, s.outcome, s.input or "", at)


async def facts_of(conn: AsyncConnection, keys: Collection[str]) -> list[CallFact]:
    """The facts of the stored calls among ``keys`` (rollup form: unclassified hours)."""
    return [s.fact() for s in (await stored_of(conn, keys)).values()]


@asynccontextmanager
async def kept(conn: AsyncConnection, keys: Collection[str]) -> AsyncIterator[None]:
    """Run writes to the calls ``keys`` (in ``conn``'s transaction) keeping the rollups equal."""
    before = await facts_of(conn, keys) if keys else []
    yield
    if not keys:
        return
    await apply(conn, Delta.between(before, await facts_of(conn, keys)))


TABLES = (  # each rollup table, its key and the columns a change adds to
    (call_rollups, KEYS, VALUES),
    (call_days, DAY_KEYS, VALUES),
    (lookup_rollups, ("slot", "code"), ("lookups",)),
    (call_hours, ("slot",), ("calls",)),
)


def _upserts(dialect: str) -> dict[str, Any]:
    """Per rollup table, its "add to the row" statement: built once per dialect, not per batch."""
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    found = {}
    for table, keys, values in TABLES:
        stmt = insert(table)
        found[table.name] = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={v: table.c[v] + stmt.excluded[v] for v in values},
        )
    return found


_UPSERTS = {d: _upserts(d) for d in ("sqlite", "postgresql")}


_ORDER = {table.name: keys for table, keys, _ in TABLES}


def in_lock_order(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` of the rollup table ``name`` by key. Every writer adds to the rollups table by
    table (in TABLES' order), row by row in this order, so two transactions adding to the same
    rows (controllers sharing PostgreSQL, the reconciler, the lease sweep) lock them in the same
    order and one waits for the other. In the order a batch happened to list them, each held a
    row the other wanted next: PostgreSQL broke the deadlock by failing one of the batches."""
    keys = _ORDER[name]
    return sorted(rows, key=lambda row: tuple(row[k] for k in keys))


async def apply(conn: AsyncConnection, delta: Delta) -> None:
    upserts = _UPSERTS[conn.dialect.name]
    for name, rows in delta.rows().items():
        rows = in_lock_order(name, rows)
        for i in range(0, len(rows), CHUNK):
            await conn.execute(upserts[name], rows[i : i + CHUNK])


async def rebuild(engine: AsyncEngine) -> int:
    """Recompute every rollup from the calls stored; returns the number of calls counted.
    Idempotent. Calls written while it runs may be counted twice or not at all: run it when
    no controller writes (after `ivr db upgrade`), or run it again.

    After `ivr db purge`, the rollups of the slots before its cut (a local midnight) are kept as
    they are: they count calls no longer stored, which a recount would lose. Only calls that
    started from the cut on are recounted; the per-day rollups are summed again from all.

    One INSERT … SELECT per table, computed by the database (ten million calls in minutes, where
    reading them into Python took an hour): the same facts as :func:`fact_of` and
    :meth:`Delta.add`, which the writer uses and the tests hold it equal to."""
    async with engine.begin() as conn:
        cut = await purged_before(conn)
        sql = RebuildSql(engine.dialect.name, cut)
        if not sql.sqlite:  # compiling the wide statement took 27 s of 30 at 20,000 calls
            await conn.exec_driver_sql("SET LOCAL jit = off")
        for table, _, _ in TABLES:
            kept = cut is not None and table in (call_rollups, lookup_rollups)
            await conn.execute(delete(table).where(table.c.slot >= cut) if kept else delete(table))
        await conn.exec_driver_sql(sql.lookups())
        await conn.exec_driver_sql(sql.calls())
        await conn.exec_driver_sql(sql.days())  # both from call_rollups
        await conn.exec_driver_sql(sql.hours())
        counted = select(func.count()).select_from(Call)
        if cut is not None:
            counted = counted.where(Call.started_at >= cut)
        return int(await conn.scalar(counted) or 0)


async def purged_before(conn: AsyncConnection) -> dt.datetime | None:
    """The latest cut of `ivr db purge` (ivr.store.purge), if any: the rollups before it count
    calls no longer stored."""
    found: dt.datetime | None = await conn.scalar(select(func.max(Purge.before)))
    return found


def _quoted(values: Collection[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


DIALS, RINGS = _quoted(DIAL_KINDS), _quoted(RING_OUTCOMES)
FOUND = "s.kind = 'directory' AND s.outcome IN ('found', 'replaced')"
CHOSEN = f"((s.kind = 'menu' AND s.outcome = 'chosen') OR ({FOUND}))"


class RebuildSql:
    """The rebuild's statements on SQLite (times stored as UTC text) or PostgreSQL."""

    def __init__(self, dialect: str, cut: dt.datetime | None = None) -> None:
        self.sqlite = dialect == "sqlite"
        # keeps a subquery whole: inlined, each use of a column repeats its subqueries
        self.fence = "LIMIT -1" if self.sqlite else "OFFSET 0"
        self.cut = cut  # calls that started before it are not recounted (a purge's)

    def _since(self, col: str) -> str:
        """The condition on a call's start that the purge's cut puts (TRUE without one)."""
        if self.cut is None:
            return "1 = 1"
        at = self.cut.astimezone(dt.UTC)
        if self.sqlite:  # stored as UTC text (models.base.UTCDateTime)
            return f"{col} >= '{at:%Y-%m-%d %H:%M:%S.%f}'"
        return f"{col} >= TIMESTAMPTZ '{at.isoformat()}'"

    def _truncated(self, col: str, unit: str) -> str:
        if self.sqlite:  # 'YYYY-MM-DD HH:MM:SS.ffffff'
            return f"substr({col}, 1, 13) || ':00:00.000000'" if unit == "hour" else (
                f"substr({col}, 1, 16) || ':00.000000'"
            )  # fmt: skip
        return f"date_trunc('{unit}', {col} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"

    def _us(self, col: str) -> str:
        """Microseconds since the epoch, exactly."""
        if self.sqlite:
            return (
                f"(CAST(strftime('%s', substr({col}, 1, 19)) AS INTEGER) * 1000000"
                f" + CAST(substr({col}, 21, 6) AS INTEGER))"
            )
        return f"CAST(extract(epoch FROM {col}) * 1000000 AS BIGINT)"

    def lookups(self) -> str:
        return f"""
            INSERT INTO lookup_rollups (slot, code, lookups)
            SELECT {self._truncated("c.started_at", "hour")}, COALESCE(s.input, ''), count(*)
            FROM call_steps s JOIN calls c ON c.id = s.call_id
            WHERE {FOUND} AND {self._since("c.started_at")}
            GROUP BY 1, 2"""

    def _facts(self) -> str:
        """One row per call: its rollup key and its facts as numbers (see fact_of)."""
        steps = "FROM call_steps s WHERE s.call_id = c.id"
        answer = f"""(SELECT min(s.seq) {steps} AND s.kind IN ({DIALS}) AND s.outcome = 'answered'
            AND EXISTS (SELECT 1 FROM call_steps x WHERE x.call_id = s.call_id AND x.seq < s.seq
                AND {CHOSEN.replace("s.", "x.")}))"""
        first = f"""
            SELECT c.*,
                (SELECT s.outcome {steps} AND s.kind = 'hours' ORDER BY s.seq LIMIT 1) AS hours_of,
                (SELECT max(CASE WHEN s.outcome = 'answered' THEN 2 ELSE 1 END) {steps}
                    AND s.kind IN ({DIALS}) AND s.outcome IN ({RINGS})) AS dialled
            FROM calls c WHERE {self._since("c.started_at")} {self.fence}"""
        second = f"""
            SELECT c.*, CASE WHEN c.dialled = 2 THEN {answer} END AS answer_seq
            FROM ({first}) c {self.fence}"""
        answered = "(c.dialled = 2 OR (c.disposition = 'fallback' AND c.talk_seconds > 0))"
        ringing = "(c.disposition = 'abandoned' AND c.wait_seconds > 0)"
        answer_at = f"(SELECT {self._us('s.at')} {steps} AND s.seq = c.answer_seq)"
        chosen_at = f"""(SELECT {self._us("s.at")} {steps} AND s.seq < c.answer_seq
            AND {CHOSEN} ORDER BY s.seq DESC LIMIT 1)"""
        talk_us = "CAST(round(c.talk_seconds * 1000000) AS BIGINT)"
        bigger = "max" if self.sqlite else "greatest"
        hours = "COALESCE(c.hours_of, '')"
        return f"""
            SELECT
                CASE WHEN {hours} = '' THEN {self._truncated("c.started_at", "minute")}
                    ELSE {self._truncated("c.started_at", "hour")} END AS slot,
                COALESCE(c.branch, '') AS branch, COALESCE(c.unit, '') AS unit,
                c.disposition, {hours} AS hours, COALESCE(c.digits, '') AS digits,
                CASE WHEN {answered} THEN 1 ELSE 0 END AS answered,
                CASE WHEN c.disposition = 'abandoned' AND NOT {ringing} THEN 1 ELSE 0 END AS menu,
                CASE WHEN {ringing} THEN 1 ELSE 0 END AS ringing,
                CASE WHEN {ringing} AND c.wait_seconds < {DEFAULTS.short_abandon_seconds}
                    THEN 1 ELSE 0 END AS short,
                CASE WHEN c.dialled IS NOT NULL OR {ringing} THEN 1 ELSE 0 END AS routed,
                CASE WHEN {answered} AND (c.dialled IS NOT NULL OR {ringing})
                    AND c.wait_seconds <= {DEFAULTS.service_seconds} THEN 1 ELSE 0 END AS in_time,
                CASE WHEN c.answer_seq IS NOT NULL THEN
                    CAST({bigger}(0, {answer_at} - {talk_us} - {chosen_at}) AS DOUBLE PRECISION)
                    / 1000000 END AS wait,
                CASE WHEN {answered} THEN c.talk_seconds END AS talk
            FROM ({second}) c {self.fence}"""

    def calls(self) -> str:
        def buckets(measure: str) -> list[str]:
            edges = " ".join(f"WHEN {measure} < {e} THEN {i}" for i, e in enumerate(EDGES))
            index = f"CASE WHEN {measure} IS NULL THEN NULL {edges} ELSE {BUCKETS - 1} END"
            return [f"sum(CASE WHEN {index} = {i} THEN 1 ELSE 0 END)" for i in range(BUCKETS)]

        sums = [
            "count(*)", "sum(answered)", "sum(menu)", "sum(ringing)", "sum(short)",
            "sum(routed)", "sum(in_time)", "count(wait)", "count(talk)",
            *buckets("wait"), *buckets("talk"),
            "COALESCE(sum(wait), 0)", "COALESCE(sum(talk), 0)",
        ]  # fmt: skip
        assert len(sums) == len(VALUES)
        return f"""
            INSERT INTO call_rollups ({", ".join((*KEYS, *VALUES))})
            SELECT {", ".join(KEYS)}, {", ".join(sums)}
            FROM ({self._facts()}) f
            GROUP BY {", ".join(KEYS)}"""

    def days(self) -> str:
        """call_days from call_rollups: the same sums per local day (as :meth:`Delta.days`)."""
        if self.sqlite:
            local = f"date(substr(slot, 1, 19), '+{OFFSET_HOURS} hours')"
            day = f"datetime({local}, '-{OFFSET_HOURS} hours') || '.000000'"
            minute = (
                f"(CAST(strftime('%s', substr(slot, 1, 19)) AS INTEGER)"
                f" - CAST(strftime('%s', {local}) AS INTEGER) + {OFFSET_HOURS * 3600}) / 60"
            )
        else:
            zone = f"'{DAY_ZONE}'"
            day = f"(date_trunc('day', slot AT TIME ZONE {zone}) AT TIME ZONE {zone})"
            minute = f"CAST(extract(epoch FROM slot - {day}) AS INTEGER) / 60"
        return f"""
            INSERT INTO call_days ({", ".join((*DAY_KEYS, *VALUES))})
            SELECT {day}, hours, CASE WHEN hours = '' THEN {minute} ELSE -1 END, branch,
                disposition, digits, {", ".join(f"sum({v})" for v in VALUES)}
            FROM call_rollups GROUP BY 1, 2, 3, 4, 5, 6"""

    def hours(self) -> str:
        return f"""
            INSERT INTO call_hours (slot, calls)
            SELECT {self._truncated("slot", "hour")}, sum(calls) FROM call_rollups GROUP BY 1"""
