"""The simulated PBX's state and its primitives: time, events, lookups, tear-down.

The parts (media: playbacks and recordings; dialing: legs and bridges) build on it, and
:class:`ivr.sim.core.Pbx` puts them together with the inbound calls and channel operations.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from ivr.sim import wire
from ivr.sim.objects import Bridge, Channel, Playback, Recording, SimCall, fail
from ivr.sim.scripts import Clerks

Emit = Callable[[str, dict[str, Any]], None]

_INSTANCES = itertools.count()


class PbxBase:
    def __init__(
        self,
        emit: Emit,
        *,
        app: str = "hotline",
        speed: float = 1.0,
        clerks: Clerks | None = None,
        prompt_seconds: Callable[[str], float] | None = None,
        missing_sounds: set[str] | None = None,
        dialplan_seconds: float = 1.0,
    ) -> None:
        self.emit_raw = emit
        self.app = app
        self.speed = speed
        self.clerks = clerks or Clerks()
        self.prompt_seconds = prompt_seconds or (lambda media: 2.0)
        self.missing_sounds = missing_sounds or set()
        # how long the dialplan keeps a channel that left Stasis (meanwhile GET and DELETE work)
        self.dialplan_seconds = dialplan_seconds
        # the dialplan answers before Stasis() (dialplan/hotline.conf does; a site's own may not)
        self.answer_before_stasis = False
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.live_recordings: dict[str, Recording] = {}
        self.stored: dict[str, bytes] = {}
        self.calls: dict[str, SimCall] = {}
        self.app_connected: Callable[[], bool] = lambda: True
        self.apps_connected: Callable[[], list[str]] = lambda: [self.app]
        self._ids = itertools.count(1)
        # like Asterisk, "<start time>.<n>"; each simulator gets its own start so ids differ
        self._epoch = int(time.time()) + next(_INSTANCES)
        self._t0 = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- time ---------------------------------------------------------------------------------

    def nominal(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def later(
        self, nominal_seconds: float, fn: Callable[[], None], ch: Channel | None = None
    ) -> asyncio.TimerHandle:
        handle = asyncio.get_running_loop().call_later(max(0.0, nominal_seconds) / self.speed, fn)
        if ch is not None:
            ch.timers.append(handle)
        return handle

    async def sleep(self, nominal_seconds: float) -> None:
        await asyncio.sleep(max(0.0, nominal_seconds) / self.speed)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def alive(ch: Channel) -> bool:
        return not ch.gone

    def new_id(self) -> str:
        return f"{self._epoch}.{next(self._ids)}"

    # --- events -------------------------------------------------------------------------------

    def emit(self, kind: str, *, to: str | None = None, **fields: Any) -> None:
        """Send an event to ``to``, or to the app that controls the channel it is about."""
        app = to or self._app_of(fields)
        event = {"type": kind, "timestamp": wire.timestamp(), **fields}
        event["asterisk_id"] = wire.ASTERISK_ID
        event["application"] = app
        self.emit_raw(app, event)

    def _app_of(self, fields: dict[str, Any]) -> str:
        about = fields.get("channel") or fields.get("peer")
        if about is not None:
            channel_id = about["id"]
        else:
            target = (fields.get("playback") or fields.get("recording") or {}).get("target_uri")
            channel_id = (target or "").removeprefix("channel:")
        ch = self.channels.get(channel_id)
        return ch.app if ch is not None and ch.app else self.app

    def emit_ch(self, kind: str, ch: Channel, **fields: Any) -> None:
        self.emit(kind, **fields, channel=ch.json())

    def mark(self, ch: Channel, trigger: str) -> None:
        call = self.calls.get(ch.id)
        if call is not None:
            call.mark(trigger)
            call.log.append(trigger)

    def get(self, channel_id: str) -> Channel:
        ch = self.channels.get(channel_id)
        if ch is None or ch.gone:
            raise fail(404, "Channel not found")
        return ch

    def in_stasis(self, channel_id: str) -> Channel:
        ch = self.get(channel_id)
        if not ch.in_stasis:
            raise fail(409, "Channel not in Stasis application")
        return ch

    # --- tear-down ------------------------------------------------------------------------------

    def _tear_down(
        self, ch: Channel, *, cause: int | None, by_app: bool, destroy_cause: int = 16
    ) -> None:
        """A hang-up as Asterisk reports it: the RTP statistics of a channel that had media, the
        request (``cause`` 32 for ARI's DELETE, none for a phone's BYE), then what it stops."""
        ch.gone = True
        for t in ch.timers:
            t.cancel()
        if ch.state == "Up" and (ch.in_stasis or not ch.inbound):  # what the app still sees
            self._rtp_statistics(ch)
        if ch.in_stasis or not ch.inbound:
            fields: dict[str, Any] = {} if cause is None else {"cause": cause, "soft": True}
            self.emit_ch("ChannelHangupRequest", ch, **fields)
        self._end_media(ch)
        if ch.bridge is not None:
            self._leave_bridge(ch)
        stasis_ended = ch.in_stasis
        if ch.in_stasis:
            ch.in_stasis = False
            self.emit_ch("StasisEnd", ch)
        if not ch.inbound:
            if ch.state == "Up":
                self.emit_ch("ChannelVarset", ch, variable="STASISSTATUS", value="SUCCESS")
            self.emit_ch(
                "ChannelDestroyed",
                ch,
                cause=destroy_cause,
                cause_txt=wire.CAUSE_TEXT.get(destroy_cause, "Unknown"),
            )
        elif stasis_ended and ch.subscribed:
            # the app subscribed to it: it also sees the dialplan end the channel; a BYE's
            # channel ends with cause 0 "Unknown" (caller-hangs-up-subscribed)
            end = 16 if by_app else 0
            self.emit_ch("ChannelVarset", ch, variable="STASISSTATUS", value="SUCCESS")
            self.emit_ch("ChannelHangupRequest", ch, cause=16, soft=True)
            self.emit_ch("ChannelDestroyed", ch, cause=end, cause_txt=wire.CAUSE_TEXT[end])
        self.channels.pop(ch.id, None)
        call = self.calls.get(ch.id)
        if call is not None and not call.done.done():
            if by_app:
                call.log.append("hangup:app")
            call.done.set_result(None)

    def _rtp_statistics(self, ch: Channel) -> None:
        """The five RTPAUDIOQOS variables set on every answered channel that hangs up; a peer in
        its bridge gets the same ones, suffixed BRIDGED, each right after its own."""
        peer = self._bridge_peer(ch)
        for var, value in wire.RTP_QOS:
            self.emit_ch("ChannelVarset", ch, variable=var, value=value)
            if peer is not None:
                self.emit_ch("ChannelVarset", peer, variable=f"{var}BRIDGED", value=value)

    def _leave(self, ch: Channel, outcome: str) -> None:
        """The channel leaves our hands for the dialplan; it ends there a moment later."""
        call = self.calls.get(ch.id)
        if call is not None:
            call.log.append(outcome)

        def end() -> None:
            ch.gone = True
            self.channels.pop(ch.id, None)
            if call is not None and not call.done.done():
                call.done.set_result(None)

        self.later(self.dialplan_seconds, end, ch)

    # --- what the parts do when a channel goes (overridden by media and dialing) -------------

    def _end_media(self, ch: Channel) -> None:
        """Stop what plays or records on ``ch`` (see :class:`ivr.sim.media.Media`)."""

    def _leave_bridge(self, ch: Channel) -> None:
        """Take ``ch`` out of its bridge (see :class:`ivr.sim.dialing.Dialing`)."""

    def _bridge_peer(self, ch: Channel) -> Channel | None:
        """The other channel in ``ch``'s bridge, if any (see :class:`ivr.sim.dialing.Dialing`)."""
        return None
