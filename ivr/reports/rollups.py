"""A long report read from the call rollups (models/rollups.py, kept by ivr.store.rollups)
instead of every call row: same counts and means, medians and 90th percentiles from fixed
buckets (MEASURES.md). Grouped only by branch, disposition or calendar days in the hotline's
zone, it reads the per-day rollups (call_days, call_hours; a few thousand rows a month), else the
hourly ones. :func:`report_from_rollups` gives None when they cannot answer: a short
period (raw rows give exact percentiles), non-default thresholds, grouping by phone, a time
zone with a part-hour offset, or rollups that do not count the calls stored (never rebuilt)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import NullType

from ivr.flow.record import Disposition
from ivr.reports.facts import NO_MESSAGE, CallFact, Classify
from ivr.reports.grouping import GROUPINGS, Grouper
from ivr.reports.measures import Durations, Figures, Options, Tally, ratio
from ivr.reports.periods import Period
from ivr.reports.report import Report, _Acc, _finish
from models import Call, call_days, call_hours, call_rollups, lookup_rollups
from models.rollups import BUCKETS, COUNTS, COUNTS_MORE, DAY_ZONE, EDGES, bucket_columns

log = structlog.get_logger("ivr.reports")

MIN_DAYS = 28  # shorter periods read the calls themselves
SUPPORTED = frozenset(GROUPINGS) - {"phone"}


# the sums read per rollup group, in this order
SUMS = (
    *COUNTS,
    *COUNTS_MORE,
    *bucket_columns("wait"),
    *bucket_columns("talk"),
    "wait_sum",
    "talk_sum",
)
AT = {name: i for i, name in enumerate((*SUMS, "voicemail", "no_message"))}
WAIT_B, TALK_B = AT["wait_b0"], AT["talk_b0"]


@dataclass(slots=True)
class BucketTally(Tally):
    """A :class:`Tally` fed with summed rollup rows: durations as count, sum and buckets."""

    parts: list[Sequence[float]] = field(default_factory=list)
    closed: int = 0
    holiday: int = 0

    def add_sums(self, sums: Sequence[float], hours: str) -> None:
        self.parts.append(sums)
        if hours == "closed":
            self.closed += int(sums[0])
        elif hours == "holiday":
            self.holiday += int(sums[0])

    def figures(self) -> Figures:
        vec = [sum(column) for column in zip(*self.parts, strict=True)] or [0.0] * len(AT)
        v = [int(x) for x in vec]
        c = self.counts
        c["received"] = v[AT["calls"]]
        c["received_closed"], c["received_holiday"] = self.closed, self.holiday
        c["received_open"] = c["received"] - self.closed - self.holiday
        for name in ("answered", "abandoned_menu", "abandoned_ringing", "abandoned_short"):
            c[name] = v[AT[name]]
        c["routed"], c["answered_in_time"] = v[AT["routed"]], v[AT["answered_in_time"]]
        c["voicemail"], c["no_answer_no_message"] = v[AT["voicemail"]], v[AT["no_message"]]
        open_calls = c["received"] - c["received_closed"] - c["received_holiday"]
        wait, talk = vec[AT["wait_sum"]], vec[AT["talk_sum"]]
        return Figures(
            **c,
            answered_rate=ratio(c["answered"], open_calls),
            service_level=ratio(c["answered_in_time"], c["routed"]),
            waiting=bucketed(v[AT["wait_n"]], wait, v[WAIT_B : WAIT_B + BUCKETS]),
            talk=bucketed(v[AT["talk_n"]], talk, v[TALK_B : TALK_B + BUCKETS]),
        )


def bucketed(n: int, total: float, hist: Sequence[int]) -> Durations:
    """Exact mean; median and p90 (nearest rank) as the upper edge of the rank's bucket."""
    if n <= 0:
        return Durations(0, None, None, None)
    return Durations(n, round(total / n, 3), _edge(hist, math.ceil(n / 2)), _edge(hist, n * 0.9))


