"""A long report read from the call rollups (models/rollups.py, kept by ivr.store.rollups)
instead of every call row: same counts and means, medians and 90th percentiles from fixed
buckets (MEASURES.md). :func:`report_from_rollups` gives None when they cannot answer: a short
period (raw rows give exact percentiles), non-default thresholds, grouping by phone, a time
zone with a part-hour offset, or rollups that do not count the calls stored (never rebuilt)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.record import Disposition
from ivr.reports.facts import NO_MESSAGE, CallFact, Classify
from ivr.reports.grouping import GROUPINGS, Grouper
from ivr.reports.measures import Durations, Figures, Options, Tally, ratio
from ivr.reports.periods import Period
from ivr.reports.report import Report, _Acc, _finish
from models import Call, call_rollups, lookup_rollups
from models.rollups import BUCKETS, COUNTS, COUNTS_MORE, EDGES, bucket_columns

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

    vec: list[float] = field(default_factory=lambda: [0] * len(AT))
    closed: int = 0
    holiday: int = 0

    def add_sums(self, sums: Sequence[float], hours: str) -> None:
        self.vec = [a + b for a, b in zip(self.vec, sums, strict=True)]
        if hours == "closed":
            self.closed += int(sums[0])
        elif hours == "holiday":
            self.holiday += int(sums[0])

    def figures(self) -> Figures:
        v = [int(x) for x in self.vec]
        c = self.counts
        c["received"] = v[AT["calls"]]
        c["received_closed"], c["received_holiday"] = self.closed, self.holiday
        c["received_open"] = c["received"] - self.closed - self.holiday
        for name in ("answered", "abandoned_menu", "abandoned_ringing", "abandoned_short"):
            c[name] = v[AT[name]]
        c["routed"], c["answered_in_time"] = v[AT["routed"]], v[AT["answered_in_time"]]
        c["voicemail"], c["no_answer_no_message"] = v[AT["voicemail"]], v[AT["no_message"]]
        open_calls = c["received"] - c["received_closed"] - c["received_holiday"]
        wait, talk = self.vec[AT["wait_sum"]], self.vec[AT["talk_sum"]]
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
    start, end = period.start, period.end
    dims = _dimensions(by)
    async with engine.connect() as conn:
        rows = (await conn.execute(_summed(dims, start, end))).all()
        stored = await conn.scalar(
            select(func.count()).where(Call.started_at >= start, Call.started_at < end)
        )
        if sum(r[len(dims)] for r in rows) != stored:
            log.warning(
                "bảng tổng hợp không khớp số cuộc gọi: đọc từng cuộc gọi; "
                "chạy `ivr db rollups rebuild`"
            )
            return None
        found = await conn.execute(
            select(lookup_rollups.c.code, func.sum(lookup_rollups.c.lookups))
            .where(lookup_rollups.c.slot >= start, lookup_rollups.c.slot < end)
            .group_by(lookup_rollups.c.code)
        )
        lookups = Counter({code: int(n) for code, n in found if n})
    acc = _Acc(opts, grouper, by, BucketTally(opts))
    for r in rows:
        if r[len(dims)]:
            _add(acc, dict(zip(dims, r, strict=False)), r[len(dims) :], classify)
    acc.lookups = lookups
    return _finish(acc, period)


def _dimensions(by: Sequence[str]) -> list[str]:
    """The rollup columns to group by: what every report needs, and what ``by`` adds."""
    dims = ["slot", "branch", "digits", "hours"]
    if {"unit", "department"} & set(by):
        dims.append("unit")
    if "disposition" in by:
        dims.append("disposition")
    return dims


def _summed(dims: list[str], start: dt.datetime, end: dt.datetime) -> Any:
    t = call_rollups.c
    cols = [t[d] for d in dims]
    of = (
        (t.disposition == Disposition.VOICEMAIL.value),
        t.disposition.in_([d.value for d in NO_MESSAGE]),
    )
    return (
        select(
            *cols,
            *(func.sum(t[name]) for name in SUMS),
            *(func.sum(case((cond, t.calls), else_=0)) for cond in of),
        )
        .where(t.slot >= start, t.slot < end)
        .group_by(*cols)
    )


def _add(acc: _Acc, d: dict[str, Any], sums: Sequence[float], classify: Classify | None) -> None:
    slot = d["slot"] if d["slot"].tzinfo is not None else d["slot"].replace(tzinfo=dt.UTC)
    hours = d["hours"] or (classify(slot) if classify is not None else "open")
    calls = int(sums[0])
    like = CallFact(
        key="", started_at=slot, disposition=d.get("disposition", ""),
        branch=d["branch"] or None, unit=d.get("unit") or None, endpoint=None,
        digits=d["digits"], hours=hours, routed=False, answered=False, ring_seconds=0.0,
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
    local = slot.astimezone(acc.grouper.zone)
    acc.heat[local.weekday()][local.hour] += calls
    acc.per_day[local.date().isoformat()] += calls
    if d["branch"]:
        acc.per_branch[d["branch"]] += calls
        if d["digits"]:
            acc.keys[d["branch"]][d["digits"]] += calls
