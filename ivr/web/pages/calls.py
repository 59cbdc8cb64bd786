"""Cuộc gọi: the search (date range, caller, branch, unit, phone, disposition) in keyset pages,
and one call's detail with its timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ivr.flow.record import Disposition
from ivr.web.auth import ENGINE, allow, viewer
from ivr.web.data import calls as data
from ivr.web.roles import ALL

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FIELDS = ("from", "to", "caller", "branch", "unit", "phone", "disposition")
DISPOSITIONS = {
    "answered": "đã nghe máy",
    "busy": "máy bận",
    "no_answer": "không nghe máy",
    "unreachable": "không liên lạc được",
    "voicemail": "để lại lời nhắn",
    "abandoned": "người gọi bỏ máy",
    "closed": "ngoài giờ",
    "dialplan": "chuyển về tổng đài",
    "errored": "lỗi (đã chuyển tổng đài viên)",
    "interrupted": "gián đoạn",
    "fallback": "tổng đài tự xử lý",
    "in_progress": "đang diễn ra",
}
assert set(DISPOSITIONS) == {d.value for d in Disposition}


class BadQuery(ValueError):
    pass


def _day(text: str, end: bool) -> dt.datetime | None:
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"ngày '{text}' không hợp lệ (cần YYYY-MM-DD)") from None
    start = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), VN)
    return start.astimezone(dt.UTC)


def _after(at: str, key: str) -> tuple[dt.datetime, str] | None:
    if not at or not key:
        return None
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        raise BadQuery("trang tiếp theo không hợp lệ") from None
    if moment.tzinfo is None:
        raise BadQuery("trang tiếp theo không hợp lệ")
    return moment, key


def parse(query: Any) -> tuple[data.CallSearch, dict[str, str]]:
    form = {name: str(query.get(name, "")).strip()[:64] for name in FIELDS}
    if form["disposition"] and form["disposition"] not in DISPOSITIONS:
        raise BadQuery("kết quả cuộc gọi không hợp lệ")
    search = data.CallSearch(
        since=_day(form["from"], end=False),
        until=_day(form["to"], end=True),
        caller=form["caller"] or None,
        branch=form["branch"] or None,
        unit=form["unit"] or None,
        phone=form["phone"] or None,
        disposition=form["disposition"] or None,
        after=_after(str(query.get("after_at", "")), str(query.get("after_id", ""))),
    )
    return search, form


@allow(ALL)
async def search(request: web.Request) -> web.Response:
    try:
        f, form = parse(request.query)
    except BadQuery as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    page = await data.search(request.app[ENGINE], viewer(request), f)
    more = None
    filled = {k: v for k, v in form.items() if v}
    if page.next is not None:
        more = "?" + urlencode(
            {**filled, "after_at": page.next[0].isoformat(), "after_id": page.next[1]}
        )
    return aiohttp_jinja2.render_template(
        "calls.html",
        request,
        {
            "page": page,
            "form": form,
            "more": more,
            "labels": DISPOSITIONS,
            "first": f.after is None,
            "restart": "?" + urlencode(filled),
        },
    )


@allow(ALL)
async def detail(request: web.Request) -> web.Response:
    key = request.query.get("id", "")
    try:
        call = await data.one(request.app[ENGINE], viewer(request), key) if key else None
    except data.NotYours:
        raise web.HTTPForbidden(text="Cuộc gọi này thuộc đơn vị khác.") from None
    if call is None:
        raise web.HTTPNotFound(text="Không có cuộc gọi này.")
    return aiohttp_jinja2.render_template(
        "call.html", request, {"call": call, "labels": DISPOSITIONS}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/calls", search)
    app.router.add_get("/calls/detail", detail)
