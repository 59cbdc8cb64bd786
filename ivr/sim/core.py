"""The simulated PBX: inbound calls with scripted callers, and the channel operations.

Behaviour follows what Asterisk 22.10.1 did in shared/ari/traces (event order, dial statuses,
hang-up causes, error bodies). The HTTP and websocket faces are in :mod:`ivr.sim.http`.
Times in scripts are nominal seconds, divided by ``speed``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.sim import wire
from ivr.sim.base import Emit, PbxBase
from ivr.sim.dialing import Dialing
from ivr.sim.media import Media
from ivr.sim.objects import Bridge, Channel, Playback, Recording, SimCall, SimFailure, fail
from ivr.sim.scripts import CallerScript, Hangup, Press, Speak

__all__ = [
    "Bridge",
    "Channel",
    "Emit",
    "Pbx",
    "PbxBase",
    "Playback",
    "Recording",
    "SimCall",
    "SimFailure",
    "fail",
]


class Pbx(Media, Dialing):
    # --- inbound calls --------------------------------------------------------------------------

    def place_call(self, script: CallerScript) -> SimCall:
        call = self._inbound(script)
        ch = call.channel
        if not self.app_connected():
            # Stasis() fails at once: STASISSTATUS=FAILED, the dialplan goes on (fallback).
            call.log.append("stasis-failed")
            ch.variables["STASISSTATUS"] = "FAILED"
            self._leave(ch, "dialplan:stasis-failed")
            return call
        if self.answer_before_stasis:
            ch.state = "Up"
            self.mark(ch, "answer")
        ch.in_stasis = True
        ch.app = self.app
        self.emit("StasisStart", args=[], channel=ch.json())
        self._spawn(self._run_script(call))
        return call

    def place_broadcast(self, script: CallerScript, timeout: float) -> SimCall:
        """``Answer(); StasisBroadcast(timeout=…)``: every connected app gets CallBroadcast; the
        first claim wins the call; unclaimed at the timeout, the dialplan goes on."""
        call = self._inbound(script)
        ch = call.channel
        ch.state = "Up"
        ch.broadcast = True
        ch.dialplan.update(app_name="StasisBroadcast", app_data=f"timeout={int(timeout * 1000)}")
        for app in self.apps_connected():
            self.emit("CallBroadcast", to=app, channel=ch.json(), caller=script.number,
                      called=script.exten)  # fmt: skip
        self.later(timeout, lambda: self._broadcast_timeout(ch), ch)
        self._spawn(self._run_script(call))
        return call

    def _broadcast_timeout(self, ch: Channel) -> None:
        if ch.broadcast:
            ch.broadcast = False
            ch.variables["STASISSTATUS"] = "TIMEOUT"
            self._leave(ch, "dialplan:broadcast-timeout")

    def claim(self, channel_id: str, app: str) -> None:
        """``POST /events/claim``: the first claimant gets the channel (StasisStart follows the
        204); any later claim is 404, as Asterisk 22.10.1 answers (not the 409 of its docs)."""
        ch = self.channels.get(channel_id)
        if ch is None or ch.gone or not ch.broadcast:
            raise fail(404, "Channel not found or not in broadcast state")
        ch.broadcast = False
        ch.in_stasis = True
        ch.app = app
        asyncio.get_running_loop().call_soon(
            lambda: self.emit("StasisStart", args=[], channel=ch.json())
        )

    def subscribe(self, app: str, channel_id: str) -> None:
        """The app also gets the channel's events outside Stasis (its end, after StasisEnd)."""
        ch = self.get(channel_id)
        if ch.app in {"", app}:
            ch.subscribed = True

    def _inbound(self, script: CallerScript) -> SimCall:
        cid = self.new_id()
        ch = Channel(
            id=cid,
            name=f"PJSIP/caller-{next(self._ids):08x}",
            caller={"name": script.name, "number": script.number},
            dialplan={
                "context": "from-caller",
                "exten": script.exten,
                "priority": 2,
                "app_name": "Stasis",
                "app_data": self.app,
            },
            inbound=True,
            created=wire.timestamp(),
            rtp=script.rtp,
        )
        call = SimCall(ch, script)
        self.channels[cid] = ch
        self.calls[cid] = call
        return call

    async def _run_script(self, call: SimCall) -> None:
        cursor = 0
        ch = call.channel
        for action in call.script.actions:
            if action.on is not None:
                cursor = await self._wait_mark(call, action.on, cursor)
                if cursor < 0:
                    return
            await self.sleep(action.after)
            if ch.gone:
                return
            match action:
                case Press(digits=digits):
                    for i, d in enumerate(digits):
                        if i:
                            await self.sleep(0.4)
                        if not self.alive(ch):
                            return
                        self.dtmf(ch, d)
                case Speak(seconds=seconds):
                    now = self.nominal()
                    ch.speech.append((now, now + seconds))
                    call.log.append(f"speak:{seconds:g}")
                    self._speech_changed(ch)
                    await self.sleep(seconds)
                case Hangup():
                    self.caller_hangs_up(ch)
                    return
                case _:  # Wait: only its trigger and delay matter
                    pass

    async def _wait_mark(self, call: SimCall, name: str, cursor: int) -> int:
        for i in range(cursor, len(call.marks)):
            if call.marks[i] == name:
                return i + 1
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        call.waiters.append((name, cursor, fut))
        over: asyncio.Future[None] = asyncio.ensure_future(asyncio.shield(call.done))
        waits: set[asyncio.Future[Any]] = {fut, over}
        finished, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        over.cancel()
        return fut.result() if fut in finished else -1

    def caller_hangs_up(self, ch: Channel) -> None:
        """The caller's BYE: no cause field, then whatever it interrupts fails or ends."""
        if ch.gone:
            return
        self.mark(ch, "hangup:caller")
        self._tear_down(ch, cause=None, by_app=False)

    # --- REST operations on channels -----------------------------------------------------------

    def answer(self, channel_id: str) -> None:
        ch = self.in_stasis(channel_id)
        if ch.state != "Up":
            ch.state = "Up"
            self.emit_ch("ChannelStateChange", ch)
            self.mark(ch, "answer")

    def ring(self, channel_id: str, on: bool) -> None:
        ch = self.in_stasis(channel_id)
        if on:
            self.mark(ch, "ringing")

    def moh(self, channel_id: str, on: bool) -> None:
        ch = self.in_stasis(channel_id)
        if on:
            self.mark(ch, "moh")

    def hangup(self, channel_id: str) -> None:
        ch = self.get(channel_id)
        destroy = 16
        self._tear_down(ch, cause=32, by_app=True, destroy_cause=destroy)

    def continue_(self, channel_id: str, context: str | None) -> None:
        ch = self.in_stasis(channel_id)
        self._end_media(ch)  # leaving Stasis stops what plays and takes it out of its bridge
        if ch.bridge is not None:
            self._leave_bridge(ch)
        ch.in_stasis = False
        self.emit_ch("StasisEnd", ch)
        ch.variables["STASISSTATUS"] = "SUCCESS"
        self._leave(ch, f"dialplan:{context or ch.dialplan['context']}")

    # --- queries --------------------------------------------------------------------------------

    def app_channels(self, app: str | None = None) -> list[str]:
        """The channels ``app`` (default: ours) holds in Stasis."""
        name = app or self.app
        return [
            c.id for c in self.channels.values() if c.in_stasis and not c.gone and c.app == name
        ]
