"""Case and satisfaction figures for a period, for the reports (ivr.reports). Pure.

Call :func:`period_figures` with facts (read by :func:`ivr.cases.facts.read_facts`, or built by
hand in a test) and the period's first instant (included) and the first instant after it.
Definitions:

- received: cases received in the period;
- resolved: cases answered (đã trả lời) in the period; on_time: those answered on or before their
  answer deadline (local day); rejected: cases refused (từ chối) in the period;
- overdue: cases received before the period's end, still unanswered and not refused at its end,
  whose answer deadline is a day before the day the period ends on;
- satisfaction: answers given in the period, each on its own scale (2–5 points, the survey
  node's ``scale`` when it was given; Zalo's rating is 1–5). CSAT is the share, in percent, of
  answers *above the middle of their scale* (score > (scale + 1) / 2): 4–5 of 5, 3–4 of 4, 3 of
  3, 2 of 2 — the top two boxes of a 5-point scale, the top one of a 3-point. The mean is taken
  on the 5-point scale: a score s of n points counts as 1 + 4 (s − 1) / (n − 1), so answers on
  different scales can be averaged (1 of 3 → 1, 2 of 3 → 3, 3 of 3 → 5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class CaseFact:
    received_at: dt.datetime
    status: str
    category: str
    owner: str  # unit code or branch:N
    owner_name: str
    answer_due: dt.date
    answered_at: dt.datetime | None = None
    rejected_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ScoreFact:
    answered_at: dt.datetime
    score: int
    source: str = "ivr"
    branch: str | None = None
    unit: str | None = None
    endpoint: str | None = None
    scale: int = 5  # the points of the scale the score was given on (2–5)


def satisfied(score: int, scale: int) -> bool:
    """Above the middle of its scale (see the module's definitions)."""
    return 2 * score > scale + 1


def on_five(score: int, scale: int) -> float:
    """The score moved onto the 5-point scale, its ends kept (1 → 1, ``scale`` → 5)."""
    return 1 + 4 * (score - 1) / (scale - 1)


@dataclass
class CaseCounts:
    received: int = 0
    resolved: int = 0
    on_time: int = 0
    rejected: int = 0
    overdue: int = 0


@dataclass(frozen=True, slots=True)
class Satisfaction:
    answers: int
    mean: float | None  # None when nobody answered
    csat_percent: float | None


@dataclass
class PeriodFigures:
    cases: CaseCounts = field(default_factory=CaseCounts)
    by_category: dict[str, CaseCounts] = field(default_factory=dict)
    by_owner: dict[str, CaseCounts] = field(default_factory=dict)
    owner_names: dict[str, str] = field(default_factory=dict)
    satisfaction: Satisfaction = Satisfaction(0, None, None)
    satisfaction_by_branch: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_endpoint: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_source: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_month: dict[str, Satisfaction] = field(default_factory=dict)  # "YYYY-MM"


def period_figures(
    cases: Iterable[CaseFact],
    scores: Iterable[ScoreFact],
    start: dt.datetime,
    end: dt.datetime,
    tz: str = "Asia/Ho_Chi_Minh",
) -> PeriodFigures:
    out = PeriodFigures()
    end_day = end.astimezone(ZoneInfo(tz)).date()
    for c in cases:
        counts = [
            out.cases,
            out.by_category.setdefault(c.category, CaseCounts()),
            out.by_owner.setdefault(c.owner, CaseCounts()),
        ]
        out.owner_names[c.owner] = c.owner_name
        for k in counts:
            _count(k, c, start, end, end_day, tz)
    kept = [s for s in scores if start <= s.answered_at < end]
    out.satisfaction = _satisfaction(kept)
    out.satisfaction_by_branch = _grouped(kept, lambda s: s.branch)
    out.satisfaction_by_endpoint = _grouped(kept, lambda s: s.endpoint)
    out.satisfaction_by_source = _grouped(kept, lambda s: s.source)
    zone = ZoneInfo(tz)
    out.satisfaction_by_month = _grouped(kept, lambda s: f"{s.answered_at.astimezone(zone):%Y-%m}")
    return out


def _within(at: dt.datetime | None, start: dt.datetime, end: dt.datetime) -> bool:
    return at is not None and start <= at < end


def _count(
    k: CaseCounts, c: CaseFact, start: dt.datetime, end: dt.datetime, end_day: dt.date, tz: str
) -> None:
    k.received += _within(c.received_at, start, end)
    if _within(c.answered_at, start, end):
        assert c.answered_at is not None
        k.resolved += 1
        k.on_time += c.answered_at.astimezone(ZoneInfo(tz)).date() <= c.answer_due
    k.rejected += _within(c.rejected_at, start, end)
    still_open = (
        c.received_at < end
        and (c.answered_at is None or c.answered_at >= end)
        and (c.rejected_at is None or c.rejected_at >= end)
    )
    k.overdue += still_open and c.answer_due < end_day


def _satisfaction(answers: Iterable[ScoreFact]) -> Satisfaction:
    kept = list(answers)
    if not kept:
        return Satisfaction(0, None, None)
    good = sum(1 for a in kept if satisfied(a.score, a.scale))
    mean = sum(on_five(a.score, a.scale) for a in kept) / len(kept)
    return Satisfaction(len(kept), round(mean, 2), round(100 * good / len(kept), 1))


def _grouped(
    kept: list[ScoreFact], key: Callable[[ScoreFact], str | None]
) -> dict[str, Satisfaction]:
    groups: dict[str, list[ScoreFact]] = {}
    for s in kept:
        groups.setdefault(key(s) or "", []).append(s)
    return {k: _satisfaction(v) for k, v in sorted(groups.items())}
