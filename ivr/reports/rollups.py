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
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.record import Disposition
from ivr.reports.facts import NO_MESSAGE, CallFact, Classify
from ivr.reports.grouping import GROUPINGS, Grouper
from ivr.reports.measures import Durations, Figures, Options, Tally, ratio
from ivr.reports.periods import Period
from ivr.reports.report import Report, _Acc, _finish
from models import Call, call_rollups, lookup_rollups
from models.rollups import BUCKETS, EDGES, bucket_columns

log = structlog.get_logger("ivr.reports")

MIN_DAYS = 28  # shorter periods read the calls themselves
SUPPORTED = frozenset(GROUPINGS) - {"phone"}
WAIT, TALK = bucket_columns("wait"), bucket_columns("talk")


@dataclass(slots=True)
class BucketTally(Tally):
    """A :class:`Tally` fed with rollup rows: durations as count, sum and buckets."""

    sums: dict[str, float] = field(default_factory=lambda: {"wait": 0.0, "talk": 0.0})
    ns: dict[str, int] = field(default_factory=lambda: {"wait": 0, "talk": 0})
    hist: dict[str, list[int]] = field(
        default_factory=lambda: {"wait": [0] * BUCKETS, "talk": [0] * BUCKETS}
    )

    def add_row(self, r: Any, hours: str) -> None:
        c, n = self.counts, int(r.calls)
        c["received"] += n
        c[f"received_{hours}" if hours in ("closed", "holiday") else "received_open"] += n
        for name in ("answered", "abandoned_menu", "abandoned_ringing", "abandoned_short"):
            c[name] += r._mapping[name]
        c["voicemail"] += n if r.disposition == Disposition.VOICEMAIL else 0
        c["no_answer_no_message"] += n if r.disposition in NO_MESSAGE else 0
        c["routed"] += r.routed
        c["answered_in_time"] += r.answered_in_time
        for m, cols in (("wait", WAIT), ("talk", TALK)):
            self.ns[m] += r._mapping[f"{m}_n"]
            self.sums[m] += r._mapping[f"{m}_sum"]
            h = self.hist[m]
            for i, col in enumerate(cols):
                h[i] += r._mapping[col]

    def figures(self) -> Figures:
        c = self.counts
        open_calls = c["received"] - c["received_closed"] - c["received_holiday"]
        return Figures(
            **c,
            answered_rate=ratio(c["answered"], open_calls),
            service_level=ratio(c["answered_in_time"], c["routed"]),
            waiting=bucketed(self.ns["wait"], self.sums["wait"], self.hist["wait"]),
            talk=bucketed(self.ns["talk"], self.sums["talk"], self.hist["talk"]),
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
    async with engine.connect() as conn:
        slots = and_(call_rollups.c.slot >= start, call_rollups.c.slot < end)
        rows = (await conn.execute(select(call_rollups).where(slots))).all()
        stored = await conn.scalar(
            select(func.count()).where(Call.started_at >= start, Call.started_at < end)
        )
        if sum(r.calls for r in rows) != stored:
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
        if r.calls:
            _add(acc, r, classify)
    acc.lookups = lookups
    return _finish(acc, period)


def _add(acc: _Acc, r: Any, classify: Classify | None) -> None:
    slot = r.slot if r.slot.tzinfo is not None else r.slot.replace(tzinfo=dt.UTC)
    hours = r.hours or (classify(slot) if classify is not None else "open")
    like = CallFact(
        key="", started_at=slot, disposition=r.disposition, branch=r.branch or None,
        unit=r.unit or None, endpoint=None, digits=r.digits, hours=hours, routed=False,
        answered=False, ring_seconds=0.0, waiting_seconds=None, talk_seconds=0.0,
        abandoned=None, voicemail=False, lookups=(),
    )  # fmt: skip
    assert isinstance(acc.total, BucketTally)
    acc.total.add_row(r, hours)
    for by in acc.by:
        group = acc.groups.setdefault(by, {})
        key = acc.grouper.key(by, like)
        tally = group.get(key)
        if tally is None:
            tally = group[key] = BucketTally(acc.options)
        assert isinstance(tally, BucketTally)
        tally.add_row(r, hours)
    local = slot.astimezone(acc.grouper.zone)
    acc.heat[local.weekday()][local.hour] += r.calls
    acc.per_day[local.date().isoformat()] += r.calls
    if r.branch:
        acc.per_branch[r.branch] += r.calls
        if r.digits:
            acc.keys[r.branch][r.digits] += r.calls
