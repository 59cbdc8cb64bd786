"""A TCP accept loop with a connection cap, that can neither spin nor flood the log.

asyncio's own server logs every failed ``accept()`` (with a traceback) and, once the process is
out of descriptors, does so thousands of times a second. Here accept errors back off up to a
second, connections over the cap are closed at once, and both are logged at most once per
``LOG_EVERY`` seconds with a count of what happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("ivr.agi")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

LOG_EVERY = 30.0
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 1.0


class Throttled:
    """One log line per ``every`` seconds at most, counting the occurrences it did not log."""

    def __init__(self, event: str, every: float = LOG_EVERY) -> None:
        self.event = event
        self.every = every
        self.total = 0
        self._unlogged = 0
        self._last: float | None = None

    def note(self, **fields: Any) -> None:
        self.total += 1
        self._unlogged += 1
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            return
        log.warning(self.event, count=self._unlogged, **fields)
        self._last, self._unlogged = now, 0


class Listener:
    def __init__(self, handler: Handler, *, max_connections: int, limit: int) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.handler = handler
        self.max_connections = max_connections
        self.limit = limit
        self.open = 0
        self.over_cap = Throttled("FastAGI connection refused: too many connections")
        self.accept_failed = Throttled("FastAGI accept failed; retrying")
        self._sock: socket.socket | None = None
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        sock = socket.create_server(infos[0][4][:2], family=family, backlog=128)
        sock.setblocking(False)
        self._sock = sock
        self._loop = asyncio.create_task(self._accept_loop(sock))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting; connections already taken go on to their end."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._sock is not None:
            self._sock.close()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backoff = BACKOFF_FIRST
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as e:
                self.accept_failed.note(error=e.strerror or str(e), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            if self.open >= self.max_connections:
                conn.close()
                self.over_cap.note(limit=self.max_connections, peer=str(peer))
                continue
            self.open += 1
            task = asyncio.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=self.limit)
        except OSError as e:
            conn.close()
            log.warning("FastAGI connection could not be set up", error=str(e))
            self.open -= 1
            return
        try:
            await self.handler(reader, writer)
        finally:
            self.open -= 1