def _edge(hist: Sequence[int], rank: float) -> float:
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= math.ceil(rank):
            return float(EDGES[min(i, len(EDGES) - 1)])
    return float(EDGES[-1])


def usable(period: Period, by: Sequence[str], options: Options, min_days: int) -> bool:
    whole_hours = all(
        (at.utcoffset() or dt.timedelta()).total_seconds() % 3600 == 0
        for at in (period.start, period.end)
    )
    return period.days >= min_days and set(by) <= SUPPORTED and options == Options() and whole_hours


async def report_from_rollups(
    engine: AsyncEngine,
    period: Period,
    by: Sequence[str],
    grouper: Grouper,
    classify: Classify | None,
    options: Options | None = None,
    min_days: int = MIN_DAYS,
) -> Report | None:
    opts = options or Options()
    if not usable(period, by, opts, min_days):
        return None
    if daily(period, by):
        report = await _from_days(engine, period, by, grouper, classify, opts)
        if report is not None:
            return report
    start, end = period.start, period.end
    dims = _dimensions(by)
    t = call_rollups.c
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # compiling its ~60 sums costs more than it saves
            await conn.exec_driver_sql("SET LOCAL jit = off")
        rows = (await conn.execute(_summed(dims, start, end))).all()
        shape = (
            await conn.execute(
                select(t.slot, t.branch, t.digits, func.sum(t.calls))
                .where(t.slot >= start, t.slot < end)
                .group_by(t.slot, t.branch, t.digits)
            )
        ).all()
        stored = await conn.scalar(
            select(func.count()).where(Call.started_at >= start, Call.started_at < end)
        )
        if sum(r[-1] for r in shape) != stored:
            log.warning(
                "bảng tổng hợp không khớp số cuộc gọi: đọc từng cuộc gọi; "
                "chạy `ivr db rollups rebuild`"
            )
            return None
        lookups = await _lookups(conn, start, end)
    acc = _Acc(opts, grouper, by, BucketTally(opts))
    for d, sums in _merged(dims, rows, classify):
        _add(acc, d, sums, classify, start)
    for slot, branch, digits, calls in shape:
        _shape(acc, _aware(slot), branch, digits, int(calls or 0))
    acc.lookups = lookups
    return _finish(acc, period)


async def _lookups(conn: AsyncConnection, start: dt.datetime, end: dt.datetime) -> Counter[str]:
    t = lookup_rollups.c
    found = await conn.execute(
        select(t.code, func.sum(t.lookups)).where(t.slot >= start, t.slot < end).group_by(t.code)
    )
    return Counter({code: int(n) for code, n in found if n})


TIMED = frozenset({"day", "week", "month", "hour", "weekday", "department"})
DAILY = frozenset({"branch", "disposition", "day", "week", "month", "weekday"})


def daily(period: Period, by: Sequence[str]) -> bool:
    """Whether the per-day rollups (call_days) answer: local days of their zone, no grouping by
    unit (folded in) nor by hour."""
    return period.tz == DAY_ZONE and set(by) <= DAILY


async def _from_days(
    engine: AsyncEngine,
    period: Period,
    by: Sequence[str],
    grouper: Grouper,
    classify: Classify | None,
    opts: Options,
) -> Report | None:
    """The report from call_days (a few thousand rows a month) and call_hours (the heat map);
    None when they do not count the calls stored."""
    start, end = period.start, period.end
    t, h = call_days.c, call_hours.c
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET LOCAL jit = off")
        shape = (
            await conn.execute(
                select(t.day, t.branch, t.digits, func.sum(t.calls))
                .where(t.day >= start, t.day < end)
                .group_by(t.day, t.branch, t.digits)
            )
        ).all()
        heat = await conn.execute(select(h.slot, h.calls).where(h.slot >= start, h.slot < end))
        hourly = [(_aware(slot), int(n)) for slot, n in heat if n]
        stored = await conn.scalar(
            select(func.count()).where(Call.started_at >= start, Call.started_at < end)
        )
        if not sum(r[-1] for r in shape) == sum(n for _, n in hourly) == stored:
            log.warning(
                "bảng tổng hợp theo ngày không khớp số cuộc gọi: đọc bảng theo giờ; "
                "chạy `ivr db rollups rebuild`"
            )
            return None
        groups = await _day_measures(conn, by, start, end, classify)
        lookups = await _lookups(conn, start, end)
    acc = _Acc(opts, grouper, by, BucketTally(opts))
    for d, sums in groups:
        _add(acc, d, sums, classify, start)
    for day, branch, digits, calls in shape:
        local = _aware(day).astimezone(grouper.zone)
        acc.per_day[local.date().isoformat()] += int(calls)
        if branch:
            acc.per_branch[branch] += int(calls)
            if digits:
                acc.keys[branch][digits] += int(calls)
    for slot, calls in hourly:
        local = slot.astimezone(grouper.zone)
        acc.heat[local.weekday()][local.hour] += calls
    acc.lookups = lookups
    return _finish(acc, period)


