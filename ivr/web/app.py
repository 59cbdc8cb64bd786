"""The console's aiohttp application, wired by hand: middlewares, templates, pages, the
wallboard's poller. `ivr web` (ivr.cli.web) builds it from the settings and serves it."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.web import auth, security
from ivr.web.keys import CONFIG, VIEWER, WebConfig
from ivr.web.pages import calls, cases, reports, routing, users, voicemails, wallboard
from ivr.web.roles import LABELS, Role
from ivr.web.routing_desk import RoutingDesk

HERE = Path(__file__).resolve().parent
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def load_secret(path: Path) -> bytes:
    """The cookie key kept beside the data (0600), made on first use: sessions survive a restart
    and consoles sharing the data folder accept each other's cookies."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path}: khoá phiên phải dài 32 byte")
    return key


def _visible(text: str) -> str:
    """Callers' text (number, name, the phone Asterisk named): control and bidi characters
    shown as escapes, never obeyed (a U+202E would reorder the page's row)."""
    from ivr.cli.terminal import escape  # here: ivr.cli imports this module at its start

    return escape(text)


def make_app(
    engine: AsyncEngine, config: WebConfig, desk: RoutingDesk | None = None
) -> web.Application:
    app = web.Application(middlewares=[security.headers, security.access_log])
    app[auth.ENGINE] = engine
    app[auth.LIMITER] = security.LoginLimiter()
    app[CONFIG] = config
    if desk is not None:
        app[routing.DESK] = desk
    storage = EncryptedCookieStorage(
        config.secret_key,
        cookie_name=security.COOKIE,
        httponly=True,
        samesite="Strict",
        max_age=auth.LIFETIME,
    )
    setup_sessions(app, storage)
    app.middlewares.extend([security.csrf, auth.authenticate])
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[_context],
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local"] = _local
    env.filters["seconds"] = _seconds
    env.filters["visible"] = _visible
    env.globals["role_labels"] = {r.value: label for r, label in LABELS.items()}
    app.router.add_get("/login", auth.login_form)
    app.router.add_post("/login", auth.login)
    app.router.add_post("/logout", auth.logout)
    app.router.add_get("/", _home)
    for page in (wallboard, calls, voicemails, cases, reports, routing, users):
        page.add_routes(app)
    app.router.add_static("/static/", HERE / "static", append_version=True)
    app.cleanup_ctx.append(_poller)
    app.on_shutdown.append(_close_streams)
    return app


async def _poller(app: web.Application) -> AsyncIterator[None]:
    desk = app.get(routing.DESK)
    board = wallboard.Board(
        app[auth.ENGINE], app[CONFIG].poll_seconds, desk.routing if desk else lambda: None
    )
    app[wallboard.BOARD] = board
    board.start()
    yield
    await board.stop()


async def _close_streams(app: web.Application) -> None:
    board = app.get(wallboard.BOARD)
    if board is not None:
        await board.close_streams()


@auth.allow(Role)
async def _home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/wallboard")


async def _context(request: web.Request) -> dict[str, Any]:
    session = await get_session(request)
    return {
        "viewer": request.get(VIEWER),
        "csrf": security.csrf_token(session),
        "path": request.path,
    }


def _local(value: dt.datetime | None, fmt: str = "%d/%m/%Y %H:%M:%S") -> str:
    return value.astimezone(VN).strftime(fmt) if value is not None else "—"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    total = round(value)
    return f"{total // 60}:{total % 60:02d}"
