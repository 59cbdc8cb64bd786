"""Secure defaults: response headers (CSP without inline scripts, no framing), the CSRF token of
every form and POST, the login rate limit with a temporary lockout, and an access log that
writes no query string (caller numbers are searched there) and no cookie."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp_session import Session, get_session

from ivr.web.keys import VIEWER

log = structlog.get_logger("ivr.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "ivr_session"


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:
        response = e
    _secure_headers(request, response)
    if isinstance(response, web.HTTPException) and response.status >= 300:
        raise response
    return response


def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:
        return  # a stream (SSE, audio) already sent its headers, set by its handler
    for name, value in HEADERS.items():
        if name == "Cache-Control" and request.path.startswith("/static/"):
            continue
        response.headers.setdefault(name, value)
    morsel = response.cookies.get(COOKIE)
    if morsel is not None and _over_https(request):
        morsel["secure"] = True  # behind HTTPS the session cookie never travels in clear


def _over_https(request: web.Request) -> bool:
    """TLS here, or at the HTTPS proxy in front (X-Forwarded-Proto). Believing the header from
    anyone is safe: it can only make the cookie stricter."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def stream_headers(response: web.StreamResponse) -> None:
    """The same headers for a response its handler prepares itself."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        viewer = request.get(VIEWER)
        log.info(
            "web",
            method=request.method,
            path=request.path,  # never the query string: it can hold a caller's number
            status=status,
            user=getattr(viewer, "name", None),
            ms=round((time.monotonic() - start) * 1000, 1),
        )


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST (login included) carries the session's token in the form or a header."""
    if request.method not in SAFE_METHODS:
        session = await get_session(request)
        expected = session.get("csrf")
        given = request.headers.get("X-CSRF-Token")
        if given is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            given = str((await request.post()).get("csrf", ""))
        if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
            log.warning("web_csrf_refused", path=request.path)
            raise web.HTTPForbidden(
                text="Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ; tải lại trang."
            )
    return await handler(request)


class LoginLimiter:
    """At most ``attempts`` failures per name and per address in ``window`` seconds; past that,
    both are locked out for ``lockout`` seconds. In memory: one console process."""

    def __init__(
        self,
        attempts: int = 5,
        window: float = 900.0,
        lockout: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts, self.window, self.lockout, self.clock = attempts, window, lockout, clock
        self._failures: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}

    def locked(self, *keys: str) -> bool:
        now = self.clock()
        return any(self._locked.get(k, 0.0) > now for k in keys)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.setdefault(key, deque())
            times.append(now)
            while times and times[0] < now - self.window:
                times.popleft()
            if len(times) >= self.attempts:
                self._locked[key] = now + self.lockout
                times.clear()

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
