"""Complaint cases and satisfaction answers in the report, from ivr.cases.figures (pure).

The figures are defined once, in :mod:`ivr.cases.figures`; here they take the report's shape:
rates as fractions (0..1, like every rate of the report), cases by owner (a unit's code or
``branch:N``) and category, answers by branch, by the phone that answered and by month.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.cases import figures as cf


@dataclass(frozen=True, slots=True)
class Complaints:
    received: int = 0
    resolved: int = 0  # answered (đã trả lời) in the period
    on_time: int = 0  # of those, answered by their answer deadline
    rejected: int = 0
    overdue: int = 0  # still unanswered at the period's end, past their deadline
    on_time_rate: float | None = None  # on_time ÷ resolved


@dataclass(frozen=True, slots=True)
class Satisfaction:
    answers: int = 0
    mean: float | None = None  # 1..5, each answer moved onto the 5-point scale
    csat_rate: float | None = (
        None  # answers above their scale's middle ÷ answers (ivr.cases.figures)
    )


@dataclass(frozen=True, slots=True)
class Feedback:
    complaints: Complaints
    complaints_by_owner: dict[str, Complaints] = field(default_factory=dict)
    owner_names: dict[str, str] = field(default_factory=dict)
    complaints_by_category: dict[str, Complaints] = field(default_factory=dict)
    satisfaction: Satisfaction = Satisfaction()
    satisfaction_by_branch: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_phone: dict[str, Satisfaction] = field(default_factory=dict)
    satisfaction_by_month: dict[str, Satisfaction] = field(default_factory=dict)  # "YYYY-MM"


def complaints(c: cf.CaseCounts) -> Complaints:
    rate = c.on_time / c.resolved if c.resolved else None
    return Complaints(c.received, c.resolved, c.on_time, c.rejected, c.overdue, rate)


def satisfaction(s: cf.Satisfaction) -> Satisfaction:
    csat = None if s.csat_percent is None else round(s.csat_percent / 100, 3)
    return Satisfaction(s.answers, s.mean, csat)


def feedback(f: cf.PeriodFigures) -> Feedback:
    return Feedback(
        complaints=complaints(f.cases),
        complaints_by_owner={k: complaints(v) for k, v in sorted(f.by_owner.items())},
        owner_names=dict(sorted(f.owner_names.items())),
        complaints_by_category={k: complaints(v) for k, v in sorted(f.by_category.items())},
        satisfaction=satisfaction(f.satisfaction),
        satisfaction_by_branch={
            k: satisfaction(v) for k, v in f.satisfaction_by_branch.items() if k
        },
        satisfaction_by_phone={
            k: satisfaction(v) for k, v in f.satisfaction_by_endpoint.items() if k
        },
        satisfaction_by_month={k: satisfaction(v) for k, v in f.satisfaction_by_month.items()},
    )


def complaints_text(c: Complaints) -> str:
    """One sentence's worth, for the Ministry's report and the terminal."""
    rate = "–" if c.on_time_rate is None else f"{c.on_time_rate * 100:.1f} %".replace(".", ",")
    return (
        f"tiếp nhận {c.received}; đã trả lời {c.resolved}, trong đó đúng hạn {c.on_time} "
        f"({rate}); từ chối {c.rejected}; quá hạn chưa trả lời {c.overdue}"
    )


def satisfaction_text(s: Satisfaction) -> str:
    if not s.answers:
        return "chưa có lượt đánh giá nào trong kỳ"
    mean = f"{s.mean:.2f}".replace(".", ",")
    csat = "–" if s.csat_rate is None else f"{s.csat_rate * 100:.1f} %".replace(".", ",")
    return (
        f"{s.answers} lượt đánh giá, điểm trung bình {mean}/5, "
        f"tỷ lệ hài lòng (điểm trên mức giữa thang) {csat}"
    )
