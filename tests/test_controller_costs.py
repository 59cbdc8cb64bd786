"""What keeps the controller cheap per call, kept honest: the writer batches records that arrive
close together, and nothing waits for its batching (drain, a full batch)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.errors import AriUnavailable
from ivr.ari.event_types import UNWANTED, AriEvent
from ivr.ari.events import Backoff, EventStream
from ivr.flow.record import MemoryObserver
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.harness import Harness
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.rows import Op
from ivr.store.writer import StoreWriter

from .conftest import stop_controller, vn_time

DAY = vn_time("2026-11-25 09:00")


class CountingWriter(StoreWriter):
    """The real writer, noting the size of every batch it writes and when it lingers."""

    def __init__(self, engine: AsyncEngine, spool: Path, **kwargs: Any) -> None:
        super().__init__(engine, spool, **kwargs)
        self.batches: list[int] = []
        self.lingering = asyncio.Event()
        self.written = asyncio.Event()

    async def _linger(self) -> None:
        self.lingering.set()
        await super()._linger()

    async def _write(self, ops: list[Op]) -> bool:
        self.batches.append(len(ops))
        ok = await super()._write(ops)
        self.written.set()
        return ok


async def _writer(tmp_path: Path, **kwargs: Any) -> CountingWriter:
    await asyncio.to_thread(upgrade, sqlite_url(tmp_path))
    writer = CountingWriter(make_engine(sqlite_url(tmp_path)), tmp_path / "spool", **kwargs)
    await writer.start()
    return writer


async def _stop(writer: StoreWriter) -> None:
    await writer.stop()
    await writer.engine.dispose()


async def test_records_arriving_while_the_writer_lingers_share_one_batch(tmp_path: Path) -> None:
    writer = await _writer(tmp_path, linger_seconds=600)
    writer.call_cause("a", 16, "Normal Clearing")
    await asyncio.wait_for(writer.lingering.wait(), 30)  # the first record taken
    writer.call_cause("b", 16, "Normal Clearing")
    writer.call_cause("c", 17, "User busy")
    await asyncio.wait_for(writer.drain(), 30)  # drain does not wait out the linger
    assert writer.batches == [3]
    await _stop(writer)


async def test_a_full_batch_is_written_without_lingering(tmp_path: Path) -> None:
    writer = await _writer(tmp_path, linger_seconds=600, batch_size=2)
    writer.call_cause("a", 16, "Normal Clearing")
    await asyncio.wait_for(writer.lingering.wait(), 30)
    writer.call_cause("b", 16, "Normal Clearing")
    await asyncio.wait_for(writer.written.wait(), 30)  # no drain: the full batch cut it short
    assert writer.batches == [2]
    await _stop(writer)


class FakeAri:
    """A bare ARI: the events websocket (closed by the test to force a reconnection), the
    app's listing, and the event filter, whose bodies it keeps."""

    def __init__(self) -> None:
        self.filters: list[Any] = []
        self.filtered = asyncio.Event()
        self.sockets: list[web.WebSocketResponse] = []
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_get("/ari/applications/hotline", self._app)
        app.router.add_put("/ari/applications/hotline/eventFilter", self._filter)
        app.router.add_delete("/ari/channels/{id}", self._hangup)
        self.channels: set[str] = set()  # what DELETE finds (204); any other id is a 404
        self.hung_up: list[str] = []
        self.runner = web.AppRunner(app)

    async def start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/ari"

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        async for _ in ws:
            pass
        return ws

    async def _app(self, request: web.Request) -> web.Response:
        return web.json_response({"name": "hotline", "channel_ids": []})

    async def _hangup(self, request: web.Request) -> web.Response:
        channel = request.match_info["id"]
        self.hung_up.append(channel)
        if channel not in self.channels:
            return web.json_response({"message": "Channel not found"}, status=404)
        self.channels.discard(channel)
        return web.Response(status=204)

    async def _filter(self, request: web.Request) -> web.Response:
        self.filters.append(await request.json())
        self.filtered.set()
        return web.json_response({"name": "hotline", "channel_ids": []})


