"""The report as text: a terminal table, CSV (UTF-8 with BOM, for Excel), JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

from ivr.reports.columns import COLUMNS, shown
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
    return "\n".join(out) + "\n"


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
