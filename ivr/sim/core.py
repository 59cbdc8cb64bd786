"""The simulated PBX: channels, playbacks, recordings, bridges and the events they emit.

Behaviour follows what Asterisk 22.10.1 did in shared/ari/traces (event order, dial statuses,
hang-up causes, error bodies). The HTTP and websocket faces are in :mod:`ivr.sim.http`.
Times in scripts are nominal seconds, divided by ``speed``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.sim import wire
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, Hangup, Press, Speak

Emit = Callable[[str, dict[str, Any]], None]


_INSTANCES = itertools.count()


class SimFailure(Exception):
    """A request Asterisk would refuse: carries the status and the body it would send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def fail(status: int, message: str) -> SimFailure:
    return SimFailure(status, wire.error(message))


@dataclass
class Playback:
    id: str
    channel: Channel
    media: list[str]
    language: str
    index: int = 0
    state: str = "queued"
    timer: asyncio.TimerHandle | None = None
    cancelled: bool = False

    def json(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "media_uri": self.media[min(self.index, len(self.media) - 1)],
            "target_uri": f"channel:{self.channel.id}",
            "language": self.language,
            "state": self.state,
        }
        if self.index + 1 < len(self.media) and self.state == "playing":
            out["next_media_uri"] = self.media[self.index + 1]
        return out


@dataclass
class Recording:
    name: str
    fmt: str
    channel: Channel
    max_seconds: float
    max_silence: float
    terminate_on: str
    started: float = 0.0  # nominal
    state: str = "queued"
    timer: asyncio.TimerHandle | None = None

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.fmt,
            "state": self.state,
            "target_uri": f"channel:{self.channel.id}",
        }


@dataclass
class Channel:
    id: str
    name: str
    caller: dict[str, str]
    dialplan: dict[str, Any]
    inbound: bool
    created: str
    state: str = "Ring"
    connected: dict[str, str] = field(default_factory=lambda: {"name": "", "number": ""})
    in_stasis: bool = False
    gone: bool = False
    bridge: str | None = None
    playing: Playback | None = None
    queued: list[Playback] = field(default_factory=list)
    recording: Recording | None = None
    variables: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""
    originator: str | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    speech: list[tuple[float, float]] = field(default_factory=list)  # nominal (start, end)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": f"{self.id}@127.0.0.1",
            "caller": dict(self.caller),
            "connected": dict(self.connected),
            "accountcode": "",
            "dialplan": dict(self.dialplan),
            "creationtime": self.created,
            "language": "en",
        }


@dataclass
class SimCall:
    """What happened to one scripted caller, as the caller experienced it."""

    channel: Channel
    script: CallerScript
    log: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    marks: list[str] = field(default_factory=list)  # triggers, in order, for the script
    waiters: list[tuple[str, int, asyncio.Future[int]]] = field(default_factory=list)
    bridged_with: str | None = None

    async def reached(self, trigger: str) -> None:
        """Until the caller has met ``trigger`` (e.g. "prompt:main-menu"), at any time so far."""
        if trigger in self.marks:
            return
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiters.append((trigger, len(self.marks), fut))
        await fut

    def mark(self, trigger: str) -> None:
        self.marks.append(trigger)
        for w in list(self.waiters):
            name, _start, fut = w
            if trigger == name and not fut.done():
                fut.set_result(len(self.marks))
                self.waiters.remove(w)


@dataclass
class Bridge:
    id: str
    name: str
    created: str
    channels: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return wire.bridge_json(self.id, self.name, self.channels, self.created)


