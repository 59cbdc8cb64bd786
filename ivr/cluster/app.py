"""The Stasis app of one controller among several: claims the calls StasisBroadcast offers,
follows the ones its peers won, and takes a dead peer's calls over.

Each controller runs its own ARI application, ``<prefix><controller id>`` (Asterisk gives an
application to one websocket only); the dialplan's ``[hotline-cluster]`` offers each call to
every app matching ``^<prefix>``. Everything else (one task per call, the safety net, the
watchdog) is :class:`ivr.ari.app.StasisApp`'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.ari.app import StasisApp
from ivr.ari.claim import Playbacks, claim, follow
from ivr.ari.event_types import AriEvent
from ivr.ari.overload import overloaded
from ivr.cluster import resume
from ivr.cluster.presence import PeerWatch, Presence
from ivr.cluster.takeover import TAKEOVER_ARG, app_name, take_over
from ivr.flow.record import CallTrace, Identified, call_key, summary

log = structlog.get_logger("ivr.cluster")

APP_PREFIX = "hotline-"


class ClusterApp(StasisApp):
    def __init__(
        self,
        *args: Any,
        engine: AsyncEngine,
        controller: str,
        prefix: str = APP_PREFIX,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.engine, self.controller, self.prefix = engine, controller, prefix
        self.playbacks = Playbacks()
        self.presence = Presence(engine, controller)
        self.peers = PeerWatch(engine, controller, self._peer_died)
        self.holding = asyncio.Event()  # set once this controller's presence lock is held
        self.taken_over: list[tuple[str, int]] = []  # (peer, callers moved), for tests and logs

    # --- events -------------------------------------------------------------------------------

    def on_event(self, event: AriEvent) -> None:
        kind = event["type"]
        if kind in ("PlaybackStarted", "PlaybackFinished", "ChannelDestroyed"):
            self.playbacks.see(event)
        if kind == "CallBroadcast":
            self._spawn(self._offered(event["channel"]["id"]))
            return
        if kind == "StasisStart" and event.get("args", [])[:1] == [TAKEOVER_ARG]:
            self._spawn(self._resume(event))
            return
        super().on_event(event)

    async def _offered(self, channel_id: str) -> None:
        """Claim a call unless past a limit (a peer or the fallback takes it then)."""
        why = overloaded(self.limits, len(self.calls), self.loop_lag.lag, self.ari_latency.value)
        if why is None and await claim(self.client, channel_id):
            return  # its StasisStart follows
        await follow(self.client, channel_id)

    # --- a dead peer --------------------------------------------------------------------------

    async def _peer_died(self, peer: str) -> None:
        moved = await take_over(self.client, app_name(self.prefix, peer), self.playbacks)
        self.taken_over.append((peer, moved))
        log.warning("nhận cuộc gọi từ bộ điều khiển đã ngừng", peer=peer, calls=moved)

    async def _resume(self, event: AriEvent) -> None:
        ch = event["channel"]
        node = str(event.get("asterisk_id", ""))
        stored = await resume.load(self.engine, call_key(node, ch["id"]))
        info = self._call_info(ch)
        routing = self.routing()
        session = self._session(info, routing)
        clock = self.clock_for(info)
        record = stored.record
        trace = CallTrace(
            info=info,
            routing_version=record.routing_version if record else routing.version,
            started_at=record.started_at if record else clock(),
            answered_at=record.answered_at if record else None,
            steps=list(stored.steps),
            branch=record.branch if record else None,
            unit=record.unit if record else None,
        )
        trace.visited = list(summary(stored.steps)[0])
        at = resume.resume_at(routing, stored.steps)
        log.warning("cuộc gọi được tiếp tục sau khi nhận", call=info.channel_id, node=at)
        self.routes[info.channel_id] = session
        task = asyncio.current_task()
        if task is not None:
            self.calls[info.channel_id] = task
        try:
            await resume.continue_call(
                session, routing, Identified(self.observer, node), clock, trace, at
            )
        finally:
            self.routes.pop(info.channel_id, None)
            self.calls.pop(info.channel_id, None)

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        await self.presence.hold()
        self.holding.set()
        watch = asyncio.create_task(self.peers.run(), name="peer-watch")
        try:
            await super().run()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await self.peers.close()
            await self.presence.release()
