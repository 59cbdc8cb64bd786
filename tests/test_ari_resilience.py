"""The controller against Asterisk's failure modes: dropped websockets, restarts, errors."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import structlog
from aiohttp import web

from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.errors import BadRequest, Conflict, NotFound, ServerError, Unauthorized
from ivr.ari.events import Backoff, EventStream
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.sim.harness import Harness
from ivr.sim.http import AsteriskSim, Fault
from ivr.sim.scripts import CallerScript, Clerks, Hangup, Press

from .conftest import vn_time
from .scenarios import ANSWER, BUSY

# the REST client and event stream `ivr run` calls go through: on both loops it may run on
pytestmark = pytest.mark.event_loops

SPEED = 10.0
DAY = vn_time("2026-11-25 09:00")
CLERKS = Clerks({"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": BUSY}, default=ANSWER)


async def test_websocket_dropped_mid_call_the_call_goes_on(routing: Routing) -> None:
    observer = MemoryObserver()
    async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu", after=0.5),)))
        await call.reached("prompt:greeting")
        await h.sim.drop_websockets()
        await asyncio.wait_for(call.done, 30)
        await h.idle()
        assert h.sim.connections == 2  # reconnected by itself
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED
    assert record.endpoint == "PJSIP/cchc-4a"


async def test_silent_drop_is_noticed_by_the_heartbeat(routing: Routing) -> None:
    observer = MemoryObserver()
    async with Harness(
        routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY, heartbeat=0.4
    ) as h:
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu", after=0.5),)))
        await call.reached("prompt:greeting")
        h.sim.freeze_websockets()  # open socket, nothing sent, no pong
        await h.sim.wait_connected(2)
        await asyncio.wait_for(call.done, 30)
        await h.idle()
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED


async def test_digit_pressed_while_disconnected_is_lost_and_the_menu_asks_again(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
        h.app.stream.backoff = Backoff(first=2.0, cap=2.0)  # type: ignore[union-attr]
        call = h.sim.call(
            CallerScript(
                (
                    Press("6", on="prompt:main-menu", after=0.2),
                    Press("4", on="prompt:no-input", after=0.5),
                )
            )
        )
        await call.reached("prompt:main-menu")
        await h.sim.drop_websockets()
        await asyncio.wait_for(call.done, 30)
        await h.idle()
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED
    assert record.branch == "4"  # the 6 never reached us
    assert [s.outcome for s in record.steps if s.node == "main-menu"] == ["no_input", "chosen"]


async def test_restarted_controller_hands_orphans_back_to_the_dialplan(routing: Routing) -> None:
    sim = AsteriskSim(speed=SPEED, clerks=CLERKS)
    url = await sim.start()
    try:
        first = AriClient(url, sim.user, sim.password, sim.app)
        app1 = StasisApp(
            first, lambda: routing, MemoryObserver(), clock=lambda: DAY, timer_scale=1 / SPEED
        )
        app1.retry_delays = ()
        task = asyncio.create_task(app1.run())
        await app1.stream.connected.wait()
        call = sim.call(CallerScript(()))
        await call.reached("prompt:main-menu")
        # the controller dies without a word: nothing it still tries reaches Asterisk
        first.base_url = "http://127.0.0.1:9/ari"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        calls = list(app1.calls.values())
        for t in calls:
            t.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await asyncio.gather(*app1._background, return_exceptions=True)
        await first.close()
        await sim.drop_websockets()

        observer = MemoryObserver()
        second = AriClient(url, sim.user, sim.password, sim.app)
        app2 = StasisApp(second, lambda: routing, observer, timer_scale=1 / SPEED)
        task2 = asyncio.create_task(app2.run())
        await asyncio.wait_for(call.done, 30)
        assert "dialplan:hotline-fallback" in call.log
        assert observer.done == []  # the new controller never ran that call
        await app2.stop()
        task2.cancel()
        await asyncio.gather(task2, return_exceptions=True)
        await second.close()
    finally:
        await sim.stop()


async def test_a_call_while_no_controller_is_connected_takes_the_dialplan_fallback() -> None:
    sim = AsteriskSim(speed=SPEED)
    await sim.start()
    try:
        call = sim.call(CallerScript(()))
        await asyncio.wait_for(call.done, 10)
        assert call.log[0] == "stasis-failed"
    finally:
        await sim.stop()


async def test_our_error_mid_call_hands_the_caller_to_the_fallback(routing: Routing) -> None:
    observer = MemoryObserver()
    async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
        h.sim.faults[("POST", "/bridges")] = (500, {"message": "Internal Server Error"})
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu"),)))
        await asyncio.wait_for(call.done, 30)
        await h.idle()
        assert "dialplan:hotline-fallback" in call.log
        assert not [c for c in h.sim.pbx.channels.values() if not c.inbound]  # leg dropped
    (record,) = observer.done
    assert record.disposition is Disposition.ERRORED
    assert record.error is not None
    assert "bridge" in record.error


async def test_caller_hangs_up_at_once(routing: Routing) -> None:
    observer = MemoryObserver()
    async with Harness(routing, observer, speed=SPEED, clock=lambda: DAY) as h:
        call = h.sim.call(CallerScript((Hangup(on="answer"),)))
        await asyncio.wait_for(call.done, 10)
        await h.idle()
    (record,) = observer.done
    assert record.disposition is Disposition.ABANDONED
    assert record.hangup_by == "caller"


async def test_many_calls_in_parallel_each_see_their_own_events(routing: Routing) -> None:
    observer = MemoryObserver()
    async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
        calls = [
            h.sim.call(
                CallerScript(
                    (Press(str(k), on="prompt:main-menu", after=0.1 * k),),
                    number=f"09000000{k:02d}",
                )
            )
            for k in (1, 2, 3, 5, 6, 7, 8)
        ]
        await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 60)
        await h.idle()
    got = {r.caller_number: r.branch for r in observer.done}
    assert got == {f"09000000{k:02d}": str(k) for k in (1, 2, 3, 5, 6, 7, 8)}
    assert all(r.disposition is Disposition.ANSWERED for r in observer.done)


# --- the REST client's typed errors, against the simulator ----------------------------------


async def test_rest_errors_are_typed() -> None:
    sim = AsteriskSim()
    url = await sim.start()
    try:
        async with AriClient(url, sim.user, sim.password, sim.app) as c:
            with pytest.raises(NotFound) as nf:
                await c.channel("does-not-exist")
            assert nf.value.message == "Channel not found"
            with pytest.raises(ServerError) as se:
                await c.originate("Bogus/x", channel_id="x1", app_args="", caller_id="1", timeout=5)
            assert se.value.status == 500
            assert se.value.message == "Allocation failed"
            with pytest.raises(BadRequest) as br:
                await c.originate("PJSIP/", channel_id="x2", app_args="", caller_id="1", timeout=5)
            assert br.value.message == "Invalid endpoint specified"
            with pytest.raises(NotFound):
                await c.stop_playback("does-not-exist")
            with pytest.raises(NotFound):
                await c.destroy_bridge("does-not-exist")
        async with AriClient(url, sim.user, "wrong", sim.app) as bad:
            with pytest.raises(Unauthorized) as ua:
                await bad.channels()
            assert ua.value.message == "Authentication required"
    finally:
        await sim.stop()


async def test_after_continue_the_channel_is_not_ours_any_more() -> None:
    sim = AsteriskSim()
    url = await sim.start()
    events: list[dict[str, Any]] = []
    try:
        async with AriClient(url, sim.user, sim.password, sim.app) as c:
            connected = asyncio.Event()

            async def on_connected(_: bool) -> None:
                connected.set()

            stream = EventStream(c, events.append, on_connected)
            task = asyncio.create_task(stream.run())
            await connected.wait()
            call = sim.call(CallerScript(()))
            await c.answer(call.channel.id)
            await c.continue_in_dialplan(call.channel.id)
            with pytest.raises(Conflict) as cf:
                await c.answer(call.channel.id)
            assert cf.value.message == "Channel not in Stasis application"
            await c.channel(call.channel.id)  # GET still works
            await stream.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await sim.stop()


def test_garbage_on_the_websocket_is_logged_not_fatal() -> None:
    seen: list[dict[str, Any]] = []

    async def noop(_: bool) -> None:
        return None

    stream = EventStream(AriClient("http://127.0.0.1:9/ari", "u", "p", "a"), seen.append, noop)
    stream._dispatch("not json")
    stream._dispatch('["no", "type"]')
    stream._dispatch('{"type": "StasisStart", "channel": {"id": "1"}}')
    assert seen == [{"type": "StasisStart", "channel": {"id": "1"}}]


def test_backoff_grows_with_jitter_and_resets() -> None:
    import random

    b = Backoff(first=0.5, cap=4.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(6)]
    for d, ceiling in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert ceiling / 2 <= d <= ceiling
    b.reset()
    assert b.next_delay() <= 0.5


@pytest.mark.parametrize("window", [0.5, 1000.0], ids=["lost once", "lost every time"])
async def test_a_prompt_asterisk_loses_after_a_bridge_does_not_strand_the_caller(
    routing: Routing, window: float
) -> None:
    """Asterisk 22.10 drops a playback asked for while the caller leaves the conversation's
    bridge (no event, GET 404): seen on the real Asterisk as a caller left in silence at the
    survey for two minutes. The prompt is asked for again; lost twice, the call goes on."""
    observer = MemoryObserver()
    script = CallerScript(
        (Press("4", on="prompt:main-menu", after=0.5), Press("5", on="prompt:survey-question"))
    )
    async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
        h.sim.pbx.bridge_leave_race = window  # nominal seconds after the caller left the bridge
        with structlog.testing.capture_logs() as logs:
            call = h.sim.call(script)
            await asyncio.wait_for(call.done, 60)
            await h.idle()
        assert not [c for c in h.sim.pbx.channels.values() if c.in_stasis]
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED
    events = [e["event"] for e in logs]
    survey = [(s.outcome, s.input) for s in record.steps if s.node == "survey"]
    if window < 1:
        assert events.count("playback lost by Asterisk; asking again") == 1
        assert "survey-question" in call.heard
        assert survey == [("answered", "5")]
    else:  # the question never plays: the survey asks for nothing it was not heard to ask
        assert events.count("playback lost by Asterisk twice; going on") >= 1
        assert "survey-question" not in call.heard
        assert ("answered", "5") not in survey
    assert record.path[-1] == "goodbye"


async def test_the_desks_are_dialled_without_waiting_for_the_menu_prompt_to_stop(
    routing: Routing,
) -> None:
    """The key cuts the menu short; stopping the prompt and dialling both go out at once, so
    the desk rings one round trip sooner. Here Asterisk takes 15 s to answer the stop (the
    client gives up after 12 s): the desks ring all the same, and the call goes on."""
    observer = MemoryObserver()
    stop = ("DELETE", "/playbacks/{playbackId}")
    async with Harness(
        routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY, request_timeout=12
    ) as h:
        h.sim.faults[stop] = Fault(status=204, body={}, stall=15, perform=True, times=1)
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu", after=0.5),)))
        # played once the desks are dialled; in the old order, 12 s at least after the key
        await asyncio.wait_for(call.reached("prompt:please-hold"), 8)
        seen = [(r.method, r.route) for r in h.sim.requests]
        assert seen.index(stop) < seen.index(("POST", "/channels")), seen
        await asyncio.wait_for(call.done, 30)
        await h.idle()
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED
    assert record.endpoint == "PJSIP/cchc-4a"


class _AppObjectServer:
    """ARI's app endpoints, each GET held open until another request on the app arrives (or
    0.3 s pass): a request that comes in while one is open is counted as an overlap."""

    def __init__(self) -> None:
        self.open = 0
        self.overlaps: list[str] = []
        self.arrived = asyncio.Event()
        self.seen: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/ari/applications/hotline{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)

    async def start(self) -> str:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/ari"

    async def _handle(self, request: web.Request) -> web.Response:
        what = f"{request.method} {request.path}"
        self.seen.append(what)
        if self.open:
            self.overlaps.append(what)
        self.arrived.set()
        self.open += 1
        try:
            if request.method == "GET":
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), 0.3)
            body = {"name": "hotline", "channel_ids": []}
            return (
                web.json_response(body) if request.method != "DELETE" else web.Response(status=204)
            )
        finally:
            self.open -= 1


async def test_requests_on_the_app_object_never_overlap_in_asterisk() -> None:
    """Asterisk 22.10.1 reads an app's event filter unlocked while it answers a request with the
    app's JSON, and a PUT eventFilter frees the filter it replaces: sent together they may use
    freed memory. The client sends them one at a time, whoever asks."""
    server = _AppObjectServer()
    url = await server.start()
    client = AriClient(url, "ivr", "secret", "hotline")
    try:
        await asyncio.gather(
            client.application(),
            client.event_filter(["ChannelVarset"]),
            client.subscribe(["channel:1"]),
            client.application(),
            client.unsubscribe(["channel:1"]),
        )
    finally:
        await client.close()
        await server.runner.cleanup()
    assert len(server.seen) == 5
    assert server.overlaps == []
