"""Báo cáo: the reports of ivr.reports for a period chosen in a form (from/to or a named period,
grouped by what `ivr report --by` takes), drawn with the vendored Chart.js, and downloaded as
CSV, XLSX, JSON or the Ministry's DOCX: the same figures `ivr report` gives."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from ivr.reports.agency import AgencyError, load_agency
from ivr.reports.columns import COLUMNS, shown
from ivr.reports.formats import rows_of
from ivr.reports.grouping import GROUPINGS, WEEKDAYS
from ivr.reports.periods import TZ, Period, PeriodError, period_of
from ivr.reports.query import report_from_store
from ivr.reports.report import Report, local_today
from ivr.routing.model import Routing
from ivr.web.auth import ENGINE, allow
from ivr.web.data import report_feedback, report_files
from ivr.web.data import wallboard as data
from ivr.web.keys import CONFIG
from ivr.web.pages.routing import DESK
from ivr.web.roles import STAFF

MAX_DAYS = 3660
BY_LABELS = {
    "branch": "nhánh",
    "unit": "đơn vị",
    "department": "cơ quan",
    "phone": "máy bàn",
    "day": "ngày",
    "week": "tuần",
    "month": "tháng",
    "hour": "giờ",
    "weekday": "thứ",
    "disposition": "kết quả",
}
NAMED = {
    "today": "hôm nay",
    "yesterday": "hôm qua",
    "this-week": "tuần này",
    "last-week": "tuần trước",
    "this-month": "tháng này",
    "last-month": "tháng trước",
}
assert set(BY_LABELS) == set(GROUPINGS)


class Asked:
    """The form as sent: a period (named, or from/to) and the groupings."""

    def __init__(self, query: Any) -> None:
        self.period = query.get("period", "").strip()
        self.since = query.get("from", "").strip()
        self.until = query.get("to", "").strip()
        self.by = list(dict.fromkeys(query.getall("by", [])))
        if not (self.period or self.since or self.until):
            self.period = "this-month"
        if not self.by:
            self.by = ["branch"]

    def resolve(self) -> Period:
        bad = [b for b in self.by if b not in GROUPINGS]
        if bad:
            raise PeriodError(f"không nhóm được theo '{bad[0]}'")
        period = period_of(
            self.since or None, self.until or None, self.period or None, local_today(TZ)
        )
        if period.days > MAX_DAYS:
            raise PeriodError(f"kỳ báo cáo dài quá {MAX_DAYS} ngày")
        return period

    def query(self) -> str:
        pairs = [("period", self.period), ("from", self.since), ("to", self.until)]
        return urlencode([(k, v) for k, v in pairs if v] + [("by", b) for b in self.by])


def _routing(request: web.Request) -> Routing | None:
    desk = request.app.get(DESK)
    return desk.routing() if desk is not None else None


async def _report(request: web.Request, asked: Asked, extra: tuple[str, ...] = ()) -> Report:
    by = [*asked.by, *(b for b in extra if b not in asked.by)]
    period = asked.resolve()
    return await report_from_store(request.app[ENGINE], period, by, _routing(request))


@allow(STAFF)
async def page(request: web.Request) -> web.Response:
    asked = Asked(request.query)
    context: dict[str, Any] = {
        "asked": asked,
        "groupings": BY_LABELS,
        "named": NAMED,
        "error": None,
        "report": None,
        "today": await data.today(request.app[ENGINE], dt.datetime.now(dt.UTC)),
    }
    try:
        report = await _report(request, asked)
    except PeriodError as e:
        context["error"] = str(e)
        return aiohttp_jinja2.render_template("reports.html", request, context, status=400)
    context.update(_shown(report, asked))
    context["feedback"] = report_feedback.as_context(report_feedback.tables(report))
    return aiohttp_jinja2.render_template("reports.html", request, context)


def _shown(report: Report, asked: Asked) -> dict[str, Any]:
    tables = [
        (
            "Cả kỳ" if by == "total" else f"Theo {BY_LABELS.get(by, by)}",
            [(r.label, [shown(c.value(r.figures), c.kind) for c in COLUMNS]) for r in rows],
        )
        for by, rows in rows_of(report)
    ]
    return {
        "report": report,
        "tables": tables,
        "headers": [c.header for c in COLUMNS],
        "query": asked.query(),
        "per_day": json.dumps(_per_day(report), ensure_ascii=False),
        "per_branch": json.dumps(_per_branch(report), ensure_ascii=False),
        "heat": _heat(report),
        "weekdays": WEEKDAYS,
    }


def _per_day(report: Report) -> dict[str, Any]:
    days = list(report.per_day)
    return {
        "labels": [f"{d[8:10]}/{d[5:7]}" for d in days],
        "series": [{"label": "Cuộc gọi đến", "data": list(report.per_day.values())}],
    }


def _per_branch(report: Report) -> dict[str, Any]:
    rows = report.groups.get("branch")
    if rows is None:
        labels = [f"{b}. {report.branch_names.get(b, '')}" for b in report.per_branch]
        return {
            "labels": labels,
            "series": [{"label": "Cuộc gọi đến", "data": list(report.per_branch.values())}],
        }
    return {
        "labels": [r.label for r in rows],
        "series": [
            {"label": "Cuộc gọi đến", "data": [r.figures.received for r in rows]},
            {"label": "Được trả lời", "data": [r.figures.answered for r in rows]},
        ],
    }


def _heat(report: Report) -> list[list[tuple[int, int]]]:
    """[weekday][hour] → (calls, shade 0..5) for the CSS classes heat-0 … heat-5."""
    top = max((n for row in report.heatmap for n in row), default=0)
    return [[(n, -(-5 * n // top) if top else 0) for n in row] for row in report.heatmap]


@allow(STAFF)
async def download(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind not in report_files.KINDS:
        raise web.HTTPNotFound()
    asked = Asked(request.query)
    try:
        agency = load_agency(request.app[CONFIG].agency) if kind == "docx" else None
        report = await _report(request, asked, ("branch",) if kind == "docx" else ())
    except (PeriodError, AgencyError) as e:
        return web.Response(status=400, text=str(e), content_type="text/plain")
    file = await report_files.render(kind, report, _routing(request), agency, local_today(TZ))
    return web.Response(
        body=file.body,
        headers={
            "Content-Type": file.content_type,
            "Content-Disposition": file.disposition(),
            "Cache-Control": "no-store",
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/reports", page)
    app.router.add_get("/reports/download/{kind}", download)
