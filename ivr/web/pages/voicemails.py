"""Hộp thư thoại: each department's inbox, playing a message (by its id, with HTTP Range), and
marking it heard or handled (who, when)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from ivr.web.auth import ENGINE, allow, viewer
from ivr.web.data import voicemails as data
from ivr.web.keys import CONFIG
from ivr.web.roles import ALL
from models import Voicemail

STATUSES = {"new": "mới", "heard": "đã nghe", "handled": "đã xử lý"}


def _id(request: web.Request) -> int:
    return int(request.match_info["vm_id"])


@allow(ALL)
async def inbox(request: web.Request) -> web.Response:
    q = request.query
    status = q.get("status", "")
    rows = await data.inbox(
        request.app[ENGINE],
        viewer(request),
        branch=q.get("branch") or None,
        unit=q.get("unit") or None,
        status=status if status in STATUSES else None,
    )
    return aiohttp_jinja2.render_template(
        "voicemails.html",
        request,
        {
            "rows": rows,
            "statuses": STATUSES,
            "form": {k: q.get(k, "") for k in ("branch", "unit", "status")},
        },
    )


NOT_YOURS = "Lời nhắn này thuộc đơn vị khác."


async def _one(request: web.Request) -> Voicemail | None:
    try:
        return await data.one(request.app[ENGINE], viewer(request), _id(request))
    except data.NotYours:
        raise web.HTTPForbidden(text=NOT_YOURS) from None


@allow(ALL)
async def audio(request: web.Request) -> web.StreamResponse:
    vm = await _one(request)
    if vm is None:
        raise web.HTTPNotFound(text="Không có lời nhắn này.")
    path = data.audio_file(vm, request.app[CONFIG].recordings_dir)
    if path is None:
        raise web.HTTPNotFound(text="Tệp ghi âm không còn trong thư mục ghi âm.")
    response = web.FileResponse(path, headers={"Content-Type": "audio/wav"})
    response.headers["Cache-Control"] = "private, no-store"
    return response


@allow(ALL)
async def mark(request: web.Request) -> web.Response:
    form = await request.post()
    status = str(form.get("status", "handled"))
    if status not in STATUSES:
        raise web.HTTPBadRequest(text="trạng thái không hợp lệ")
    try:
        found = await data.mark(request.app[ENGINE], viewer(request), _id(request), status)
    except data.NotYours:
        raise web.HTTPForbidden(text=NOT_YOURS) from None
    if not found:
        raise web.HTTPNotFound(text="Không có lời nhắn này.")
    raise web.HTTPFound("/voicemails")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/voicemails", inbox)
    app.router.add_get(r"/voicemails/{vm_id:\d{1,12}}/audio", audio)
    app.router.add_post(r"/voicemails/{vm_id:\d{1,12}}/mark", mark)