async def test_the_event_filter_is_set_at_connect_and_after_a_reconnect(routing: Routing) -> None:
    ari = FakeAri()
    url = await ari.start()
    client = AriClient(url, "ivr", "secret", "hotline")
    app = StasisApp(client, lambda: routing, MemoryObserver())
    app.stream.backoff = Backoff(first=0.05, cap=0.05)
    task = asyncio.create_task(app.run())
    try:
        await asyncio.wait_for(ari.filtered.wait(), 30)
        ari.filtered.clear()
        await ari.sockets[0].close()  # Asterisk restarted, say
        await asyncio.wait_for(ari.filtered.wait(), 30)
    finally:
        await stop_controller(app, task)
        await ari.runner.cleanup()
    wanted = {"allowed": [], "disallowed": [{"type": t} for t in UNWANTED]}
    assert ari.filters == [wanted, wanted]
    assert app.stream.connections == 2
    read = {"StasisStart", "StasisEnd", "ChannelDtmfReceived", "ChannelHangupRequest"}
    read |= {"ChannelDestroyed", "PlaybackStarted", "PlaybackFinished"}
    read |= {"RecordingFinished", "RecordingFailed", "CallBroadcast", "CallClaimed"}
    assert not read & set(UNWANTED)
    assert "ChannelVarset" in UNWANTED
    assert "Dial" in UNWANTED  # a desk's progress: its hang-up cause tells a busy desk


async def _bare_app(routing: Routing) -> tuple[FakeAri, StasisApp]:
    ari = FakeAri()
    url = await ari.start()
    return ari, StasisApp(
        AriClient(url, "ivr", "secret", "hotline"), lambda: routing, MemoryObserver()
    )


async def _close(ari: FakeAri, app: StasisApp) -> None:
    await app.client.close()
    await ari.runner.cleanup()


async def test_a_leg_answering_while_it_is_hung_up_is_not_an_orphan(routing: Routing) -> None:
    ari, app = await _bare_app(routing)
    session = app._session(CallInfo("caller-1", "0901234567"), routing)
    app.routes["caller-1"] = session
    ari.channels.add("caller-1-leg2")
    app.claim("caller-1-leg2", session)
    session._legs["caller-1-leg2"] = "PJSIP/cchc-4b"
    with capture_logs() as logs:
        await session._drop_legs()  # the other desk answered first: this one is hung up
        answered: AriEvent = {
            "type": "StasisStart",
            "channel": {"id": "caller-1-leg2"},
            "args": ["dialed", "caller-1"],
        }
        app.on_event(answered)  # its answer was already on the way
    assert ari.hung_up == ["caller-1-leg2"]  # once: no second hang-up of an "orphan"
    assert not app._background
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []
    assert session.queue.get_nowait() == answered  # its own call got it, and ignores it
    app.on_event({"type": "ChannelDestroyed", "channel": {"id": "caller-1-leg2"}, "cause": 16})
    assert await session._next(0) is not None
    assert "caller-1-leg2" not in app.routes  # released once Asterisk says it is gone
    await _close(ari, app)


async def test_an_orphan_leg_already_gone_is_not_an_error(routing: Routing) -> None:
    ari, app = await _bare_app(routing)
    with capture_logs() as logs:
        await app._drop_orphan_leg("gone-leg")  # DELETE answers 404 Channel not found
    assert ari.hung_up == ["gone-leg"]
    assert [e["log_level"] for e in logs if e["log_level"] == "error"] == []
    await _close(ari, app)


async def test_a_request_during_the_reconnect_gap_succeeds_after_reconnection(
    routing: Routing,
) -> None:
    ari = FakeAri()
    with socket.socket() as s:  # a port nothing listens on until the "restarted Asterisk" does
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AriClient(f"http://127.0.0.1:{port}/ari", "ivr", "secret", "hotline")
    client.link = asyncio.Event()  # the websocket is down
    failed = asyncio.Event()
    client.on_unreachable = lambda _method, _path: failed.set()
    request = asyncio.create_task(client.application())
    await asyncio.wait_for(failed.wait(), 30)  # refused: Asterisk is not there
    await ari.runner.setup()
    await web.TCPSite(ari.runner, "127.0.0.1", port).start()
    client.link.set()  # the websocket reconnected
    app = await asyncio.wait_for(request, 30)
    assert app.name == "hotline"
    await client.close()
    await ari.runner.cleanup()


