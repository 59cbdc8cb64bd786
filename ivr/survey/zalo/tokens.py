"""The OA's OAuth v4 tokens, in a JSON file replaced atomically.

An access token lasts about 25 hours; a refresh token can be used once, so the pair Zalo returns
is written to disk (temporary file, fsync, rename, fsync of the folder) before the new access
token is used: a crash after a refresh never leaves us holding only the spent refresh token.
File: {"access_token": ..., "refresh_token": ..., "expires_at": ISO-8601 UTC}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

OAUTH_URL = "https://oauth.zaloapp.com/v4/oa/access_token"
EARLY = dt.timedelta(minutes=5)  # refresh this long before the access token runs out
Clock = Callable[[], dt.datetime]


class TokenError(Exception):
    """No usable token: the file is missing or damaged, or Zalo refused the refresh token."""


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: dt.datetime


def read(path: Path) -> Tokens:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Tokens(
            str(data["access_token"]),
            str(data["refresh_token"]),
            dt.datetime.fromisoformat(str(data["expires_at"])),
        )
    except FileNotFoundError:
        raise TokenError(f"không có tệp token Zalo {path}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise TokenError(f"tệp token Zalo {path} hỏng: {e}") from None


def write(path: Path, tokens: Tokens) -> None:
    """Atomically: the file holds the old pair or the new one, never half of either."""
    data = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class TokenStore:
    def __init__(
        self,
        path: Path,
        app_id: str,
        secret_key: str,
        http: aiohttp.ClientSession,
        clock: Clock,
        oauth_url: str = OAUTH_URL,
    ) -> None:
        self.path, self._app_id, self._secret = path, app_id, secret_key
        self._http, self._clock, self._url = http, clock, oauth_url
        self._lock = asyncio.Lock()
        self._tokens: Tokens | None = None

    async def access_token(self) -> str:
        tokens = self._tokens or read(self.path)
        self._tokens = tokens
        if tokens.expires_at - EARLY <= self._clock():
            return await self.refresh(tokens.access_token)
        return tokens.access_token

    async def refresh(self, stale: str) -> str:
        """A new access token, unless another sender already replaced ``stale``."""
        async with self._lock:
            tokens = self._tokens or read(self.path)
            if tokens.access_token != stale:
                return tokens.access_token
            fresh = await self._exchange(tokens.refresh_token)
            write(self.path, fresh)
            self._tokens = fresh
            return fresh.access_token

    def forget(self) -> None:
        """Read the file again next time (an admin may have put a new pair in it)."""
        self._tokens = None

    async def _exchange(self, refresh_token: str) -> Tokens:
        form = {
            "refresh_token": refresh_token,
            "app_id": self._app_id,
            "grant_type": "refresh_token",
        }
        async with self._http.post(self._url, data=form, headers={"secret_key": self._secret}) as r:
            body = await r.json(content_type=None)
        if not isinstance(body, dict) or not body.get("access_token"):
            said = (
                body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
            )
            raise TokenError(f"Zalo từ chối làm mới token: {said}")
        expires_in = int(body.get("expires_in", 90000))
        return Tokens(
            str(body["access_token"]),
            str(body["refresh_token"]),
            self._clock() + dt.timedelta(seconds=expires_in),
        )
