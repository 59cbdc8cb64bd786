"""The Stasis application: one dispatcher per websocket, one task per call.

The dispatcher holds no logic: it maps every event to the call that owns the channel (the
caller's own channel, or a leg the call originated) and puts it on that call's queue, so each
call sees its events in order while calls run in parallel.

Recovery rule, on every (re)connection (Asterisk re-sends nothing after a drop):
- a channel in our app that a live call of this process owns is *resumed*: the call re-checks
  what it was waiting for (its playback, recording, dialled legs) with GET requests;
- a channel nobody here owns (the controller restarted mid-call) is *handed back* to the
  dialplan's fallback context, where the static menu or the operator takes it; a leg we dialled
  earlier and no longer own is hung up. Nobody is left in dead air.

The same rule runs as a watchdog every few seconds: a channel listed in our app twice in a row
that no live call owns is handed back. A call that ends without releasing its channel (the
hand-back could not be confirmed) leaves it to the app, which hands it back at once. Past the
configured limits (:mod:`ivr.ari.overload`) a new call is *shed*: sent straight to the fallback,
counted on /metrics. On shutdown, calls still running after the drain are handed back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from ivr.ari.client import AriClient
from ivr.ari.errors import AriError, AriUnavailable, Conflict, NotFound
from ivr.ari.event_types import UNWANTED, AriEvent, ChannelRef, event_target
from ivr.ari.events import Backoff, EventStream
from ivr.ari.models import Application
from ivr.ari.overload import Limits, LoopLag, Smoothed, overloaded
from ivr.ari.session import GIVE_UP_RETRY_DELAYS, AriCallSession, retrying
from ivr.flow.context import Clock, utc_now
from ivr.flow.engine import run_call
from ivr.flow.hand_back import hand_back
from ivr.flow.record import CallObserver, Identified
from ivr.metrics import CALLS_SHED, CHANNELS_RECOVERED, DtmfLatency
from ivr.routing.model import Routing
from ivr.session import CallInfo

log = structlog.get_logger("ivr.ari.app")

ORPHAN_GRACE_SECONDS = 1.0
SHUTDOWN_HAND_BACK_SECONDS = 10.0  # after the drain: how long hand-backs may take at most


class StasisApp:
    def __init__(
        self,
        client: AriClient,
        routing: Callable[[], Routing],
        observer: CallObserver,
        *,
        clock: Clock = utc_now,
        sound_prefix: str = "hotline",
        recordings_dir: str = "/var/spool/asterisk/recording",
        heartbeat: float = 5.0,
        timer_scale: float = 1.0,
        clock_for: Callable[[CallInfo], Clock] | None = None,
        unreachable: Callable[[str], bool] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.unreachable = unreachable
        self.limits = limits or Limits()
        self.loop_lag = LoopLag()
        self.ari_latency = Smoothed()
        self.retry_delays: tuple[float, ...] = GIVE_UP_RETRY_DELAYS
        self.client = client
        self.clock = clock
        self.timer_scale = timer_scale
        self.clock_for: Callable[[CallInfo], Clock] = clock_for or (lambda _info: clock)
        self.routing = routing
        self.observer = observer
        self.sound_prefix = sound_prefix
        self.recordings_dir = recordings_dir
        self.routes: dict[str, AriCallSession] = {}
        self.calls: dict[str, asyncio.Task[None]] = {}
        self.stream = EventStream(client, self.on_event, self.on_connected, heartbeat=heartbeat)
        client.link = self.stream.connected  # a request made while it reconnects waits for it
        self.recover_backoff = Backoff(first=0.5, cap=30.0)  # listing channels after a connect
        self._background: set[asyncio.Task[None]] = set()
        self.latency = DtmfLatency()
        client.on_request = self.latency.request

    # --- LegRegistry --------------------------------------------------------------------------

    def claim(self, channel_id: str, session: AriCallSession) -> None:
        self.routes[channel_id] = session

    def release(self, channel_id: str) -> None:
        self.routes.pop(channel_id, None)

    # --- events -------------------------------------------------------------------------------

    def on_event(self, event: AriEvent) -> None:
        kind = event["type"]
        if kind == "ChannelDtmfReceived":
            self.latency.dtmf(event["channel"]["id"])
        if kind == "StasisStart":
            channel_id = event["channel"]["id"]
            if channel_id in self.routes:
                self.routes[channel_id].queue.put_nowait(event)
            elif event.get("args", [])[:1] == ["dialed"]:
                self._spawn(self._drop_orphan_leg(channel_id))
            else:
                self._arrived(event)
            return
        target = event_target(event)
        session = self.routes.get(target) if target is not None else None
        if session is not None:
            session.queue.put_nowait(event)

    def _arrived(self, event: AriEvent) -> None:
        """A new call: taken, or shed to the fallback when past a limit."""
        why = overloaded(self.limits, len(self.calls), self.loop_lag.lag, self.ari_latency.value)
        if why is None:
            self._start_call(event)
            return
        channel_id = event["channel"]["id"]
        CALLS_SHED.labels(why).inc()
        log.warning("overloaded: new call sent to the fallback", call=channel_id, limit=why)
        self._spawn(self._hand_back(channel_id, f"overload:{why}", leg_check=False))

    @staticmethod
    def _call_info(ch: ChannelRef) -> CallInfo:
        """Who is calling and what they dialled, from the channel of a StasisStart."""
        caller = ch.get("caller") or {}
        plan = ch.get("dialplan") or {}
        return CallInfo(
            channel_id=ch["id"],
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            dialed=str(plan.get("exten", "")),
            linked_id=str(ch.get("linkedid", "") or ch["id"]),
        )

    def _session(self, info: CallInfo, routing: Routing, *, up: bool = False) -> AriCallSession:
        session = AriCallSession(
            self.client,
            self,
            info,
            answered=up,
            language=routing.hotline.language,
            sound_prefix=self.sound_prefix,
            recordings_dir=self.recordings_dir,
            timer_scale=self.timer_scale,
            unreachable=self.unreachable,
        )
        session.retry_delays = self.retry_delays
        return session

    def _start_call(self, event: AriEvent) -> None:
        info = self._call_info(event["channel"])
        try:
            routing = self.routing()
            # answered already: dialplan/hotline.conf answers before Stasis()
            up = event["channel"].get("state") == "Up"
            session = self._session(info, routing, up=up)
        except Exception:
            log.exception("could not start a call; handing it back", call=info.channel_id)
            self._spawn(self._hand_back(info.channel_id, None))
            return
        self.routes[info.channel_id] = session
        node = str(event.get("asterisk_id", ""))  # the Asterisk's entity id: part of the key
        task = asyncio.create_task(
            self._run(session, routing, node), name=f"call-{info.channel_id}"
        )
        self.calls[info.channel_id] = task
        self.latency.call_started(info.channel_id)

    async def _run(self, session: AriCallSession, routing: Routing, node: str) -> None:
        observer = Identified(self.observer, node)
        try:
            await run_call(session, routing, observer, self.clock_for(session.info))
        finally:
            self.routes.pop(session.id, None)
            for leg in session.held_legs():
                self.routes.pop(leg, None)
            self.calls.pop(session.id, None)
            self.latency.forget(session.id)
            if not session.released:  # the call could not give its channel up: do it here
                CHANNELS_RECOVERED.labels("call_end").inc()
                self._spawn(self._hand_back(session.id, "call ended without releasing it"))

    # --- (re)connection -----------------------------------------------------------------------

    async def on_connected(self, reconnect: bool) -> None:
        """Ask Asterisk not to send the events we never read (again on every connection: the app may be new to
        Asterisk), look for channels we own or nobody owns; both beside the event reader."""
        self._spawn(self._filter_events())
        self._spawn(self._recover(reconnect))

    async def _filter_events(self) -> None:
        """Without the filter every event still works, only more of them arrive: an Asterisk
        (or a simulator) that refuses it is logged, never fatal."""
        try:
            await retrying(lambda: self.client.event_filter(UNWANTED), self.retry_delays)
        except (AriError, AriUnavailable) as e:
            log.info("ARI event filter not set; every event will arrive", error=str(e))

    async def _recover(self, reconnect: bool) -> None:
        app = await self._list_channels(self.stream.connections)
        if app is None:
            return
        resynced: set[int] = set()
        unowned = []
        for channel_id in app.channel_ids:
            session = self.routes.get(channel_id)
            if session is None:
                unowned.append(channel_id)
            elif id(session) not in resynced:
                resynced.add(id(session))
                session.request_resync()
        if reconnect:
            for session in {id(s): s for s in self.routes.values()}.values():
                if id(session) not in resynced:
                    session.request_resync()  # not in the app any more: it will find out
        if unowned:
            # A call entering Stasis while we connected has its StasisStart on the way: give
            # it a moment before calling the channel an orphan.
            await asyncio.sleep(ORPHAN_GRACE_SECONDS)
            for channel_id in unowned:
                if channel_id not in self.routes:
                    await self._hand_back(channel_id, "orphan")

    async def _list_channels(self, connection: int) -> Application | None:
        """GET /applications/{app}, retried with backoff while this connection lives (a new
        connection starts its own recovery); None when it is gone first."""
        backoff = Backoff(self.recover_backoff.first, self.recover_backoff.cap)
        while True:
            try:
                return await self.client.application()
            except (AriError, AriUnavailable) as e:  # MalformedResponse included
                delay = backoff.next_delay()
                log.error("could not list the app's channels", error=str(e), retry_in=delay)
            await asyncio.sleep(delay)
            if self.stream.stopping or self.stream.connections != connection:
                return None
            if not self.stream.connected.is_set():
                return None

    async def _hand_back(self, channel_id: str, why: str | None, *, leg_check: bool = True) -> None:
        bound = log.bind(call=channel_id)
        channel = _UnownedChannel(self.client, channel_id, why, bound, self.retry_delays)
        channel.leg_check = leg_check
        fallback = lambda: self.routing().hotline.fallback  # noqa: E731
        if not await hand_back(channel, fallback, bound, gone=(NotFound, Conflict)):
            bound.error("channel left to the watchdog", why=why)

    async def _drop_orphan_leg(self, channel_id: str) -> None:
        log.warning("a dialled leg nobody owns answered; hanging it up", channel=channel_id)
        try:
            await retrying(lambda: self.client.hangup(channel_id), self.retry_delays)
        except (NotFound, Conflict):  # already gone: what we wanted
            log.debug("the leg nobody owns was already gone", channel=channel_id)
        except (AriError, AriUnavailable) as e:
            log.error("could not hang up a leg nobody owns", channel=channel_id, error=str(e))

    # --- watchdog -----------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Every few seconds: hand back what is in our app, unowned, two listings in a row."""
        suspects: set[str] = set()
        while True:
            await asyncio.sleep(self.limits.watchdog_every)
            if not self.stream.connected.is_set():
                suspects.clear()
                continue
            unowned = await self._unowned_channels()
            if unowned is None:
                continue
            for channel_id in unowned & suspects:
                CHANNELS_RECOVERED.labels("watchdog").inc()
                self._spawn(self._hand_back(channel_id, "watchdog"))
            suspects = unowned - suspects

    async def _unowned_channels(self) -> set[str] | None:
        started = time.perf_counter()
        try:
            app = await self.client.application()
        except (AriError, AriUnavailable) as e:
            log.warning("watchdog could not list the app's channels", error=str(e))
            return None
        self.ari_latency.add(time.perf_counter() - started)
        return {c for c in app.channel_ids if c not in self.routes}

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", task=task.get_name(), exc_info=task.exception())

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        monitors = [
            asyncio.create_task(self.loop_lag.run(), name="loop-lag"),
            asyncio.create_task(self._watchdog(), name="watchdog"),
        ]
        try:
            await self.stream.run()
        finally:
            for task in monitors:
                task.cancel()
            await asyncio.gather(*monitors, return_exceptions=True)

    async def stop(self, *, drain_seconds: float = 0.0) -> None:
        """Let calls in progress finish (up to ``drain_seconds``), hand the others back to the
        fallback (each call does so when cancelled), then disconnect."""
        if drain_seconds and self.calls:
            await asyncio.wait(list(self.calls.values()), timeout=drain_seconds)
        remaining = list(self.calls.values())
        for task in remaining:
            task.cancel()
        if remaining:
            log.warning("stopping: handing calls in progress back", calls=len(remaining))
            await asyncio.wait(remaining, timeout=SHUTDOWN_HAND_BACK_SECONDS)
        if self._background:
            await asyncio.wait(list(self._background), timeout=SHUTDOWN_HAND_BACK_SECONDS)
        await self.stream.stop()


class _UnownedChannel:
    """A channel in our app that no call here owns, as :func:`hand_back` sees it."""

    def __init__(
        self,
        client: AriClient,
        channel_id: str,
        why: str | None,
        log: Any,
        delays: tuple[float, ...],
    ) -> None:
        self.client, self.id, self.why, self.log = client, channel_id, why, log
        self.delays = delays
        self.leg_check = True  # False for a caller just arrived (shed): no GET first

    async def continue_in_dialplan(
        self, context: str | None = None, extension: str | None = None, priority: int | None = None
    ) -> None:
        if self.leg_check:
            ch = await retrying(lambda: self.client.channel(self.id), self.delays)
            if ",dialed," in f",{ch.app_data},":  # a leg an earlier run of ours dialled
                await self.hangup()
                return
        self.log.warning("handing an unowned channel back to the dialplan", why=self.why)
        await retrying(
            lambda: self.client.continue_in_dialplan(self.id, context, extension, priority),
            self.delays,
        )

    async def hangup(self) -> None:
        await retrying(lambda: self.client.hangup(self.id), self.delays)
