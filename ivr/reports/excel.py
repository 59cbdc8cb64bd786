"""The report as an XLSX workbook: one sheet per grouping (and one for the whole period), a bold
frozen header, column widths, number, percentage and duration formats, and a native Excel chart
of calls received and answered per group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]  # no type hints shipped

from ivr.reports.columns import COLUMNS
from ivr.reports.formats import FEEDBACK_HEADER, feedback_rows, rows_of
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
        }
        for by, rows in rows_of(report):
            sheet = book.add_worksheet(SHEET_NAMES.get(by, by)[:31])
            sheet.write_row(0, 0, ["Mã", "Tên", *(c.header for c in COLUMNS)], formats["header"])
            sheet.freeze_panes(1, 0)
            sheet.set_column(0, 0, 12)
            sheet.set_column(1, 1, 40)
            sheet.set_column(2, 1 + len(COLUMNS), 14)
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
            if rows and by != "total":
                _chart(book, sheet, len(rows))
        _feedback_sheet(book, report, formats)
    finally:
        book.close()


def _feedback_sheet(book: xlsxwriter.Workbook, report: Report, formats: dict[str, Any]) -> None:
    """Complaint cases and satisfaction answers: the same lines as the CSV's second table."""
    rows = feedback_rows(report)
    if not rows:
        return
    sheet = book.add_worksheet("Phản ánh, hài lòng")
    sheet.write_row(0, 0, FEEDBACK_HEADER, formats["header"])
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, 1, 14)
    sheet.set_column(2, 2, 40)
    sheet.set_column(3, len(FEEDBACK_HEADER) - 1, 12)
    mean = book.add_format({"num_format": "0.00"})
    kinds = {len(FEEDBACK_HEADER) - 2: mean, len(FEEDBACK_HEADER) - 1: formats["rate"]}
    for i, cells in enumerate(rows, start=1):
        for j, v in enumerate(cells):
            if isinstance(v, str):
                sheet.write_string(i, j, v) if v else sheet.write_blank(i, j, None)
            else:
                sheet.write_number(i, j, v, kinds.get(j, formats["count"]))


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