async def test_a_request_refused_past_the_bound_fails_as_before() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AriClient(f"http://127.0.0.1:{port}/ari", "ivr", "secret", "hotline")
    client.link = asyncio.Event()  # never reconnects
    attempts: list[str] = []
    client.on_unreachable = lambda method, _path: attempts.append(method)
    with pytest.raises(AriUnavailable):
        await asyncio.wait_for(client.application(), 30)  # bounded: RETRY_WINDOW_SECONDS
    assert len(attempts) >= 2  # tried again before giving up
    await client.close()


def test_events_never_read_are_dropped_before_decoding() -> None:
    seen: list[str] = []

    async def connected(_reconnect: bool) -> None:
        return None

    client = AriClient("http://127.0.0.1:1/ari", "ivr", "secret", "hotline")
    stream = EventStream(client, lambda e: seen.append(e["type"]), connected)
    stream._dispatch('{"type":"ChannelVarset","variable":"X","value":"1","channel":{"id":"c"}}')
    stream._dispatch('{\n  "type": "ChannelDialplan",\n  "channel": {"id": "c"}\n}')  # pretty
    stream._dispatch('{"type":"StasisStart","args":[],"channel":{"id":"c"}}')
    stream._dispatch('{"channel":{"id":"c"},"type":"ChannelVarset"}')  # another order: decoded
    stream._dispatch('{"type":"ChannelDtmfReceived","digit":"4","channel":{"id":"c"}}')
    assert seen == ["StasisStart", "ChannelVarset", "ChannelDtmfReceived"]


async def test_a_desk_that_hangs_up_is_not_sent_a_hang_up(routing: Routing) -> None:
    observer = MemoryObserver()
    clerks = Clerks(default=ClerkScript(ClerkKind.ANSWER, ring_seconds=1, talk_seconds=2))
    async with Harness(routing, observer, speed=10, clerks=clerks, clock=lambda: DAY) as h:
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu", after=0.5),)))
        await asyncio.wait_for(call.done, 60)
        await h.idle()
    (record,) = observer.done
    dialled = [r.query for r in h.sim.requests if r.method == "POST" and r.route == "/channels"]
    legs = {q["endpoint"]: q["channelId"] for q in dialled}
    hung_up = {r.path.rsplit("/", 1)[1] for r in h.sim.requests if r.method == "DELETE"}
    assert record.endpoint in legs
    assert legs.pop(record.endpoint) not in hung_up  # it hung up itself: no DELETE
    assert set(legs.values()) <= hung_up  # the other desk is hung up


@pytest.mark.parametrize("answered_by_dialplan", [True, False], ids=["dialplan", "controller"])
async def test_a_call_the_dialplan_answered_is_not_answered_again(
    routing: Routing, answered_by_dialplan: bool
) -> None:
    """dialplan/hotline.conf answers before Stasis(): one request a call less. A site's own
    dialplan that does not still has its callers answered by the controller."""
    observer = MemoryObserver()
    clerks = Clerks(default=ClerkScript(ClerkKind.ANSWER, ring_seconds=1, talk_seconds=2))
    async with Harness(routing, observer, speed=10, clerks=clerks, clock=lambda: DAY) as h:
        h.sim.pbx.answer_before_stasis = answered_by_dialplan
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu", after=0.5),)))
        await asyncio.wait_for(call.done, 60)
        await h.idle()
    (record,) = observer.done
    assert record.disposition == "answered"
    assert record.answered_at is not None
    assert call.log.count("answer") == 1  # the caller was answered once, by one of them
    answers = [r for r in h.sim.requests if r.path.endswith("/answer")]
    assert len(answers) == (0 if answered_by_dialplan else 1)
