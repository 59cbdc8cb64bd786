"""The report as an XLSX workbook: one sheet per grouping (and one for the whole period), a bold
frozen header, column widths, number, percentage and duration formats, and a native Excel chart
of calls received and answered per group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]  # no type hints shipped

from ivr.reports.columns import COLUMNS
from ivr.reports.formats import FEEDBACK_COLUMNS, feedback_values, rows_of
from ivr.reports.report import Report

SHEET_NAMES = {
    "branch": "Nhánh",
    "unit": "Đơn vị",
    "department": "Cơ quan",
    "phone": "Máy",
    "day": "Ngày",
    "week": "Tuần",
    "month": "Tháng",
    "hour": "Giờ",
    "weekday": "Thứ",
    "disposition": "Kết quả",
    "total": "Cả kỳ",
}


def write_xlsx(report: Report, path: Path) -> None:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": False})
    try:
        formats = {
            "header": book.add_format({"bold": True, "text_wrap": True, "valign": "top"}),
            "count": book.add_format({"num_format": "#,##0"}),
            "rate": book.add_format({"num_format": "0.0%"}),
            # seconds stored as a fraction of a day, shown as [m]:ss
            "seconds": book.add_format({"num_format": "[m]:ss"}),
            "mean": book.add_format({"num_format": "0.00"}),
        }
        feedback_headers = [h for h, _, _ in FEEDBACK_COLUMNS]
        last = 1 + len(COLUMNS) + len(FEEDBACK_COLUMNS)
        for by, rows in rows_of(report):
            sheet = book.add_worksheet(SHEET_NAMES.get(by, by)[:31])
            headers = ["Mã", "Tên", *(c.header for c in COLUMNS), *feedback_headers]
            sheet.write_row(0, 0, headers, formats["header"])
            sheet.freeze_panes(1, 0)
            sheet.set_column(0, 0, 12)
            sheet.set_column(1, 1, 40)
            sheet.set_column(2, last, 14)
            for i, r in enumerate(rows, start=1):
                sheet.write_string(i, 0, r.key)
                sheet.write_string(i, 1, r.label)
                for j, c in enumerate(COLUMNS, start=2):
                    v = c.value(r.figures)
                    if v is None:
                        sheet.write_blank(i, j, None)
                    else:
                        value = v / 86400 if c.kind == "seconds" else v
                        sheet.write_number(i, j, value, formats[c.kind])
                _feedback_cells(sheet, i, report, by, r.key, formats)
            if rows and by != "total":
                _chart(book, sheet, len(rows))
    finally:
        book.close()


def _feedback_cells(
    sheet: Any, i: int, report: Report, by: str, key: str, formats: dict[str, Any]
) -> None:
    """The row's complaint and satisfaction figures, after the call measures (ivr.reports.formats)."""
    values = feedback_values(report, by, key)
    for j, ((_, kind, _), v) in enumerate(zip(FEEDBACK_COLUMNS, values, strict=True)):
        col = 2 + len(COLUMNS) + j
        if v is None:
            sheet.write_blank(i, col, None)
        else:
            sheet.write_number(i, col, v, formats[kind])


def _chart(book: xlsxwriter.Workbook, sheet: object, n: int) -> None:
    name = sheet.name  # type: ignore[attr-defined]
    chart = book.add_chart({"type": "column"})
    for col, title in ((2, "Cuộc gọi đến"), (6, "Được trả lời")):
        chart.add_series(
            {
                "name": title,
                "categories": [name, 1, 1, n, 1],
                "values": [name, 1, col, n, col],
            }
        )
    chart.set_title({"name": "Cuộc gọi đến và được trả lời"})
    sheet.insert_chart(n + 3, 1, chart)  # type: ignore[attr-defined]
