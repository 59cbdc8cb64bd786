"""The report as text: a terminal table, CSV (UTF-8 with BOM, for Excel), JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

from ivr.reports.columns import COLUMNS, shown
from ivr.reports.feedback import Complaints, Satisfaction, complaints_text, satisfaction_text
from ivr.reports.grouping import WEEKDAYS
from ivr.reports.report import Report, Row

BOM = "\ufeff"


def rows_of(report: Report) -> list[tuple[str, list[Row]]]:
    """(grouping, rows) for each grouping asked, ending with the whole period's total."""
    total = Row("total", "Tổng", report.total)
    return [*((by, rows) for by, rows in report.groups.items()), ("total", [total])]


def table(report: Report) -> str:
    out = [f"Báo cáo tổng đài {report.period.label()} (định nghĩa: {report.measures_doc})"]
    for by, rows in rows_of(report):
        out.append("")
        out.append(f"Theo {by}:" if by != "total" else "Cả kỳ:")
        width = max(len(r.label) for r in rows)
        for r in rows:
            cells = [f"{c.header}: {shown(c.value(r.figures), c.kind)}" for c in COLUMNS]
            out.append(f"  {r.label.ljust(width)}  " + "; ".join(cells))
    out.append("")
    if report.busiest_hour is not None and report.busiest_weekday is not None:
        out.append(
            f"Giờ đông nhất: {report.busiest_hour:02d}:00; "
            f"ngày đông nhất: {WEEKDAYS[report.busiest_weekday - 1]}"
        )
    out += _feedback_lines(report)
    return "\n".join(out) + "\n"


def _feedback_lines(report: Report) -> list[str]:
    out: list[str] = []
    if report.complaints is not None:
        out += ["", f"Phản ánh, kiến nghị: {complaints_text(report.complaints)}"]
        for key, c in report.complaints_by_owner.items():
            out.append(f"  {report.owner_names.get(key) or key}: {complaints_text(c)}")
    if report.satisfaction is not None:
        out += ["", f"Mức độ hài lòng: {satisfaction_text(report.satisfaction)}"]
        for key, sat in report.satisfaction_by_branch.items():
            out.append(f"  Nhánh {key}: {satisfaction_text(sat)}")
        if len(report.satisfaction_by_month) > 1:
            for key, sat in report.satisfaction_by_month.items():
                out.append(f"  Tháng {key[5:]}/{key[:4]}: {satisfaction_text(sat)}")
    return out


FeedbackValue = Callable[[Complaints | None, Satisfaction | None], float | int | None]
FEEDBACK_COLUMNS: tuple[tuple[str, str, FeedbackValue], ...] = (
    ("PAKN tiếp nhận", "count", lambda c, s: c.received if c else None),
    ("PAKN đã trả lời", "count", lambda c, s: c.resolved if c else None),
    ("PAKN đúng hạn", "count", lambda c, s: c.on_time if c else None),
    ("PAKN từ chối", "count", lambda c, s: c.rejected if c else None),
    ("PAKN quá hạn", "count", lambda c, s: c.overdue if c else None),
    ("Lượt đánh giá", "count", lambda c, s: s.answers if s else None),
    ("Điểm hài lòng TB", "mean", lambda c, s: s.mean if s else None),
    ("Tỷ lệ hài lòng (CSAT)", "rate", lambda c, s: s.csat_rate if s else None),
)


def feedback_of(report: Report, by: str, key: str) -> tuple[Complaints | None, Satisfaction | None]:
    """A row's cases and answers, where its grouping has them: the whole period; a branch (its
    answers, and the cases it owns as branch:N); a unit (the cases it owns); a phone (its
    answers); a month (its answers). Other groupings (days, hours…) have none."""
    if by == "total":
        return report.complaints, report.satisfaction
    by_owner = report.complaints_by_owner if report.complaints is not None else {}
    if by == "branch":
        return by_owner.get(f"branch:{key}"), report.satisfaction_by_branch.get(key)
    if by == "unit":
        return by_owner.get(key), None
    if by == "phone":
        return None, report.satisfaction_by_phone.get(key)
    if by == "month":
        return None, report.satisfaction_by_month.get(key)
    return None, None


def feedback_values(report: Report, by: str, key: str) -> list[float | int | None]:
    c, s = feedback_of(report, by, key)
    return [value(c, s) for _, _, value in FEEDBACK_COLUMNS]


_FEEDBACK_HEADERS = [h for h, _, _ in FEEDBACK_COLUMNS]


def csv_text(report: Report) -> str:
    """One line per group (grouping, key, label, then every measure as a raw number), the
    complaint and satisfaction figures last (blank where the grouping has none)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["Nhóm theo", "Mã", "Tên", *(c.header for c in COLUMNS), *_FEEDBACK_HEADERS])
    for by, rows in rows_of(report):
        for r in rows:
            w.writerow(
                [
                    by,
                    r.key,
                    r.label,
                    *("" if (v := c.value(r.figures)) is None else v for c in COLUMNS),
                    *("" if v is None else v for v in feedback_values(report, by, r.key)),
                ]
            )
    return BOM + buf.getvalue()


def as_dict(report: Report) -> dict[str, Any]:
    d = dataclasses.asdict(report)
    d["period"] = {
        "from": report.period.first.isoformat(),
        "to": report.period.last.isoformat(),
        "timezone": report.period.tz,
    }
    d["groups"] = {
        by: [{"key": r.key, "label": r.label, **dataclasses.asdict(r.figures)} for r in rows]
        for by, rows in report.groups.items()
    }
    return d


def json_text(report: Report) -> str:
    return json.dumps(as_dict(report), ensure_ascii=False, indent=2) + "\n"
