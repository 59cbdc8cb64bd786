"""The report: one plain function from call facts to a typed :class:`Report`, which every face
(the terminal, CSV, XLSX, JSON, PNG, the Ministry's DOCX, a web console) renders."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ivr.reports.facts import CallFact
from ivr.reports.feedback import Complaints, Feedback, Satisfaction
from ivr.reports.grouping import Grouper
from ivr.reports.measures import Figures, Options, Tally
from ivr.reports.periods import Period

MEASURES_DOC = "ivr/reports/MEASURES.md"


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    options: Options
    total: Figures
    groups: dict[str, list[Row]]  # by grouping name, rows in key order
    per_day: dict[str, int]  # local day → calls received (every day of the period)
    per_branch: dict[str, int]  # branch → calls received
    heatmap: list[list[int]]  # [weekday 0=Monday][hour] → calls received
    busiest_hour: int | None
    busiest_weekday: int | None  # 1 = Monday … 7 = Sunday
    keys_per_branch: dict[str, dict[str, int]]  # branch → keys pressed (digits) → calls
    lookups_per_unit: dict[str, int]  # unit code keyed in the directory → lookups
    branch_names: dict[str, str] = field(default_factory=dict)
    # complaint cases and survey answers (ivr.reports.feedback); None: not read (no store)
    complaints: Complaints | None = None
    complaints_by_owner: dict[str, Complaints] = field(default_factory=dict)  # unit / branch:N
    owner_names: dict[str, str] = field(default_factory=dict)
    complaints_by_category: dict[str, Complaints] = field(default_factory=dict)
    satisfaction: Satisfaction | None = None
    satisfaction_by_branch: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_phone: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_month: dict[str, Satisfaction] = field(default_factory=dict)  # "YYYY-MM"
    measures_doc: str = MEASURES_DOC


@dataclass(slots=True)
class _Acc:
    options: Options
    grouper: Grouper
    by: Sequence[str]
    total: Tally
    groups: dict[str, dict[str, Tally]] = field(default_factory=dict)
    heat: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])
    per_day: Counter[str] = field(default_factory=Counter)
    per_branch: Counter[str] = field(default_factory=Counter)
    keys: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lookups: Counter[str] = field(default_factory=Counter)

    def add(self, f: CallFact) -> None:
        self.total.add(f)
        for by in self.by:
            key = self.grouper.key(by, f)
            group = self.groups.setdefault(by, {})
            if key not in group:
                group[key] = Tally(self.options)
            group[key].add(f)
        local = f.started_at.astimezone(self.grouper.zone)
        self.heat[local.weekday()][local.hour] += 1
        self.per_day[local.date().isoformat()] += 1
        if f.branch is not None:
            self.per_branch[f.branch] += 1
            if f.digits:
                self.keys[f.branch][f.digits] += 1
        for code in f.lookups:
            self.lookups[code] += 1


async def build_report(
    facts: AsyncIterable[CallFact],
    period: Period,
    by: Sequence[str],
    grouper: Grouper,
    options: Options | None = None,
) -> Report:
    opts = options or Options()
    acc = _Acc(opts, grouper, by, Tally(opts))
    async for f in facts:
        acc.add(f)
    return _finish(acc, period)


def _finish(acc: _Acc, period: Period) -> Report:
    g = acc.grouper
    groups = {
        by: [
            Row(k, g.label(by, k), t.figures())
            for k, t in sorted(acc.groups.get(by, {}).items(), key=lambda kv: _order(kv[0]))
        ]
        for by in acc.by
    }
    days = {
        (period.first + dt.timedelta(days=i)).isoformat(): 0 for i in range(min(period.days, 3660))
    }
    days.update(acc.per_day)
    hours = [sum(row[h] for row in acc.heat) for h in range(24)]
    weekdays = [sum(row) for row in acc.heat]
    names = {k: b.name for k, b in g.routing.branches.items()} if g.routing else {}
    return Report(
        period=period,
        options=acc.options,
        total=acc.total.figures(),
        groups=groups,
        per_day=days,
        per_branch=dict(sorted(acc.per_branch.items(), key=lambda kv: _order(kv[0]))),
        heatmap=acc.heat,
        busiest_hour=hours.index(max(hours)) if any(hours) else None,
        busiest_weekday=weekdays.index(max(weekdays)) + 1 if any(weekdays) else None,
        keys_per_branch={b: dict(c.most_common()) for b, c in sorted(acc.keys.items())},
        lookups_per_unit=dict(acc.lookups.most_common()),
        branch_names=names,
    )


def with_feedback(report: Report, fb: Feedback) -> Report:
    """The report with the period's complaint cases and survey answers."""
    return dataclasses.replace(
        report,
        complaints=fb.complaints,
        complaints_by_owner=fb.complaints_by_owner,
        owner_names=fb.owner_names,
        complaints_by_category=fb.complaints_by_category,
        satisfaction=fb.satisfaction,
        satisfaction_by_branch=dict(sorted(fb.satisfaction_by_branch.items(), key=_by_key)),
        satisfaction_by_phone=fb.satisfaction_by_phone,
        satisfaction_by_month=fb.satisfaction_by_month,
    )


def _by_key(kv: tuple[str, object]) -> tuple[int, int | str]:
    return _order(kv[0])


def _order(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def local_today(tz: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()
