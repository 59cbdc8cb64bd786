"""ARI hardening (issue 14 rows 5, 17, 23): a fake ARI on loopback that answers 401, garbage or
valid JSON, and what the controller logs and does about it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from structlog.processors import format_exc_info
from structlog.testing import capture_logs

from ivr.ari import http as ari_http
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.errors import AriUnavailable, MalformedResponse, NotFound
from ivr.ari.events import Backoff, EventStream
from ivr.ari.http import MAX_BODY, MAX_HEAD, BadResponse, Disconnected, HttpClient
from ivr.flow.record import MemoryObserver
from ivr.routing.model import Routing

from .loopback import no_content, peer

# the REST client and event stream `ivr run` calls go through: on both loops it may run on
pytestmark = pytest.mark.event_loops

SECRET = "S3cr3t-hotline-pw"
TIMEOUT = 20.0

Handler = Callable[[web.Request], Any]


class FakeAri:
    """An aiohttp server on 127.0.0.1 standing in for Asterisk's ARI: each test says how the
    routes answer; every request is counted and remembered."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.changed = asyncio.Condition()
        self.routes: dict[tuple[str, str], Handler] = {}
        self.sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/ari"
        return self.url

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _any(self, request: web.Request) -> Any:
        async with self.changed:
            self.requests.append((request.method, request.path))
            self.changed.notify_all()
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"message": "Not found"}, status=404)
        return await handler(request)

    async def wait_for(self, method: str, path: str, count: int = 1) -> None:
        async def enough() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: self.requests.count((method, path)) >= count)

        await asyncio.wait_for(enough(), TIMEOUT)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        async for _ in ws:
            pass
        return ws


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    fake = FakeAri()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def _rendered(logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> str:
    lines = [repr(format_exc_info(None, "", dict(line))) for line in logs]
    return "\n".join(lines) + caplog.text


def _secret_forms(user: str, password: str) -> list[str]:
    return [
        password,
        base64.b64encode(f"{user}:{password}".encode()).decode(),
        base64.b64encode(password.encode()).decode(),
        "Authorization",
    ]


# --- row 5: a wrong ARI password ----------------------------------------------------------------


async def _unauthorized(_: web.Request) -> web.Response:
    return web.json_response({"message": "Authentication required"}, status=401)


async def test_a_wrong_ari_password_is_never_logged(
    fake_ari: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    fake_ari.routes[("GET", "/ari/events")] = _unauthorized
    caplog.set_level(logging.DEBUG)

    async def never(_: bool) -> None:
        raise AssertionError("connected with a wrong password")

    async with AriClient(fake_ari.url, "ivr", SECRET, "hotline") as client:
        stream = EventStream(client, lambda _e: None, never, backoff=Backoff(first=0.01, cap=0.02))
        with capture_logs() as logs:
            task = asyncio.create_task(stream.run())
            await fake_ari.wait_for("GET", "/ari/events", count=3)
            await stream.stop()
            await asyncio.wait_for(task, TIMEOUT)
    failures = [line for line in logs if line.get("status") == 401]
    assert len(failures) >= 3
    assert all("sai mật khẩu ARI" in line["reason"] for line in failures)
    text = _rendered(logs, caplog)
    for form in _secret_forms("ivr", SECRET):
        assert form not in text


# --- row 17: garbage where ARI's JSON should be ----------------------------------------------


GARBAGE: list[tuple[str, str]] = [
    ("application/json", "{not json"),
    ("application/json", '["a", "list"]'),
    ("application/json", '{"channel_ids": ["x"]}'),  # no name
    ("application/json", '{"name": "hotline", "channel_ids": 5}'),
    ("application/json", '{"name": "hotline", "channel_ids": [1, {"id": "x"}]}'),
    ("text/html", "<html>proxy error</html>"),
]


@pytest.mark.parametrize(("content_type", "body"), GARBAGE)
async def test_a_malformed_body_is_a_typed_error(
    fake_ari: FakeAri, content_type: str, body: str
) -> None:
    async def garbage(_: web.Request) -> web.Response:
        return web.Response(body=body.encode(), content_type=content_type)

    fake_ari.routes[("GET", "/ari/applications/hotline")] = garbage
    fake_ari.routes[("GET", "/ari/channels/c1")] = garbage
    fake_ari.routes[("GET", "/ari/channels/c1/variable")] = garbage
    async with AriClient(fake_ari.url, "ivr", SECRET, "hotline") as client:
        with pytest.raises(MalformedResponse) as bad:
            await client.application()
        assert "GET /applications/hotline" in str(bad.value)
        assert isinstance(bad.value, AriUnavailable)  # retried like an outage, never trusted
        with pytest.raises(MalformedResponse):
            await client.channel("c1")
        if not body.startswith("{"):  # any JSON object is a variable's answer
            with pytest.raises(MalformedResponse):
                await client.get_variable("c1", "X")


async def test_a_success_nobody_reads_is_not_decoded_and_its_errors_still_are(
    fake_ari: FakeAri,
) -> None:
    """Starting a playback, dialling a leg and making a bridge only need to know they worked:
    their answers' bodies are not decoded, even when they are not JSON. Their errors are."""

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(body=b"{not json", content_type="application/json", status=201)

    async def gone(_: web.Request) -> web.Response:
        return web.json_response({"message": "Channel not found"}, status=404)

    fake_ari.routes[("POST", "/ari/channels/c1/play/p1")] = garbage
    fake_ari.routes[("POST", "/ari/channels")] = garbage
    fake_ari.routes[("POST", "/ari/bridges")] = garbage
    fake_ari.routes[("POST", "/ari/channels/c2/play/p2")] = gone
    async with AriClient(fake_ari.url, "ivr", SECRET, "hotline") as client:
        await client.play("c1", "p1", ["sound:hotline/greeting"])  # no MalformedResponse
        await client.originate(
            "PJSIP/cchc-4a", channel_id="l1", app_args="dialed,c1", caller_id="1", timeout=5
        )
        await client.create_bridge("b1", "call-c1")
        with pytest.raises(NotFound) as nf:
            await client.play("c2", "p2", ["sound:hotline/greeting"])
        assert nf.value.message == "Channel not found"
    # each sent once: nothing was retried
    for path in ("/ari/channels/c1/play/p1", "/ari/channels", "/ari/bridges"):
        assert fake_ari.requests.count(("POST", path)) == 1


async def test_recovery_survives_garbage_retries_and_hands_orphans_back(
    fake_ari: FakeAri, routing: Routing
) -> None:
    answers = iter(GARBAGE)
    continued = asyncio.Event()

    async def application(_: web.Request) -> web.Response:
        garbage = next(answers, None)
        if garbage is not None:
            content_type, body = garbage
            return web.Response(body=body.encode(), content_type=content_type)
        return web.json_response({"name": "hotline", "channel_ids": ["orphan-1"]})

    async def channel(_: web.Request) -> web.Response:
        return web.json_response(
            {"id": "orphan-1", "name": "PJSIP/trunk-1", "state": "Up", "dialplan": {}}
        )

    async def cont(_: web.Request) -> web.Response:
        continued.set()
        return web.Response(status=204)

    fake_ari.routes[("GET", "/ari/events")] = fake_ari.websocket
    fake_ari.routes[("GET", "/ari/applications/hotline")] = application
    fake_ari.routes[("GET", "/ari/channels/orphan-1")] = channel
    fake_ari.routes[("POST", "/ari/channels/orphan-1/continue")] = cont
    async with AriClient(fake_ari.url, "ivr", SECRET, "hotline") as client:
        app = StasisApp(client, lambda: routing, MemoryObserver())
        app.recover_backoff = Backoff(first=0.01, cap=0.05)
        with capture_logs() as logs:
            task = asyncio.create_task(app.run())
            await asyncio.wait_for(continued.wait(), TIMEOUT)
            await app.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert fake_ari.requests.count(("GET", "/ari/applications/hotline")) == len(GARBAGE) + 1
    retries = [line for line in logs if line["event"] == "could not list the app's channels"]
    assert len(retries) == len(GARBAGE)
    assert all(line["log_level"] == "error" for line in retries)


# --- row 23: a password inside ari_url ---------------------------------------------------------


async def test_a_password_in_ari_url_is_sent_as_a_header_and_never_kept_in_the_url(
    fake_ari: FakeAri,
) -> None:
    seen: list[str] = []

    async def application(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"name": "hotline", "channel_ids": []})

    fake_ari.routes[("GET", "/ari/applications/hotline")] = application
    url = fake_ari.url.replace("http://", f"http://ivr:{SECRET}@")
    async with AriClient(url, "ivr", "", "hotline") as client:
        assert SECRET not in client.base_url
        stream = EventStream(client, lambda _e: None, _nothing)
        assert SECRET not in stream.url
        assert (await client.application()).channel_ids == ()
    assert seen == ["Basic " + base64.b64encode(f"ivr:{SECRET}".encode()).decode()]


async def _nothing(_: bool) -> None:
    return None


async def test_an_unreachable_ari_is_described_without_its_password() -> None:
    url = f"http://ivr:{SECRET}@127.0.0.1:9/ari"  # port 9 (discard): nothing listens
    async with AriClient(url, "ivr", "", "hotline", request_timeout=5) as client:
        with pytest.raises(AriUnavailable) as down:
            await client.application()
    for form in _secret_forms("ivr", SECRET):
        assert form not in str(down.value)


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nX-Endless: " + b"a" * (MAX_HEAD + 10),  # a header that never ends
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: " + str(MAX_BODY + 1).encode() + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * (MAX_BODY + MAX_HEAD + 10),
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-6\r\nabcdef\r\n",
    ],
    ids=[
        "endless-header",
        "negative-length",
        "huge-length",
        "endless-body",
        "not-http",
        "negative-chunk",
    ],
)
async def test_the_rest_client_refuses_a_response_it_should_not_hold(reply: bytes) -> None:
    """ARI's REST client reads every response within bounds: a peer that sends an endless
    header or body, or something that is not HTTP, costs one failed request, not memory."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            await reader.read()  # until the client gives up and closes
        writer.close()

    async with peer(answer) as port:
        client = HttpClient("127.0.0.1", port, {})
        try:
            with pytest.raises(BadResponse):
                await asyncio.wait_for(client.request("GET", "/ari/channels"), 30)
        finally:
            client.close()


async def test_a_chunked_body_cut_short_is_a_failure_not_a_response() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"id":')
        await writer.drain()
        writer.close()  # gone in the middle of the chunk

    async with peer(answer) as port:
        client = HttpClient("127.0.0.1", port, {})
        try:
            with pytest.raises(Disconnected):
                await asyncio.wait_for(client.request("GET", "/ari/channels"), 30)
        finally:
            client.close()


async def test_a_connection_idle_too_long_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asterisk closes a keep-alive connection idle for 15 s; the client opens a new one after
    IDLE_SECONDS rather than write a request into one that may be closing."""
    opened: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        await no_content(reader, writer)

    async with peer(answer) as port:
        client = HttpClient("127.0.0.1", port, {})
        try:
            assert (await client.request("GET", "/a")).status == 204
            assert (await client.request("GET", "/b")).status == 204
            assert len(opened) == 1  # kept alive
            monkeypatch.setattr(ari_http, "IDLE_SECONDS", 0.0)
            assert (await client.request("GET", "/c")).status == 204
            assert len(opened) == 2  # the idle one was not reused
        finally:
            client.close()


async def test_a_request_past_its_timeout_fails_and_its_connection_is_dropped() -> None:
    """Deadlines are checked by one sweeping timer: a peer that never answers costs the request
    a TimeoutError within its timeout (and a sweep), and its connection is never reused (a late
    answer would be read as the next request's)."""
    opened: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            if len(opened) > 1:  # the first connection's request is never answered
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
            await reader.read()
        writer.close()

    async with peer(answer) as port:
        client = HttpClient("127.0.0.1", port, {})
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request("GET", "/a", timeout=0.2), 30)
            assert (
                await asyncio.wait_for(client.request("GET", "/b", timeout=5), 30)
            ).status == 204
            assert len(opened) == 2
        finally:
            client.close()
