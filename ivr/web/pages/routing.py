"""Định tuyến (admin): the version in force, the check of the file, the difference from the
previous version, a simulated key path, and a reload that keeps the old routing on failure."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ivr.sim.scripts import ClerkKind
from ivr.web.auth import ENGINE, allow, viewer
from ivr.web.data.users import audit
from ivr.web.roles import ADMIN
from ivr.web.routing_desk import BadKeys, RoutingDesk, parse_keys, simulate

DESK: web.AppKey[RoutingDesk] = web.AppKey("routing_desk", RoutingDesk)
CLERKS = {
    "answer": "nghe máy",
    "busy": "máy bận",
    "no_answer": "không nghe máy",
    "unreachable": "không liên lạc được",
}


def _context(request: web.Request, **extra: Any) -> dict[str, Any]:
    desk = request.app.get(DESK)
    return {
        "desk": desk,
        "diff": desk.diff() if desk else [],
        "clerks": CLERKS,
        "sim": None,
        **extra,
    }


@allow(ADMIN)
@aiohttp_jinja2.template("routing.html")
async def page(request: web.Request) -> dict[str, Any]:
    return _context(request)


@allow(ADMIN)
async def reload(request: web.Request) -> web.Response:
    desk = request.app.get(DESK)
    if desk is None:
        raise web.HTTPNotFound(text="Bảng điều khiển chưa được cấu hình tệp định tuyến.")
    taken = desk.reload()
    outcome = (
        "đã nạp phiên bản mới"
        if taken
        else ("giữ phiên bản cũ: tệp có lỗi" if desk.problems else "không có gì thay đổi")
    )
    await audit(request.app[ENGINE], viewer(request).name, "routing_reload", outcome)
    return aiohttp_jinja2.render_template(
        "routing.html", request, _context(request, outcome=outcome)
    )


@allow(ADMIN)
async def simulate_call(request: web.Request) -> web.Response:
    desk = request.app.get(DESK)
    routing = desk.routing() if desk else None
    if routing is None:
        raise web.HTTPNotFound(text="Chưa có định tuyến nào đang dùng.")
    form = await request.post()
    tz = ZoneInfo(routing.hotline.timezone)
    try:
        at = dt.datetime.strptime(str(form.get("at", "")), "%Y-%m-%dT%H:%M").replace(tzinfo=tz)
        keys = parse_keys(str(form.get("keys", "")))
        clerk = ClerkKind(str(form.get("clerk", "answer")))
    except BadKeys as e:
        error = str(e)
    except ValueError:
        error = "thời điểm hoặc hành vi máy bàn không hợp lệ"
    else:
        record = await simulate(routing, at, keys, clerk, "0912345678")
        return aiohttp_jinja2.render_template(
            "routing.html", request, _context(request, sim=record, form=dict(form))
        )
    response = aiohttp_jinja2.render_template(
        "routing.html", request, _context(request, error=error, form=dict(form))
    )
    response.set_status(400)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/routing", page)
    app.router.add_post("/routing/reload", reload)
    app.router.add_post("/routing/simulate", simulate_call)