async def _day_measures(
    conn: AsyncConnection,
    by: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    classify: Classify | None,
) -> list[tuple[dict[str, Any], Sequence[float]]]:
    """The measures' sums per office-hours class and what ``by`` needs (the day for a time
    grouping). Calls with no class of their own: their minutes are read first and classified
    here, then summed per class by the database (a CASE over the runs of equal class)."""
    t = call_days.c
    timed = bool(TIMED & set(by))
    keys = [*([t.day] if timed else []), *(t[d] for d in ("branch", "disposition") if d in by)]
    names = ["hours", *("slot" if k.name == "day" else k.name for k in keys)]
    window = and_(t.day >= start, t.day < end)
    rows = list(
        await conn.execute(
            select(t.hours, *keys, *_sums(t)).where(window, t.hours != "").group_by(t.hours, *keys)
        )
    )
    raw_day = type_coerce(t.day, NullType())  # each distinct day converted once, below
    minutes = await conn.execute(
        select(raw_day, t.minute)
        .where(window, t.hours == "")
        .group_by(t.day, t.minute)
        .order_by(t.day, t.minute)
    )
    hours = _classes([(_day(d), m) for d, m in minutes], classify)
    if hours is not None:  # grouped by the CASE's name: evaluated once per row
        rows += await conn.execute(
            select(hours, *keys, *_sums(t))
            .where(window, t.hours == "")
            .group_by(literal_column("state"), *keys)
        )
    n = len(names)
    return [(dict(zip(names, _slot(r[:n]), strict=True)), r[n:]) for r in rows if r[n]]


def _slot(key: Sequence[Any]) -> list[Any]:
    """SQLite gives a CASE's datetime back as text; the rest as they are."""
    return [
        _aware(dt.datetime.fromisoformat(v)) if i == 1 and isinstance(v, str) and " " in v else v
        for i, v in enumerate(key)
    ]


def _classes(minutes: Sequence[tuple[dt.datetime, int]], classify: Classify | None) -> Any:
    """The office-hours class of call_days rows with none, as SQL: ``minutes`` (their day and
    minute, in order) classified one by one, a WHEN per run of equal class."""
    if not minutes:
        return None
    t = call_days.c
    whens: list[tuple[Any, str]] = []
    current = ""
    for day, minute in minutes:
        state = classify(day + dt.timedelta(minutes=minute)) if classify is not None else "open"
        if state != current:
            if current:
                at = tuple_(bindparam(None, day, type_=t.day.type), literal(minute))
                whens.append((tuple_(t.day, t.minute) < at, current))
            current = state
    label = case(*whens, else_=literal(current)) if whens else literal(current)
    return label.label("state")


