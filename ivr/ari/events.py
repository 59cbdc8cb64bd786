"""The ARI events websocket: connect, keep alive, reconnect with backoff and jitter.

Asterisk re-sends nothing after a drop, so every (re)connection calls ``on_connected`` for the
application to look for the channels it owns (see :mod:`ivr.ari.app`). A silent drop is noticed
by websocket pings: one every ``heartbeat`` seconds, the connection dropped if no pong arrives
within half of that, so within 10 s with the default of 5.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
import structlog

from ivr.ari.client import AriClient, describe
from ivr.ari.event_types import UNWANTED, AriEvent, parse_event

log = structlog.get_logger("ivr.ari.events")

# Asterisk writes an event's type first: an event of a type we never read is dropped by a look at
# its first bytes, before JSON decoding (another order is simply decoded and delivered).
_TYPE = re.compile(r'\s*\{\s*"type"\s*:\s*"([A-Za-z]+)"')
_SKIPPED = frozenset(UNWANTED)

EventHandler = Callable[[AriEvent], None]
ConnectHandler = Callable[[bool], Awaitable[None]]


_REFUSALS = {
    401: "sai mật khẩu ARI (ari_user / ari_password)",
    403: "tài khoản ARI không được phép dùng ứng dụng này",
    404: "không có ARI ở địa chỉ này (ari_url), hoặc ARI chưa được bật",
}


def refusal(status: int) -> str:
    """Why Asterisk refused us, in words for the admin."""
    return _REFUSALS.get(status, f"Asterisk từ chối kết nối (mã HTTP {status})")


class Backoff:
    """Exponential backoff with full jitter, reset after a connection that lived."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.first = first
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * (2**self.attempt))
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class EventStream:
    def __init__(
        self,
        client: AriClient,
        on_event: EventHandler,
        on_connected: ConnectHandler,
        *,
        heartbeat: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.on_event = on_event
        self.on_connected = on_connected
        self.heartbeat = heartbeat
        self.backoff = backoff or Backoff()
        self.connected = asyncio.Event()
        self.connections = 0
        self._stopping = False

    @property
    def url(self) -> str:
        base = self.client.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{base}/events?{urlencode({'app': self.client.app, 'subscribeAll': 'false'})}"

    async def run(self) -> None:
        """Stay connected until :meth:`stop`; never returns on a network error."""
        while not self._stopping:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except aiohttp.ClientResponseError as e:  # its repr holds our request's headers
                log.error("ARI refused the websocket", status=e.status, reason=refusal(e.status))
            except Exception as e:
                log.warning("ARI websocket failed", error=describe(e))
            self.connected.clear()
            if self.stopping:
                break
            delay = self.backoff.next_delay()
            log.info("reconnecting to ARI", in_seconds=round(delay, 2))
            await asyncio.sleep(delay)

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def stop(self) -> None:
        self._stopping = True

    async def _session(self) -> None:
        http = self.client.http()
        async with http.ws_connect(
            self.url,
            heartbeat=self.heartbeat,
            headers=self.client.auth_header,
            max_msg_size=16 * 1024 * 1024,
        ) as ws:
            self.connections += 1
            reconnect = self.connections > 1
            log.info("ARI websocket connected", app=self.client.app, reconnect=reconnect)
            self.backoff.reset()
            self.connected.set()
            await self.on_connected(reconnect)
            async for msg in ws:
                if self._stopping:
                    break
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
            log.warning("ARI websocket closed", code=ws.close_code)

    def _dispatch(self, text: str) -> None:
        head = _TYPE.match(text)
        if head is not None and head.group(1) in _SKIPPED:
            return  # never read: not even decoded (an Asterisk that refused the event filter)
        try:
            raw = json.loads(text)
        except ValueError:
            log.error("ARI sent a message that is not JSON", head=text[:200])
            return
        event = parse_event(raw)
        if event is None:
            log.error("ARI sent a message without a type or an object id", head=text[:200])
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("event handler failed", event_type=event["type"])