class Pbx:
    def __init__(
        self,
        emit: Emit,
        *,
        app: str = "hotline",
        speed: float = 1.0,
        clerks: Clerks | None = None,
        prompt_seconds: Callable[[str], float] | None = None,
        missing_sounds: set[str] | None = None,
    ) -> None:
        self.emit_raw = emit
        self.app = app
        self.speed = speed
        self.clerks = clerks or Clerks()
        self.prompt_seconds = prompt_seconds or (lambda media: 2.0)
        self.missing_sounds = missing_sounds or set()
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.live_recordings: dict[str, Recording] = {}
        self.stored: dict[str, bytes] = {}
        self.calls: dict[str, SimCall] = {}
        self.app_connected: Callable[[], bool] = lambda: True
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

    def emit(self, kind: str, **fields: Any) -> None:
        event = {"type": kind, "timestamp": wire.timestamp(), **fields}
        event["asterisk_id"] = wire.ASTERISK_ID
        event["application"] = self.app
        self.emit_raw(self.app, event)

    def emit_ch(self, kind: str, ch: Channel, **fields: Any) -> None:
        self.emit(kind, **fields, channel=ch.json())

    # --- inbound calls --------------------------------------------------------------------------

    def place_call(self, script: CallerScript) -> SimCall:
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
        )
        call = SimCall(ch, script)
        self.channels[cid] = ch
        self.calls[cid] = call
        if not self.app_connected():
            # Stasis() fails at once: STASISSTATUS=FAILED, the dialplan goes on (fallback).
            call.log.append("stasis-failed")
            ch.variables["STASISSTATUS"] = "FAILED"
            self._leave(ch, "dialplan:stasis-failed")
            return call
        ch.in_stasis = True
        self.emit("StasisStart", args=[], channel=ch.json())
        self._spawn(self._run_script(call))
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

    def mark(self, ch: Channel, trigger: str) -> None:
        call = self.calls.get(ch.id)
        if call is not None:
            call.mark(trigger)
            call.log.append(trigger)

    def dtmf(self, ch: Channel, digit: str) -> None:
        self.emit_ch("ChannelDtmfReceived", ch, digit=digit, duration_ms=200)
        self.mark(ch, f"dtmf:{digit}")
        rec = ch.recording
        if rec is not None and digit in rec.terminate_on:
            self._finish_recording(rec)

    def caller_hangs_up(self, ch: Channel) -> None:
        """The caller's BYE: no cause field, then whatever it interrupts fails or ends."""
        if ch.gone:
            return
        self.mark(ch, "hangup:caller")
        self._tear_down(ch, cause=None, by_app=False)

    # --- tear-down ------------------------------------------------------------------------------

    def _tear_down(
        self, ch: Channel, *, cause: int | None, by_app: bool, destroy_cause: int = 16
    ) -> None:
        ch.gone = True
        for t in ch.timers:
            t.cancel()
        if by_app and ch.state == "Up":
            for var in (
                "RTPAUDIOQOS",
                "RTPAUDIOQOSJITTER",
                "RTPAUDIOQOSLOSS",
                "RTPAUDIOQOSRTT",
                "RTPAUDIOQOSMES",
            ):
                self.emit_ch("ChannelVarset", ch, variable=var, value="")
        if ch.in_stasis or not ch.inbound:
            fields: dict[str, Any] = {} if cause is None else {"cause": cause, "soft": True}
            self.emit_ch("ChannelHangupRequest", ch, **fields)
        if ch.playing is not None:
            pb = ch.playing
            pb.state = "failed"
            if pb.timer:
                pb.timer.cancel()
            self.emit("PlaybackFinished", playback=pb.json())
            self.playbacks.pop(pb.id, None)
            ch.playing = None
        for pb in ch.queued:
            self.playbacks.pop(pb.id, None)
        ch.queued.clear()
        if ch.recording is not None:
            self._finish_recording(ch.recording)
        if ch.bridge is not None:
            self._leave_bridge(ch)
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
        self.channels.pop(ch.id, None)
        call = self.calls.get(ch.id)
        if call is not None and not call.done.done():
            if by_app:
                call.log.append("hangup:app")
            call.done.set_result(None)

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

        self.later(1.0, end)

    # --- REST operations on channels -----------------------------------------------------------

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
        ch.in_stasis = False
        self.emit_ch("StasisEnd", ch)
        ch.variables["STASISSTATUS"] = "SUCCESS"
        self._leave(ch, f"dialplan:{context or ch.dialplan['context']}")

    # --- playback -------------------------------------------------------------------------------

    def play(
        self, channel_id: str, playback_id: str | None, media: list[str], lang: str
    ) -> Playback:
        ch = self.in_stasis(channel_id)
        media = [m for m in media if m]
        if not media:
            raise fail(500, "Failed to queue media for playback")  # no 'media': 400 from routing
        pb = Playback(playback_id or str(uuid.uuid4()), ch, media, lang or "en")
        self.playbacks.setdefault(pb.id, pb)  # a second one with the same id waits its turn
        if ch.playing is None:
            asyncio.get_running_loop().call_soon(self._start_playback, pb)
        else:
            ch.queued.append(pb)
        return pb

    def _start_playback(self, pb: Playback) -> None:
        ch = pb.channel
        if ch.gone or pb.cancelled:
            return
        self.playbacks[pb.id] = pb
        ch.playing = pb
        pb.state = "playing"
        self.emit("PlaybackStarted", playback=pb.json())
        self._play_media(pb)

    def _play_media(self, pb: Playback) -> None:
        uri = pb.media[pb.index]
        scheme, _, rest = uri.partition(":")
        if scheme not in {"sound", "recording", "tone", "digits", "number"}:
            self.playbacks.pop(pb.id, None)  # Asterisk: never finishes, and GET says 404
            return
        prompt = rest.rsplit("/", 1)[-1]
        if rest in self.missing_sounds or prompt in self.missing_sounds:
            self._end_playback(pb, "failed")
            return
        call = self.calls.get(pb.channel.id)
        if call is not None:
            call.heard.append(prompt)
        self.mark(pb.channel, f"prompt:{prompt}")
        pb.timer = self.later(self.prompt_seconds(uri), lambda: self._media_done(pb))

    def _media_done(self, pb: Playback) -> None:
        if pb.index + 1 < len(pb.media):
            pb.index += 1
            self.emit("PlaybackContinuing", playback=pb.json())
            self._play_media(pb)
        else:
            self._end_playback(pb, "done")

    def _end_playback(self, pb: Playback, state: str) -> None:
        ch = pb.channel
        if pb.timer:
            pb.timer.cancel()
        pb.state = state
        self.emit("PlaybackFinished", playback=pb.json())
        if self.playbacks.get(pb.id) is pb:
            del self.playbacks[pb.id]
        if ch.playing is pb:
            ch.playing = None
            if ch.queued:
                nxt = ch.queued.pop(0)
                asyncio.get_running_loop().call_soon(self._start_playback, nxt)

    def stop_playback(self, playback_id: str) -> None:
        pb = self.playbacks.get(playback_id)
        if pb is None:
            raise fail(404, "Playback not found")
        if pb.channel.playing is pb:
            self._end_playback(pb, "done")
        else:
            pb.cancelled = True
            pb.channel.queued.remove(pb)
            self.playbacks.pop(pb.id, None)

    # --- recording ------------------------------------------------------------------------------

    FORMATS = frozenset({"wav", "gsm", "ulaw", "alaw", "sln", "sln16", "wav16", "g722"})

    def record(
        self,
        channel_id: str,
        name: str,
        fmt: str,
        max_seconds: float,
        max_silence: float,
        terminate_on: str,
        if_exists: str,
    ) -> Recording:
        ch = self.in_stasis(channel_id)
        if fmt not in self.FORMATS:
            raise fail(422, "specified format is unknown on this system")
        if (name in self.stored or name in self.live_recordings) and if_exists == "fail":
            raise fail(409, f"Recording '{name}' already exists and can not be overwritten")
        terms = (
            "0123456789*#"
            if terminate_on == "any"
            else ("" if terminate_on == "none" else terminate_on)
        )
        rec = Recording(name, fmt, ch, max_seconds, max_silence, terms)
        self.live_recordings[name] = rec
        ch.recording = rec
        asyncio.get_running_loop().call_soon(self._start_recording, rec)
        return rec

    def _start_recording(self, rec: Recording) -> None:
        if rec.channel.gone:
            return
        rec.state = "recording"
        rec.started = self.nominal()
        self.emit("RecordingStarted", recording=rec.json())
        self.mark(rec.channel, "record")
        if rec.max_seconds > 0:
            self.later(rec.max_seconds, lambda: self._finish_recording(rec), rec.channel)
        self._speech_changed(rec.channel)

    def _speech_changed(self, ch: Channel) -> None:
        """Re-arm the silence timer: it runs from the end of the latest speech."""
        rec = ch.recording
        if rec is None or rec.state != "recording" or rec.max_silence <= 0:
            return
        if rec.timer:
            rec.timer.cancel()
        quiet_from = max([rec.started, *(end for _, end in ch.speech)])
        wait = quiet_from + rec.max_silence - self.nominal()
        rec.timer = self.later(wait, lambda: self._finish_recording(rec), ch)

    def _talked(self, rec: Recording) -> float:
        now = self.nominal()
        return sum(
            max(0.0, min(end, now) - max(start, rec.started)) for start, end in rec.channel.speech
        )

    def _finish_recording(self, rec: Recording) -> None:
        if rec.state in {"done", "failed"}:
            return
        if rec.timer:
            rec.timer.cancel()
        talked = self._talked(rec) if rec.state == "recording" else 0.0
        rec.state = "done"
        seconds = int(talked)
        body = {
            **rec.json(),
            "duration": seconds,
            "talking_duration": seconds,
            "silence_duration": 0,
        }
        self.stored[rec.name] = wire.wav_bytes(talked)
        self.live_recordings.pop(rec.name, None)
        rec.channel.recording = None
        self.emit("RecordingFinished", recording=body)
        call = self.calls.get(rec.channel.id)
        if call is not None:
            call.log.append(f"recorded:{seconds}s")

    # --- dialling -------------------------------------------------------------------------------

    def originate(
        self,
        endpoint: str,
        *,
        app: str | None,
        app_args: str,
        caller_id: str,
        timeout: float,
        channel_id: str | None,
        originator: str | None,
        extension: str | None,
    ) -> Channel:
        if not endpoint:
            raise fail(400, "Endpoint must be specified")
        tech, _, resource = endpoint.partition("/")
        if not resource:
            raise fail(400, "Invalid endpoint specified")
        if not app and not extension:
            raise fail(400, "Application or extension must be specified")
        clerk = self.clerks.for_endpoint(endpoint)
        if tech.upper() != "PJSIP" or clerk.kind is ClerkKind.UNREACHABLE:
            raise SimFailure(500, {"error": "Allocation failed"})
        name, number = _parse_caller_id(caller_id)
        leg = Channel(
            id=channel_id or self.new_id(),
            name=f"{endpoint}-{next(self._ids):08x}",
            caller={"name": name, "number": number},
            connected={"name": name, "number": number},
            dialplan={
                "context": "from-desk",
                "exten": "s",
                "priority": 1,
                "app_name": "AppDial2",
                "app_data": "(Outgoing Line)",
            },
            inbound=False,
            created=wire.timestamp(),
            state="Down",
            endpoint=endpoint,
            originator=originator,
        )
        self.channels[leg.id] = leg
        args = [a for a in app_args.split(",") if a] if app_args else []
        asyncio.get_running_loop().call_soon(self._ring_leg, leg, clerk, timeout or 30.0, args)
        return leg

    def _dial_event(self, leg: Channel, status: str) -> None:
        self.emit(
            "Dial",
            dialstatus=status,
            forward="",
            dialstring=leg.endpoint.partition("/")[2],
            peer=leg.json(),
        )

    def _ring_leg(self, leg: Channel, clerk: Any, timeout: float, args: list[str]) -> None:
        if leg.gone:
            return
        self._dial_event(leg, "")
        if clerk.kind is ClerkKind.BUSY:  # a 486 comes without any 180 first
            self.later(min(clerk.ring_seconds, timeout), lambda: self._leg_busy(leg), leg)
            return
        leg.state = "Ringing"
        self.emit_ch("ChannelStateChange", leg)
        self._dial_event(leg, "RINGING")
        caller = self.calls.get(leg.originator or "")
        if caller is not None:
            caller.log.append(f"ringing:{leg.endpoint}")
        if clerk.kind is ClerkKind.ANSWER and clerk.ring_seconds < timeout:
            self.later(clerk.ring_seconds, lambda: self._leg_answers(leg, clerk, args), leg)
        self.later(timeout, lambda: self._leg_no_answer(leg), leg)

    def _leg_busy(self, leg: Channel) -> None:
        if leg.gone:
            return
        self.emit_ch("ChannelHangupRequest", leg, cause=17, tech_cause=486)
        self._dial_event(leg, "BUSY")
        self._destroy_leg(leg, 17, 486)

    def _leg_no_answer(self, leg: Channel) -> None:
        if leg.gone or leg.state == "Up":
            return
        self._destroy_leg(leg, 19, 480)

    def _destroy_leg(self, leg: Channel, cause: int, tech_cause: int) -> None:
        leg.gone = True
        for t in leg.timers:
            t.cancel()
        self.emit_ch(
            "ChannelDestroyed",
            leg,
            cause=cause,
            cause_txt=wire.CAUSE_TEXT[cause],
            tech_cause=tech_cause,
        )
        self.channels.pop(leg.id, None)

    def _leg_answers(self, leg: Channel, clerk: Any, args: list[str]) -> None:
        if leg.gone:
            return
        for t in leg.timers:
            t.cancel()
        leg.timers.clear()
        leg.state = "Up"
        self.emit_ch("ChannelStateChange", leg)
        self._dial_event(leg, "ANSWER")
        leg.in_stasis = True
        leg.dialplan = {
            **leg.dialplan,
            "app_name": "Stasis",
            "app_data": ",".join([self.app, *args]),
        }
        self.emit("StasisStart", args=args, channel=leg.json())
        leg.variables["talk_seconds"] = (
            "" if clerk.talk_seconds is None else str(clerk.talk_seconds)
        )

    # --- bridges --------------------------------------------------------------------------------

    def create_bridge(self, bridge_id: str | None, name: str) -> Bridge:
        bid = bridge_id or str(uuid.uuid4())
        bridge = self.bridges.get(bid)
        if bridge is None:
            bridge = Bridge(bid, name, wire.timestamp())
            self.bridges[bid] = bridge
        return bridge

    def get_bridge(self, bridge_id: str) -> Bridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise fail(404, "Bridge not found")
        return bridge

    def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        bridge = self.get_bridge(bridge_id)
        if not channel_ids:
            raise fail(400, "Missing parameter channel")
        chans = []
        for cid in channel_ids:
            ch = self.channels.get(cid)
            if ch is None or ch.gone:
                raise fail(400, "Channel not found")
            if not ch.in_stasis:
                raise fail(422, "Channel not in Stasis application")
            chans.append(ch)
        for ch in chans:
            if ch.bridge == bridge.id:
                continue
            ch.bridge = bridge.id
            bridge.channels.append(ch.id)
            self.emit("ChannelEnteredBridge", bridge=bridge.json(), channel=ch.json())
        for ch in chans:
            others = [c for c in bridge.channels if c != ch.id]
            if others:
                peer = self.channels[others[0]]
                ch.connected = dict(peer.caller)
                self.mark(ch, "bridged")
                call = self.calls.get(ch.id)
                if call is not None:
                    call.bridged_with = peer.endpoint
                    call.log.append(f"talking:{peer.endpoint}")
                talk = ch.variables.get("talk_seconds")
                if not ch.inbound and talk:
                    self.later(float(talk), functools.partial(self._clerk_hangs_up, ch), ch)

    def _clerk_hangs_up(self, leg: Channel) -> None:
        if leg.gone:
            return
        caller = self.calls.get(leg.originator or "")
        if caller is not None:
            caller.log.append("clerk-hung-up")
        self._tear_down(leg, cause=None, by_app=False, destroy_cause=16)

    def _leave_bridge(self, ch: Channel) -> None:
        bridge = self.bridges.get(ch.bridge or "")
        ch.bridge = None
        if bridge is None:
            return
        if ch.id in bridge.channels:
            bridge.channels.remove(ch.id)
        self.emit("ChannelLeftBridge", bridge=bridge.json(), channel=ch.json())

    def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        bridge = self.get_bridge(bridge_id)
        ch = self.get(channel_id)
        if ch.id not in bridge.channels:
            raise fail(422, "Channel not in this bridge")
        self._leave_bridge(ch)

    def destroy_bridge(self, bridge_id: str) -> None:
        bridge = self.bridges.pop(bridge_id, None)
        if bridge is None:
            raise fail(404, "Bridge not found")
        for cid in list(bridge.channels):
            ch = self.channels.get(cid)
            if ch is not None:
                self.bridges[bridge_id] = bridge
                self._leave_bridge(ch)
                self.bridges.pop(bridge_id, None)
        self.emit("BridgeDestroyed", bridge=bridge.json())

    # --- queries --------------------------------------------------------------------------------

    def app_channels(self) -> list[str]:
        return [c.id for c in self.channels.values() if c.in_stasis and not c.gone]


def _parse_caller_id(text: str) -> tuple[str, str]:
    if "<" in text and text.endswith(">"):
        name, _, number = text[:-1].partition("<")
        return name.strip().strip('"'), number.strip()
    return "", text.strip()
