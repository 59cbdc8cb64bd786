"""Sign-in, sign-out, and the role check every route passes through.

Every handler declares who may use it with :func:`allow`; a route without that mark is refused
to everyone (deny by default). The account is read from the database on every request, so a
disabled account or a changed role takes effect at once, whatever the cookie says. A session
ends after ``IDLE`` seconds without a request and ``LIFETIME`` after the login, whichever first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import aiohttp_jinja2
import structlog
from aiohttp import web
from aiohttp_session import get_session, new_session
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.web import passwords
from ivr.web.data import users
from ivr.web.keys import VIEWER
from ivr.web.roles import Role, Viewer
from ivr.web.security import Handler, LoginLimiter, csrf_token

log = structlog.get_logger("ivr.web")

IDLE = 30 * 60
LIFETIME = 8 * 60 * 60
ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
LIMITER: web.AppKey[LoginLimiter] = web.AppKey("limiter", LoginLimiter)
PUBLIC = frozenset({"/login", "/healthz"})

H = TypeVar("H", bound=Callable[..., Any])


def allow(roles: Iterable[Role]) -> Callable[[H], H]:
    """Mark a handler with the roles that may use it."""
    allowed = frozenset(roles)

    def mark(handler: H) -> H:
        handler.roles = allowed  # type: ignore[attr-defined]
        return handler

    return mark


def viewer(request: web.Request) -> Viewer:
    return request[VIEWER]


def _wants_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return request.method == "GET" and "json" not in accept and "event-stream" not in accept


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC or request.path.startswith("/static/"):
        return await handler(request)
    who = await _current(request)
    if who is None:
        if _wants_html(request):
            raise web.HTTPFound("/login")
        raise web.HTTPUnauthorized(text="Cần đăng nhập.")
    request[VIEWER] = who
    if request.match_info.http_exception is not None:
        raise request.match_info.http_exception  # no such page (404) or method (405)
    roles: frozenset[Role] = getattr(request.match_info.handler, "roles", frozenset())
    if who.role not in roles:
        raise web.HTTPForbidden(text="Tài khoản này không được xem trang này.")
    return await handler(request)


async def _current(request: web.Request) -> Viewer | None:
    session = await get_session(request)
    name = session.get("user")
    now = time.time()
    if not isinstance(name, str):
        return None
    if (
        now - float(session.get("seen", 0)) > IDLE
        or now - float(session.get("since", 0)) > LIFETIME
    ):
        session.invalidate()
        return None
    account = await users.find(request.app[ENGINE], name)
    if account is None or account.disabled:
        session.invalidate()
        return None
    session["seen"] = now
    return Viewer(account.name, account.role, account.unit, account.branch)


async def login_form(request: web.Request) -> web.Response:
    session = await get_session(request)
    return _page(request, csrf_token(session), error=None)


def _page(request: web.Request, token: str, error: str | None, status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "login.html", request, {"csrf": token, "error": error, "viewer": None}
    )
    response.set_status(status)
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    address = f"ip:{request.remote}"
    limiter, engine = request.app[LIMITER], request.app[ENGINE]
    session = await get_session(request)
    if limiter.locked(f"user:{name}", address):
        log.warning("web_login_locked", user=name, remote=request.remote)
        return _page(
            request, csrf_token(session), "Đăng nhập sai quá nhiều lần; thử lại sau 15 phút.", 429
        )
    account = await users.find(engine, name)
    ok = passwords.verify(account.password_hash if account else None, password)
    if not ok or account is None or account.disabled:
        limiter.failed(f"user:{name}", address)
        log.warning("web_login_failed", user=name, remote=request.remote)
        await users.audit(engine, name or "?", "login_failed", str(request.remote))
        return _page(request, csrf_token(session), "Sai tên đăng nhập hoặc mật khẩu.", 401)
    limiter.succeeded(f"user:{name}", address)
    rehash = (
        passwords.hash_password(password) if passwords.needs_rehash(account.password_hash) else None
    )
    await users.logged_in(engine, name, rehash)
    log.info("web_login", user=name, remote=request.remote)
    session = await new_session(request)  # a fresh session id and token: no fixation
    now = time.time()
    session.update({"user": name, "since": now, "seen": now})
    csrf_token(session)
    raise web.HTTPFound("/")


@allow(Role)
async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    await users.audit(request.app[ENGINE], viewer(request).name, "logout")
    session.invalidate()
    raise web.HTTPFound("/login")
