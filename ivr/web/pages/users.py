"""Người dùng (admin): the accounts and the audit log of logins and changes."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ivr.web.auth import ENGINE, allow, viewer
from ivr.web.data import users as data
from ivr.web.roles import ADMIN


@allow(ADMIN)
@aiohttp_jinja2.template("users.html")
async def page(request: web.Request) -> dict[str, Any]:
    engine = request.app[ENGINE]
    return {"accounts": await data.list_users(engine), "entries": await data.recent_audit(engine)}


@allow(ADMIN)
async def disable(request: web.Request) -> web.Response:
    form = await request.post()
    name, disabled = str(form.get("name", "")), form.get("disabled") == "1"
    if name == viewer(request).name:
        raise web.HTTPBadRequest(text="Không thể tự khoá tài khoản của mình.")
    try:
        await data.set_disabled(request.app[ENGINE], name, disabled, by=viewer(request).name)
    except data.AccountError as e:
        raise web.HTTPNotFound(text=str(e)) from None
    raise web.HTTPFound("/users")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/users", page)
    app.router.add_post("/users/disable", disable)
