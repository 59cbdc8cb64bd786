"""Complaint cases and satisfaction on the Báo cáo page: the figures `ivr report` computes
(the report's complaints and satisfaction, from ivr.reports), laid out as the page's tables.
Nothing here counts: it only picks and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.reports.feedback import Complaints, Satisfaction
from ivr.reports.report import Report

Columns = tuple[tuple[str, str, str], ...]  # (figure, header, kind)
COMPLAINT_COLUMNS: Columns = (
    ("received", "Tiếp nhận", "count"),
    ("resolved", "Đã trả lời", "count"),
    ("on_time", "Đúng hạn", "count"),
    ("on_time_rate", "Tỷ lệ đúng hạn", "rate"),
    ("rejected", "Từ chối", "count"),
    ("overdue", "Quá hạn chưa trả lời", "count"),
)
SATISFACTION_COLUMNS: Columns = (
    ("answers", "Lượt đánh giá", "count"),
    ("mean", "Điểm trung bình (1–5)", "mean"),
    ("csat_rate", "Hài lòng (4–5 điểm)", "rate"),
)


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    values: dict[str, float | int | None]


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: Columns
    lines: list[Line]


def _complaint(key: str, label: str, c: Complaints) -> Line:
    return Line(key, label, {k: getattr(c, k) for k, _, _ in COMPLAINT_COLUMNS})


def _satisfied(key: str, label: str, s: Satisfaction) -> Line:
    return Line(key, label, {k: getattr(s, k) for k, _, _ in SATISFACTION_COLUMNS})


def tables(report: Report) -> list[Table]:
    out: list[Table] = []
    cols: Columns
    if report.complaints is not None:
        cols = COMPLAINT_COLUMNS
        out += [
            Table("complaints", "Phản ánh, kiến nghị: cả kỳ", cols, [
                _complaint("total", "Cả kỳ", report.complaints)
            ]),
            Table("complaints-by-category", "Phản ánh, kiến nghị theo loại", cols, [
                _complaint(k, k, c) for k, c in report.complaints_by_category.items()
            ]),
            Table("complaints-by-owner", "Phản ánh, kiến nghị theo đơn vị xử lý", cols, [
                _complaint(k, report.owner_names.get(k) or k, c)
                for k, c in report.complaints_by_owner.items()
            ]),
        ]  # fmt: skip
    if report.satisfaction is not None:
        cols = SATISFACTION_COLUMNS
        names = report.branch_names
        out += [
            Table("csat", "Mức độ hài lòng: cả kỳ", cols, [
                _satisfied("total", "Cả kỳ", report.satisfaction)
            ]),
            Table("csat-by-branch", "Mức độ hài lòng theo nhánh", cols, [
                _satisfied(k, f"{k}. {names[k]}" if k in names else k, s)
                for k, s in report.satisfaction_by_branch.items()
            ]),
            Table("csat-by-phone", "Mức độ hài lòng theo máy bàn", cols, [
                _satisfied(k, k, s) for k, s in report.satisfaction_by_phone.items()
            ]),
            Table("csat-by-month", "Mức độ hài lòng theo tháng", cols, [
                _satisfied(k, f"{k[5:7]}/{k[:4]}", s)
                for k, s in sorted(report.satisfaction_by_month.items())
            ]),
        ]  # fmt: skip
    return out


def shown(value: float | int | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f} %".replace(".", ",")
    if kind == "mean":
        return f"{value:.2f}".replace(".", ",")
    return str(value)


def as_context(found: list[Table]) -> list[dict[str, Any]]:
    """The tables as the template draws them: each cell's text and its raw value."""
    return [
        {
            "id": t.id,
            "title": t.title,
            "headers": [h for _, h, _ in t.columns],
            "rows": [
                (
                    line.key,
                    line.label,
                    [(k, line.values[k], shown(line.values[k], kind)) for k, _, kind in t.columns],
                )
                for line in t.lines
            ],
        }
        for t in found
    ]
