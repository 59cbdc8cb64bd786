"""A lean HTTP/1.1 client for ARI's REST requests: keep-alive connections to one host.

aiohttp's client path cost ~250-300 µs of CPU per request (request and response objects,
header multidicts, cookie and redirect machinery, tracing hooks); a call makes ~17 requests.
ARI needs none of that: one host, small JSON bodies with a Content-Length, no redirects, no
cookies. This client writes the request in one buffer and parses the status line, the headers
it reads (Content-Length, Transfer-Encoding, Connection, Content-Type) and the body. The events
websocket stays on aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

# keep-alive connections per client: enough for a thousand calls' requests (each a millisecond
# or so), few enough that controllers stay far below Asterisk's HTTP session limit
# (http.conf sessionlimit, 100 by default; asterisk.conf.example raises it to 1000)
POOL = 16
# Asterisk closes a keep-alive connection idle for 15 s (http.conf session_keep_alive): one idle
# longer than this is not reused, so a request is never written into a connection being closed
IDLE_SECONDS = 10.0
MAX_HEAD = 64 * 1024  # status line and headers
MAX_BODY = 32 * 1024 * 1024  # GET /channels of thousands of calls is a few MB
SWEEP_SECONDS = 0.05  # how often requests in flight are checked against their deadline


class NotSent(ConnectionError):
    """The connection could not be opened: the request never reached the server."""


class Disconnected(ConnectionError):
    """The connection closed before a whole response arrived."""


class BadResponse(ConnectionError):
    """What came back is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buf = bytearray()
        self._head: tuple[int, dict[str, str]] | None = None
        self._waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, only alike)
        self.transport = cast(asyncio.Transport, transport)

    def send(self, data: bytes, waiter: asyncio.Future[tuple[Response, bool]]) -> None:
        assert self.transport is not None
        if self.transport.is_closing():  # uvloop's write raises on it, asyncio's drops the data
            raise NotSent("the connection was closing: the request was not sent")
        self._waiter = waiter
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as e:
            self._fail(BadResponse(f"not an HTTP response: {e}"))
            return
        limit = MAX_BODY + MAX_HEAD if self._head is not None else MAX_HEAD
        if len(self._buf) > limit:  # an endless header, body or unasked-for stream: no more
            self._buf.clear()
            self._fail(BadResponse(f"response over {limit} bytes"))

    def eof_received(self) -> bool | None:
        self.closed = True  # no new request on it, even before connection_lost runs
        head = self._head
        if head is not None and _closes_body(head[1]):
            self._deliver(bytes(self._buf), keep=False)  # a body delimited by the close
        return None  # a response cut short fails in connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(Disconnected(f"the server closed the connection ({exc or 'EOF'})"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if not self.closed:
            self.close()

    def _parse(self) -> None:
        if self._waiter is None:
            return
        if self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head = _head(bytes(self._buf[:end]).decode("latin-1"))
            del self._buf[: end + 4]
        headers = self._head[1]
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked()
            if body is None:
                return
        elif not _closes_body(headers) or self._head[0] in (204, 304):
            length = int(headers.get("content-length", "0"))
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"Content-Length {length}")
            if len(self._buf) < length:
                return
            body = bytes(self._buf[:length])
            del self._buf[:length]
        else:
            return  # delimited by the connection's close: eof_received delivers it
        self._deliver(body, keep=headers.get("connection", "").lower() != "close")

    def _chunked(self) -> bytes | None:
        """The whole chunked body, or None while it is incomplete (nothing consumed then)."""
        at, parts = 0, list[bytes]()
        while True:
            eol = self._buf.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(bytes(self._buf[at:eol]).split(b";")[0], 16)
            if size < 0:
                raise ValueError(f"chunk size {size}")
            start = eol + 2
            if size == 0:
                end = self._buf.find(b"\r\n\r\n", eol)  # trailers, if any, then the blank line
                if end < 0:
                    return None
                del self._buf[: end + 4]
                return b"".join(parts)
            if len(self._buf) < start + size + 2:
                return None
            parts.append(bytes(self._buf[start : start + size]))
            at = start + size + 2

    def _deliver(self, body: bytes, *, keep: bool) -> None:
        assert self._head is not None
        status, headers = self._head
        self._head = None
        waiter, self._waiter = self._waiter, None
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if waiter is not None and not waiter.done():
            waiter.set_result((Response(status, content_type, body), keep))


def _head(text: str) -> tuple[int, dict[str, str]]:
    """The status and the headers (names in lower case) of a response's head."""
    first, _, rest = text.partition("\r\n")
    version, status = first.split(" ", 2)[:2]
    if not version.startswith("HTTP/1."):
        raise ValueError(first[:80])
    headers = {}
    for line in rest.split("\r\n") if rest else ():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status), headers


def _closes_body(headers: dict[str, str]) -> bool:
    """A body delimited by the connection's close: neither a length nor chunks."""
    chunked = headers.get("transfer-encoding", "").lower() == "chunked"
    return not chunked and "content-length" not in headers


class HttpClient:
    """Requests to one ``host:port``, over at most ``limit`` keep-alive connections."""

    def __init__(
        self, host: str, port: int, headers: dict[str, str], *, tls: bool = False, limit: int = POOL
    ) -> None:
        self.host, self.port = host, port
        self._ssl = ssl.create_default_context() if tls else None
        host_header = host if ":" not in host else f"[{host}]"
        fixed = {"Host": f"{host_header}:{port}", **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)
        self._all: set[_Connection] = set()
        self._deadlines: dict[asyncio.Future[tuple[Response, bool]], float] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        content_type: str = "",
        timeout: float | None = None,
    ) -> Response:
        """``target`` is the path and query, already encoded. Past ``timeout`` seconds in all
        (waiting for a connection included), TimeoutError."""
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed}Content-Length: {len(body)}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        data = (head + "\r\n").encode("latin-1") + body
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._slots.locked():  # all connections busy: wait for one, within the deadline
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()  # free: taken at once, without a timer
        try:
            conn = self._idle_connection()
            if conn is None:
                async with asyncio.timeout_at(deadline):
                    conn = await self._connect()
            return await self._exchange(conn, data, deadline)
        finally:
            self._slots.release()

    async def _exchange(self, conn: _Connection, data: bytes, deadline: float | None) -> Response:
        """One request on ``conn`` and its response; the connection kept if it may be."""
        waiter: asyncio.Future[tuple[Response, bool]] = asyncio.get_running_loop().create_future()
        if deadline is not None:
            self._watch(waiter, deadline)
        try:
            conn.send(data, waiter)
            response, keep = await waiter
        except BaseException:
            conn.close()
            self._all.discard(conn)
            raise
        finally:
            self._deadlines.pop(waiter, None)
        if keep and not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        return response

    def _watch(self, waiter: asyncio.Future[tuple[Response, bool]], deadline: float) -> None:
        """Fail ``waiter`` with TimeoutError past ``deadline`` (within SWEEP_SECONDS). One
        timer sweeps every request in flight: a timer per request cost more than its request's
        parsing (a heap entry, a Timeout object and a task's uncancel bookkeeping)."""
        self._deadlines[waiter] = deadline
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        late = [w for w, deadline in self._deadlines.items() if deadline <= now]
        for waiter in late:
            del self._deadlines[waiter]
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        if self._deadlines:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._sweep)

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and time.monotonic() - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()  # closed by Asterisk, or about to be: never send on it
            self._all.discard(conn)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl)
        except OSError as e:
            raise NotSent(f"cannot connect to {self.host}:{self.port}: {e}") from e
        self._all.add(conn)
        return conn

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
