"""The report to the Ministry of Home Affairs (Vụ Cải cách hành chính) as a DOCX draft.

Every figure comes from the same :class:`Report` that `ivr report --format json` prints; the
agency's text from its TOML file (ivr.reports.agency); the wording from the template.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import docx
from docx.document import Document as DocumentObject
from docx.shared import Cm, Pt

from ivr.reports.agency import Agency, load_template
from ivr.reports.columns import shown
from ivr.reports.docx_layout import body, cell_lines, centred, no_borders, setup
from ivr.reports.feedback import Complaints, Satisfaction, complaints_text, satisfaction_text
from ivr.reports.report import Report
from ivr.routing.model import Routing

NO_DATA = "chưa có dữ liệu"
KINDS = {
    "department": "sở, ngành",
    "agency": "cơ quan khác",
    "district": "UBND cấp huyện",
    "commune": "UBND cấp xã",
}


def figures(report: Report, routing: Routing | None, agency: Agency) -> dict[str, str]:
    """The values the template's {placeholders} take."""
    t = report.total
    d = report.period
    return {
        "province": agency.province,
        "agency_title": agency.agency_name,
        "period_from": f"{d.first:%d/%m/%Y}",
        "period_to": f"{d.last:%d/%m/%Y}",
        "hotline_number": routing.hotline.number if routing else "...",
        "deployed_from": agency.deployed_from,
        "branch_count": str(len(routing.branches)) if routing else "...",
        "directory_text": _directory(routing, d.last),
        "survey_channel": agency.survey_channel,
        "received": str(t.received),
        "received_open": str(t.received_open),
        "received_closed": str(t.received_closed),
        "received_holiday": str(t.received_holiday),
        "answered": str(t.answered),
        "answered_rate": shown(t.answered_rate, "rate"),
        "voicemail": str(t.voicemail),
        "abandoned": str(t.abandoned_menu + t.abandoned_ringing),
        "service_seconds": f"{report.options.service_seconds:g}",
        "service_level": shown(t.service_level, "rate"),
        **_complaint_figures(report.complaints),
        **_satisfaction_figures(report.satisfaction),
    }


def _complaint_figures(c: Complaints | None) -> dict[str, str]:
    if c is None:
        return {"complaints": NO_DATA}
    return {
        "complaints": complaints_text(c),
        "complaints_received": str(c.received),
        "complaints_resolved": str(c.resolved),
        "complaints_on_time": str(c.on_time),
        "complaints_on_time_rate": shown(c.on_time_rate, "rate"),
        "complaints_rejected": str(c.rejected),
        "complaints_overdue": str(c.overdue),
    }


def _complaint_lines(doc: DocumentObject, report: Report) -> None:
    """The period's cases by owner, then by category (issue 12): one line each."""
    for key, c in report.complaints_by_owner.items():
        body(doc, f"- {report.owner_names.get(key) or key}: {complaints_text(c)};")
    for category, c in report.complaints_by_category.items():
        body(doc, f"- Loại “{category}”: {complaints_text(c)};")


def _satisfaction_figures(s: Satisfaction | None) -> dict[str, str]:
    if s is None:
        return {"satisfaction": NO_DATA}
    mean = "–" if s.mean is None else f"{s.mean:.2f}".replace(".", ",")
    return {
        "satisfaction": satisfaction_text(s),
        "satisfaction_answers": str(s.answers),
        "satisfaction_mean": mean,
        "satisfaction_csat": shown(s.csat_rate, "rate"),
    }


def _directory(routing: Routing | None, day: dt.date) -> str:
    if routing is None:
        return NO_DATA
    kinds = Counter(u.kind for u in routing.units if u.valid_on(day))
    parts = [f"{n} máy của {KINDS.get(k, k)}" for k, n in sorted(kinds.items())]
    return ", ".join(parts) if parts else NO_DATA


