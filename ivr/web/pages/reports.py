"""Báo cáo: today's figures as a chart (Chart.js, served from the package), and where the full
reports (ivr.reports, `ivr report`) are downloaded."""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ivr.web.auth import ENGINE, allow
from ivr.web.data import wallboard as data
from ivr.web.roles import STAFF


@allow(STAFF)
@aiohttp_jinja2.template("reports.html")
async def page(request: web.Request) -> dict[str, Any]:
    return {"today": await data.today(request.app[ENGINE], dt.datetime.now(dt.UTC))}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/reports", page)
