"""The simulated PBX's objects: channels, playbacks, recordings, bridges, scripted calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ivr.sim import wire
from ivr.sim.scripts import CallerScript


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
    left_bridge_at: float | None = None  # nominal seconds (see Media.bridge_leave_race)
    playing: Playback | None = None
    queued: list[Playback] = field(default_factory=list)
    recording: Recording | None = None
    variables: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""
    originator: str | None = None
    app: str = ""  # the Stasis app that controls it (set when it enters Stasis)
    subscribed: bool = False  # the app subscribed to it: it sees the channel's end too
    broadcast: bool = False  # offered by StasisBroadcast and not claimed yet
    rtp: bool = True  # the phone sends media (False: a phone that never sends RTP)
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