@lru_cache(maxsize=4096)
def _day(value: Any) -> dt.datetime:
    """A call_days day as read without its column type: text on SQLite."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return _aware(value).astimezone(dt.UTC)


def _dimensions(by: Sequence[str]) -> list[str]:
    """The rollup columns the measures are grouped by: the office-hours class, the slot when a
    grouping needs the time (else only for calls the report classifies), and what ``by`` adds."""
    wanted = set(by)
    dims = ["hours", "slot" if TIMED & wanted else "unclassified"]
    dims += [d for d in ("branch", "unit", "disposition") if d in wanted]
    if "department" in wanted:
        dims += [d for d in ("branch", "unit") if d not in dims]
    return dims


def _sums(t: Any) -> list[Any]:
    """SUMS, then the calls that left a voicemail and those with no answer and no message."""
    of = (
        (t.disposition == Disposition.VOICEMAIL.value),
        t.disposition.in_([d.value for d in NO_MESSAGE]),
    )
    return [
        *(func.sum(t[name]) for name in SUMS),
        *(func.sum(case((cond, t.calls), else_=0)) for cond in of),
    ]


def _summed(dims: list[str], start: dt.datetime, end: dt.datetime) -> Any:
    t = call_rollups.c
    cols = [
        case((t.hours == "", t.slot), else_=None).label(d) if d == "unclassified" else t[d]
        for d in dims
    ]
    return select(*cols, *_sums(t)).where(t.slot >= start, t.slot < end).group_by(*cols)


def _merged(
    dims: list[str], rows: Sequence[Any], classify: Classify | None
) -> Iterator[tuple[dict[str, Any], Sequence[float]]]:
    """The groups to add: without a time grouping, the minutes of calls the report classifies
    are classified here and summed per class (one group per class, not one per minute)."""
    n = len(dims)
    if "unclassified" not in dims:
        yield from ((dict(zip(dims, r[:n], strict=True)), r[n:]) for r in rows if r[n])
        return
    merged: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        if not r[n]:
            continue
        d = dict(zip(dims, r[:n], strict=True))
        slot = d.pop("unclassified")
        if not d["hours"]:
            at = dt.datetime.fromisoformat(slot) if isinstance(slot, str) else slot
            d["hours"] = classify(_aware(at)) if classify is not None else "open"
        key = tuple(d.items())
        sums = merged.get(key)
        merged[key] = (
            list(r[n:]) if sums is None else [a + b for a, b in zip(sums, r[n:], strict=True)]
        )
    for key, sums in merged.items():
        yield dict(key), sums


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _add(
    acc: _Acc,
    d: dict[str, Any],
    sums: Sequence[float],
    classify: Classify | None,
    start: dt.datetime,
) -> None:
    """One group of rollup rows into the total and the groupings."""
    slot = d.get("slot") or d.get("unclassified")
    at = _aware(slot) if isinstance(slot, dt.datetime) else start  # not needed by `by`
    if isinstance(slot, str):  # SQLite gives the CASE's datetime back as text
        at = _aware(dt.datetime.fromisoformat(slot))
    hours = d["hours"] or (classify(at) if classify is not None else "open")
    like = CallFact(
        key="", started_at=at, disposition=d.get("disposition", ""),
        branch=d.get("branch") or None, unit=d.get("unit") or None, endpoint=None,
        digits="", hours=hours, routed=False, answered=False, ring_seconds=0.0,
        waiting_seconds=None, talk_seconds=0.0, abandoned=None, voicemail=False, lookups=(),
    )  # fmt: skip
    assert isinstance(acc.total, BucketTally)
    acc.total.add_sums(sums, hours)
    for by in acc.by:
        group = acc.groups.setdefault(by, {})
        key = acc.grouper.key(by, like)
        tally = group.get(key)
        if tally is None:
            tally = group[key] = BucketTally(acc.options)
        assert isinstance(tally, BucketTally)
        tally.add_sums(sums, hours)


def _shape(acc: _Acc, slot: dt.datetime, branch: str, digits: str, calls: int) -> None:
    """Calls per day, per hour × weekday, per branch, keys per branch."""
    local = slot.astimezone(acc.grouper.zone)
    acc.heat[local.weekday()][local.hour] += calls
    acc.per_day[local.date().isoformat()] += calls
    if branch:
        acc.per_branch[branch] += calls
        if digits:
            acc.keys[branch][digits] += calls
