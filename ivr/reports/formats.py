"""The report as text: a terminal table, CSV (UTF-8 with BOM, for Excel), JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
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
    return out


Cell = str | int | float
FEEDBACK_HEADER = (
    "Nhóm theo",
    "Mã",
    "Tên",
    "PAKN tiếp nhận",
    "PAKN đã trả lời",
    "PAKN đúng hạn",
    "PAKN từ chối",
    "PAKN quá hạn",
    "Lượt đánh giá",
    "Điểm TB",
    "Tỷ lệ hài lòng",
)


def feedback_rows(report: Report) -> list[list[Cell]]:
    """Complaint and satisfaction figures, one line per group: the whole period ("total"), each
    case owner ("owner": a unit's code or branch:N), each branch and phone of the answers."""

    def line(
        by: str, key: str, label: str, c: Complaints | None, s: Satisfaction | None
    ) -> list[Cell]:
        cells: list[Cell] = [by, key, label]
        cells += [c.received, c.resolved, c.on_time, c.rejected, c.overdue] if c else [""] * 5
        cells += [s.answers, _blank(s.mean), _blank(s.csat_rate)] if s else [""] * 3
        return cells

    rows: list[list[Cell]] = []
    if report.complaints is None and report.satisfaction is None:
        return rows
    rows.append(line("total", "total", "Tổng", report.complaints, report.satisfaction))
    for key, c in report.complaints_by_owner.items():
        rows.append(line("owner", key, report.owner_names.get(key, key), c, None))
    for key, sat in report.satisfaction_by_branch.items():
        rows.append(line("branch", key, report.branch_names.get(key, key), None, sat))
    for key, sat in report.satisfaction_by_phone.items():
        rows.append(line("phone", key, key, None, sat))
    return rows


def _blank(v: float | None) -> str | float:
    return "" if v is None else v


def csv_text(report: Report) -> str:
    """One line per group (grouping, key, label, then every measure as a raw number)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["Nhóm theo", "Mã", "Tên", *(c.header for c in COLUMNS)])
    for by, rows in rows_of(report):
        for r in rows:
            w.writerow(
                [
                    by,
                    r.key,
                    r.label,
                    *("" if (v := c.value(r.figures)) is None else v for c in COLUMNS),
                ]
            )
    extra = feedback_rows(report)
    if extra:  # a second table, after an empty line: its own header
        w.writerow([])
        w.writerow(FEEDBACK_HEADER)
        w.writerows(extra)
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
