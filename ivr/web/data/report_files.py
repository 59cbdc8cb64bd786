"""The report of a period as downloadable files (CSV, XLSX, JSON, the Ministry's DOCX), rendered
by ivr.reports exactly as `ivr report` writes them, with the Vietnamese file name a browser shows.

The XLSX and DOCX writers take a path: they write into a private temporary folder in a worker
thread (the console's loop keeps serving) and the bytes are sent from memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ivr.reports import excel, formats
from ivr.reports.agency import Agency
from ivr.reports.ministry import write_ministry
from ivr.reports.report import Report
from ivr.routing.model import Routing

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
KINDS = ("csv", "xlsx", "json", "docx")


@dataclass(frozen=True)
class File:
    name: str  # as the person sees it, Vietnamese
    content_type: str
    body: bytes

    def disposition(self) -> str:
        """RFC 6266 / RFC 5987: an ASCII name for old clients, the UTF-8 name for the rest."""
        return (
            f"attachment; filename=\"{ascii_name(self.name)}\"; filename*=UTF-8''{quote(self.name)}"
        )


def ascii_name(name: str) -> str:
    """'Báo cáo tổng đài.xlsx' → 'Bao-cao-tong-dai.xlsx' (đ has no decomposition: by hand)."""
    plain = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in plain if c.isascii() and not unicodedata.combining(c))
    safe = "".join(c if c.isalnum() or c in ".-_" else "-" for c in text)
    return "-".join(part for part in safe.split("-") if part) or "bao-cao"


def base_name(report: Report, ministry: bool = False) -> str:
    p = report.period
    title = "Báo cáo gửi Bộ Nội vụ" if ministry else "Báo cáo tổng đài"
    return f"{title} {p.first:%d-%m-%Y} đến {p.last:%d-%m-%Y}"


async def render(
    kind: str,
    report: Report,
    routing: Routing | None = None,
    agency: Agency | None = None,
    today: dt.date | None = None,
) -> File:
    name = base_name(report, ministry=kind == "docx")
    if kind == "csv":
        return File(f"{name}.csv", "text/csv; charset=utf-8", formats.csv_text(report).encode())
    if kind == "json":
        body = formats.json_text(report).encode()
        return File(f"{name}.json", "application/json; charset=utf-8", body)
    if kind == "xlsx":
        body = await asyncio.to_thread(_written, lambda out: excel.write_xlsx(report, out))
        return File(f"{name}.xlsx", XLSX, body)
    if kind == "docx" and agency is not None:
        day = today or report.period.last
        body = await asyncio.to_thread(
            _written, lambda out: write_ministry(report, routing, agency, out, day)
        )
        return File(f"{name}.docx", DOCX, body)
    raise ValueError(f"không có định dạng tải về '{kind}'")


def _written(write: Callable[[Path], None]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ivr-report-") as folder:
        out = Path(folder) / "report"
        write(out)
        return out.read_bytes()
