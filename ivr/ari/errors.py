"""ARI REST failures as typed exceptions the flow's adapter can reason about."""

from __future__ import annotations

from typing import Any


class AriError(Exception):
    """Asterisk answered a request with an error status."""

    status: int = 0

    def __init__(self, status: int, method: str, path: str, body: Any) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        # Asterisk says {"message": ...} except for an originate it could not place: {"error": ...}
        text = body.get("message") or body.get("error") if isinstance(body, dict) else body
        self.message = str(text or "")
        super().__init__(f"{method} {path}: {status} {self.message}")


class BadRequest(AriError):
    status = 400


class Unauthorized(AriError):
    status = 401


class NotFound(AriError):
    status = 404


class Conflict(AriError):
    """409: e.g. the channel is no longer in our Stasis application."""

    status = 409


class Unprocessable(AriError):
    status = 422


class ServerError(AriError):
    """5xx: for POST /channels, Asterisk's way of saying the phone is unreachable."""

    status = 500


class AriUnavailable(Exception):
    """Asterisk could not be reached at all (connection refused, timeout)."""


_BY_STATUS: dict[int, type[AriError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
}


def error_for(status: int, method: str, path: str, body: Any) -> AriError:
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else AriError)
    err = cls(status, method, path, body)
    err.status = status
    return err


class MalformedResponse(AriUnavailable):
    """Asterisk answered, but not with what ARI's schema promises (not JSON, wrong shape).

    Treated like an outage: the caller retries or falls back; the body is never trusted."""