def write_ministry(
    report: Report, routing: Routing | None, agency: Agency, path: Path, today: dt.date
) -> None:
    words = load_template(agency)
    values = figures(report, routing, agency)

    def say(key: str) -> str:
        return words[key].format_map(_Missing(values))

    doc = docx.Document()
    setup(doc)
    _heading(doc, agency, today)
    centred(doc, "BÁO CÁO", bold=True)
    centred(doc, agency.subject, bold=True)
    centred(doc, f"(từ ngày {values['period_from']} đến ngày {values['period_to']})", italic=True)
    centred(doc, "")
    centred(doc, f"Kính gửi: {agency.recipient}")
    body(doc, say("basis_intro"))
    for basis in agency.legal_basis:
        body(doc, f"- {basis};")
    body(doc, say("intro"))
    body(doc, "1. Thời gian triển khai", bold=True)
    body(doc, say("deployment"))
    body(doc, "2. Kết quả thiết lập tổng đài", bold=True)
    body(doc, say("setup_branches"))
    for code, b in routing.branches.items() if routing else ():
        body(doc, f"- Nhánh {code}: {b.name}, do {b.on(report.period.last).owner} phụ trách;")
    body(doc, say("setup_directory"))
    body(doc, say("setup_survey"))
    body(doc, "3. Kết quả trong kỳ báo cáo", bold=True)
    body(doc, say("results_received"))
    body(doc, say("results_answered"))
    body(doc, say("results_by_branch"))
    _branch_table(doc, report)
    body(doc, say("results_complaints"))
    _complaint_lines(doc, report)
    body(doc, say("results_satisfaction"))
    for code, sat in report.satisfaction_by_branch.items():
        name = report.branch_names.get(code, "")
        body(doc, f"- Nhánh {code}{f' ({name})' if name else ''}: {satisfaction_text(sat)};")
    body(doc, "4. Đánh giá chung", bold=True)
    for key in ("assessment_intro", "assessment_strengths", "assessment_limits", "assessment_next"):
        body(doc, say(key))
    body(doc, say("closing"))
    _signature(doc, agency)
    doc.save(str(path))


class _Missing(dict[str, str]):
    """A placeholder the template names but no figure fills stays visible, never crashes."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _heading(doc: DocumentObject, a: Agency, today: dt.date) -> None:
    table = doc.add_table(rows=2, cols=2)
    no_borders(table)
    table.autofit = False
    for row in table.rows:  # Word reads each cell's width, LibreOffice the grid's
        row.cells[0].width, row.cells[1].width = Cm(6.5), Cm(10)
    for col, width in zip(table.columns, (Cm(6.5), Cm(10)), strict=True):
        col.width = width
    left, right = table.rows[0].cells
    cell_lines(
        left,
        [
            (a.parent_agency.upper(), {"size": 13}),
            (a.agency.upper(), {"bold": True, "size": 13}),
            ("_______", {"size": 13}),
        ],
    )
    cell_lines(
        right,
        [
            ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", {"bold": True, "size": 13}),
            ("Độc lập - Tự do - Hạnh phúc", {"bold": True, "underline": True}),
            ("", {}),
        ],
    )
    number, date = table.rows[1].cells
    cell_lines(number, [(f"Số: {a.report_number}/BC-{a.agency_short}", {"size": 13})])
    cell_lines(
        date,
        [
            (
                f"{a.place}, ngày {today.day:02d} tháng {today.month:02d} năm {today.year}",
                {"italic": True},
            )
        ],
    )
    centred(doc, "")


def _branch_table(doc: DocumentObject, report: Report) -> None:
    rows = report.groups.get("branch", [])
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    for cell, head in zip(
        table.rows[0].cells, ("Nhánh", "Nội dung", "Cuộc gọi đến", "Được trả lời"), strict=True
    ):
        cell_lines(cell, [(head, {"bold": True, "size": 12})])
    for r in rows:
        name = report.branch_names.get(r.key, r.label)
        cells = table.add_row().cells
        for cell, value in zip(
            cells, (r.key, name, str(r.figures.received), str(r.figures.answered)), strict=True
        ):
            cell_lines(cell, [(value, {"size": 12})], align="left" if value == name else "center")


def _signature(doc: DocumentObject, a: Agency) -> None:
    centred(doc, "")
    table = doc.add_table(rows=1, cols=2)
    no_borders(table)
    left, right = table.rows[0].cells
    lines: list[tuple[str, dict[str, object]]] = [
        ("Nơi nhận:", {"bold": True, "italic": True, "size": 12})
    ]
    lines += [(f"- {r}", {"size": 11}) for r in a.recipients]
    cell_lines(left, lines, align="left")
    cell_lines(
        right,
        [
            (a.signer_for, {"bold": True}),
            (a.signer_title, {"bold": True}),
            ("", {}),
            ("", {}),
            ("", {}),
            (a.signer_name, {"bold": True}),
        ],
    )
    for p in right.paragraphs:
        p.paragraph_format.space_after = Pt(0)
