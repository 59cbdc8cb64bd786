"""Keep the simulator honest: the official ARI schema and traces recorded from Asterisk 22.10.1.

- every request our client sends and every event the simulator emits is checked against
  shared/ari/api-docs (strictly: unknown fields and parameters are errors);
- the checker itself is run over the real traces first, so it cannot be looser than Asterisk;
- the rest-errors trace is replayed request by request: same statuses, same bodies;
- every scenario trace is replayed: the same requests at the same points, scripted callers
  placed when the trace's SIPp callers started, websockets closed and reopened where the
  recorder's were (and a subscribeAll monitor or two broadcast apps connected alongside), and
  the simulator must answer with the same statuses and bodies and send each app the same events
  in the same order (for each caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.ari.client import basic_auth
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.sim.core import SimCall
from ivr.sim.harness import Harness
from ivr.sim.http import AsteriskSim
from ivr.sim.scripts import (
    CallerScript,
    ClerkKind,
    Clerks,
    ClerkScript,
    Hangup,
    Press,
    Speak,
)

from .ari_schema import AriSchema
from .conftest import SHARED, vn_time

API_DOCS = SHARED / "ari" / "api-docs"
TRACES = SHARED / "ari" / "traces"

pytestmark = pytest.mark.skipif(
    not API_DOCS.is_dir() or not TRACES.is_dir(),
    reason=f"{SHARED} is absent: the ARI schema and traces of Asterisk 22 are needed for "
    "the conformance checks (place the project's shared/ folder beside the checkout)",
)

SIGNIFICANT = {
    "StasisStart", "StasisEnd", "ChannelDtmfReceived", "PlaybackStarted", "PlaybackFinished",
    "Dial", "ChannelDestroyed", "ChannelHangupRequest", "RecordingStarted", "RecordingFinished",
    "ChannelEnteredBridge", "ChannelLeftBridge", "BridgeDestroyed", "ChannelStateChange",
    "ChannelVarset", "ChannelConnectedLine", "CallBroadcast",
}  # fmt: skip


@pytest.fixture(scope="module")
def schema() -> AriSchema:
    return AriSchema(API_DOCS)


def trace_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (TRACES / name).read_text().splitlines() if line]


def test_the_checker_accepts_what_asterisk_really_sent(schema: AriSchema) -> None:
    problems = []
    for path in sorted(TRACES.glob("*.jsonl")):
        for o in trace_lines(path.name):
            if o["kind"] == "event":
                problems += [f"{path.name}: {p}" for p in schema.check_event(o["event"])]
    assert problems == []


def test_the_checker_rejects_what_the_schema_forbids(schema: AriSchema) -> None:
    assert schema.check_request("POST", "/ari/channels/1/play", {}) == [
        "POST /channels/{channelId}/play: required parameter 'media' missing"
    ]
    assert schema.check_request("POST", "/ari/channels/1/answer", {"now": "1"}) == [
        "POST /channels/{channelId}/answer: unknown parameter 'now'"
    ]
    assert schema.check_request("PATCH", "/ari/channels", {})
    assert schema.check_event({"type": "Nope"})
    bad = {
        "type": "PlaybackFinished",
        "application": "a",
        "timestamp": "2026-11-24T16:35:15.209+0000",
        "playback": {"id": "x", "state": "done", "target_uri": "channel:1"},
    }
    assert schema.check_event(bad) == ["PlaybackFinished.playback: required 'media_uri' missing"]


# --- a full run: every request and every event ------------------------------------------------

CLERKS = Clerks(
    {
        "PJSIP/cchc-4a": ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=3),
        "PJSIP/cchc-4b": ClerkScript(ClerkKind.BUSY, ring_seconds=1),
        "PJSIP/cchc-6": ClerkScript(ClerkKind.NO_ANSWER),
        "PJSIP/cchc-3": ClerkScript(ClerkKind.UNREACHABLE),
        "PJSIP/cchc-9a": ClerkScript(ClerkKind.NO_ANSWER),
        "PJSIP/cchc-7": ClerkScript(ClerkKind.ANSWER, ring_seconds=1, talk_seconds=None),
    },
    default=ClerkScript(ClerkKind.ANSWER, ring_seconds=1, talk_seconds=2),
)


async def test_every_request_and_event_of_a_busy_run_conforms(
    schema: AriSchema, routing: Routing
) -> None:
    observer = MemoryObserver()
    day = vn_time("2026-11-25 09:00")
    scripts = [
        (Press("4", on="prompt:main-menu"),),
        (Press("6", on="prompt:main-menu"), Speak(2), Press("#")),
        (Press("3", on="prompt:main-menu"), Speak(2), Hangup(after=0.5)),
        (Press("9", on="prompt:main-menu"),),
        (Press("7", on="prompt:main-menu"), Hangup(on="bridged", after=1)),
        (Press("0", on="prompt:main-menu"), Press("3002#", on="prompt:enter-unit-code")),
        (Press("#", on="prompt:main-menu", after=0.2), Hangup(on="prompt:no-input")),
        (Press("1", on="prompt:greeting"), Hangup(on="ringing", after=0.5)),
    ]
    async with Harness(routing, observer, speed=10, clerks=CLERKS, clock=lambda: day) as h:
        calls = [h.sim.call(CallerScript(s, number=f"0{i}")) for i, s in enumerate(scripts)]
        await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 60)
        await h.idle()
        h.sim.faults[("POST", "/bridges")] = (500, {"message": "Internal Server Error"})
        failing = h.sim.call(CallerScript((Press("5", on="prompt:main-menu"),)))
        await asyncio.wait_for(failing.done, 30)
        await h.idle()
        requests, events = h.sim.requests, h.sim.events
    kinds = {r.route for r in requests}
    assert {
        "/channels",
        "/bridges",
        "/channels/{channelId}/record",
        "/channels/{channelId}/continue",
        "/playbacks/{playbackId}",
    } <= kinds
    assert Disposition.ERRORED in {r.disposition for r in observer.done}
    problems = []
    for r in requests:
        problems += schema.check_request(r.method, r.path, r.query)
    for e in events:
        problems += schema.check_event(e)
    assert problems == []


# --- replaying real traces ----------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """How to play a trace's caller side: one script per SIPp caller (placed when the trace's
    note says it started, or at once), the desks, and what the trace waited for."""

    callers: tuple[CallerScript, ...] = (CallerScript(),)
    clerks: Clerks = field(default_factory=Clerks)
    broadcast: bool = False  # the callers go to StasisBroadcast(timeout=2000), not Stasis()
    reconnect_after: str | None = None  # the first caller's mark the trace's gap lasted for


def _callers(*scripts: tuple[Any, ...], rtp: bool = True) -> tuple[CallerScript, ...]:
    return tuple(CallerScript(actions, number=f"09000000{i}", rtp=rtp) for i, actions in enumerate(scripts))  # fmt: skip


DESK1 = "PJSIP/desk1"
REPLAYS = {
    "menu-dtmf-during-playback.jsonl": Replay(_callers((Press("4", on="answer", after=2.48),))),
    "dtmf-multi-digit.jsonl": Replay(_callers((Press("90123", on="answer", after=2.48),))),
    "caller-hangs-up-during-playback.jsonl": Replay(
        _callers((Hangup(on="prompt:vm-intro", after=1.5),))
    ),
    "caller-hangs-up-subscribed.jsonl": Replay(_callers((Hangup(on="prompt:vm-intro", after=1.5),))),
    "voicemail-record-hash.jsonl": Replay(_callers((Speak(2.5, after=0.3), Press("#", after=0.76)))),
    "voicemail-record-silence.jsonl": Replay(_callers((Speak(2.5, after=0.1),))),
    "voicemail-caller-hangs-up.jsonl": Replay(_callers((Speak(2.1, after=0.3), Hangup(after=0.2)))),
    "voicemail-record-no-rtp.jsonl": Replay(_callers((), rtp=False)),
    "dial-busy.jsonl": Replay(clerks=Clerks({DESK1: ClerkScript(ClerkKind.BUSY, ring_seconds=0.5)})),
    "dial-no-answer.jsonl": Replay(clerks=Clerks({DESK1: ClerkScript(ClerkKind.NO_ANSWER)})),
    "dial-unreachable.jsonl": Replay(clerks=Clerks({"PJSIP/desk9": ClerkScript(ClerkKind.UNREACHABLE)})),
    "dial-unreachable-qualify.jsonl": Replay(
        clerks=Clerks({"PJSIP/desk8": ClerkScript(ClerkKind.UNREACHABLE)})
    ),
    "dial-answered-bridge.jsonl": Replay(
        clerks=Clerks({DESK1: ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=4)})
    ),
    "continue-in-dialplan.jsonl": Replay(),
    "continue-in-dialplan-context.jsonl": Replay(),
    "two-callers-concurrent.jsonl": Replay(
        _callers((Press("1", on="answer", after=2.48),), (Press("2", on="answer", after=1.99),))
    ),
    "websocket-drop-and-recover.jsonl": Replay(),
    "websocket-drop-dtmf-lost.jsonl": Replay(
        _callers((Press("5", on="answer", after=1.7),)), reconnect_after="dtmf:5"
    ),
    "websocket-drop-new-call.jsonl": Replay(_callers((), ())),
    "stasis-app-missing.jsonl": Replay(),
    "stasis-broadcast-claim.jsonl": Replay(broadcast=True),
    "stasis-broadcast-timeout.jsonl": Replay(broadcast=True),
}  # fmt: skip
DURATIONS = {
    "sound:vm-intro": 5.6,
    "sound:beep": 0.42,
    "sound:digits/1": 0.9,
    "sound:digits/2": 0.75,
}
EMPTY_WAV = 44  # a WAV header and no audio


def _same_shape(real: Any, ours: Any) -> bool:
    if isinstance(real, dict) and ("message" in real or "error" in real):
        return bool(real == ours)
    if isinstance(real, dict):
        return isinstance(ours, dict) and set(real) == set(ours)
    if isinstance(real, list):
        return (
            isinstance(ours, list)
            and len(real) == len(ours)
            and (not real or _same_shape(real[0], ours[0]))
        )
    return bool(real == ours)  # fmt: skip


def _caller_ids(lines: list[dict[str, Any]]) -> list[str]:
    """The trace's inbound callers, in the order they first appear on any websocket."""
    ids: dict[str, None] = {}
    for o in lines:
        ch = o.get("event", {}).get("channel") or {}
        if o["kind"] == "event" and ch.get("name", "").startswith("PJSIP/caller"):
            ids.setdefault(ch["id"])
    return list(ids)


@dataclass
class Replayer:
    """Plays one trace against the simulator: its websockets, callers and requests, in order."""

    sim: AsteriskSim
    http: aiohttp.ClientSession
    spec: Replay
    lines: list[dict[str, Any]]
    ids: dict[str, str] = field(default_factory=dict)  # Asterisk's ids → the simulator's
    got: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per websocket
    calls: list[SimCall] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    sockets: dict[str, tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.real_callers = _caller_ids(self.lines)
        self.compared = sorted(
            {o["conn"] for o in self.lines if o["kind"] == "event" and o["conn"] != "monitor"}
        )

    # --- what is compared ---------------------------------------------------------------------

    def real_events(self, upto: int | None = None) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {conn: [] for conn in self.compared}
        for o in self.lines[:upto]:
            if o["kind"] == "event" and o["conn"] in out and o["event"]["type"] in SIGNIFICANT:
                out[o["conn"]].append(o["event"])
        return out

    def ours(self) -> dict[str, list[dict[str, Any]]]:
        return {conn: self.got.get(conn, []) for conn in self.compared}

    def groups(self, events: dict[str, list[dict[str, Any]]], callers: list[str]) -> Counter[Any]:
        """How many events each app has had about each caller (legs count with the first)."""
        return Counter((conn, _owner(e, callers)) for conn, es in events.items() for e in es)

    async def caught_up(self, upto: int) -> None:
        """Until the simulator has sent every event the trace had seen by line ``upto``."""
        want = self.groups(self.real_events(upto), self.real_callers)
        sim_callers = [c.channel.id for c in self.calls]
        async with self.arrived:
            with contextlib.suppress(TimeoutError):  # some never came: the end shows which
                await asyncio.wait_for(
                    self.arrived.wait_for(lambda: want <= self.groups(self.ours(), sim_callers)),
                    10,
                )

    # --- playing the lines --------------------------------------------------------------------

    async def run(self) -> None:
        connects = [o for o in self.lines if o["kind"] == "ws" and o["action"] == "connect"]
        if not connects:  # the broadcast traces: their two apps were connected throughout
            for conn in self.compared:
                await self.connect(conn, {"app": conn})
        starts = [o for o in self.lines if o["kind"] == "note" and "started: uac" in o["text"]]
        if not starts:
            await self.place(len(self.spec.callers))
        pending: dict[str, Any] | None = None
        reply: tuple[int, Any] = (0, None)
        for i, o in enumerate(self.lines):
            if o["kind"] == "ws" and o["action"] in {"connect", "close"}:
                await self.caught_up(i)
                await (
                    self.connect(o["conn"], o["query"])
                    if o["action"] == "connect"
                    else self.close(o["conn"])
                )
            elif o in starts:
                await self.place(1)
            elif o["kind"] == "request":
                await self.caught_up(i)
                pending, reply = o, await self.send(o)
            elif o["kind"] == "response" and pending is not None:
                self.compare(pending, o, *reply)
                pending = None
        await asyncio.wait_for(asyncio.gather(*(c.done for c in self.calls)), 10)
        await self.caught_up(len(self.lines))
        for sock, reader in self.sockets.values():
            reader.cancel()
            await sock.close()  # fmt: skip

    async def place(self, count: int) -> None:
        for _ in range(count):
            script = self.spec.callers[len(self.calls)]
            call = self.sim.broadcast_call(script) if self.spec.broadcast else self.sim.call(script)
            if len(self.calls) < len(self.real_callers):
                self.ids[self.real_callers[len(self.calls)]] = call.channel.id
            self.calls.append(call)

    async def connect(self, conn: str, query: dict[str, str]) -> None:
        if conn == "hotline" and self.sim.connections and self.spec.reconnect_after:
            await asyncio.wait_for(self.calls[0].reached(self.spec.reconnect_after), 10)
        sock = await self.http.ws_connect(
            self.sim.base_url.replace("http", "ws") + "/events",
            params=query,
            headers={"Authorization": basic_auth(self.sim.user, self.sim.password)},
        )
        self.sockets[conn] = (sock, asyncio.create_task(self.read(conn, sock)))
        await asyncio.wait_for(self.sim.wait_apps(lambda apps: query["app"] in apps), 10)

    async def close(self, conn: str) -> None:
        sock, reader = self.sockets.pop(conn)
        app = "hotline-monitor" if conn == "monitor" else conn
        await sock.close()
        reader.cancel()
        await asyncio.wait_for(self.sim.wait_apps(lambda apps: app not in apps), 10)

    async def read(self, conn: str, sock: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in sock:
            event = json.loads(msg.data)
            if event["type"] in SIGNIFICANT:
                async with self.arrived:
                    self.got.setdefault(conn, []).append(event)
                    self.arrived.notify_all()

    def swap(self, text: str) -> str:
        for old in sorted(self.ids, key=len, reverse=True):
            text = text.replace(old, self.ids[old])
        return text

    async def send(self, req: dict[str, Any]) -> tuple[int, Any]:
        auth = req.get("auth")
        password = "wrong" if auth else self.sim.password
        headers = {} if auth == "none" else {"Authorization": basic_auth(self.sim.user, password)}
        path = self.swap(req["path"]).removeprefix("/ari")
        query = {k: self.swap(v) for k, v in req["query"].items()}
        url = self.sim.base_url + path
        async with self.http.request(req["method"], url, params=query, headers=headers) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, (await resp.read()) or None

    def compare(self, req: dict[str, Any], real: dict[str, Any], status: int, body: Any) -> None:
        """Note what differs between Asterisk's response and ours; learn the ids Asterisk chose."""
        if isinstance(real["body"], dict) and "id" in real["body"] and isinstance(body, dict):
            self.ids[real["body"]["id"]] = body["id"]
        if (
            "body_bytes" in real
        ):  # a recording's file: empty (a bare header) or not, like Asterisk's
            same = isinstance(body, bytes) and (len(body) == EMPTY_WAV) == (
                real["body_bytes"] == EMPTY_WAV
            )
        else:
            same = _same_shape(real["body"], body)
        if status != real["status"] or not same:
            shown = f"{len(body)} bytes" if isinstance(body, bytes) else body
            self.mismatches.append(
                f"{req['method']} {req['path']} {req['query']}: "
                f"Asterisk {real['status']} {real.get('body_bytes', real['body'])} / sim {status} {shown}"
            )  # fmt: skip


def _owner(event: dict[str, Any], callers: list[str]) -> int:
    ch = (event.get("channel") or event.get("peer") or {}).get("id")
    return callers.index(ch) if ch in callers else 0


def _shape(events: list[dict[str, Any]], callers: list[str]) -> list[tuple[str, ...]]:
    out = []
    for e in events:
        ch = (e.get("channel") or e.get("peer") or {}).get("id")
        role = "" if ch is None else (f"caller{callers.index(ch)}" if ch in callers else "leg")
        detail = str(
            e.get("digit")
            or e.get("dialstatus")
            or e.get("cause")
            or (e.get("playback") or e.get("recording") or {}).get("state")
            or ""
        )
        if e["type"] == "ChannelVarset":  # the name; the value where it means something
            value = e["value"] if e["variable"] == "STASISSTATUS" else bool(e["value"])
            detail = f"{e['variable']}={value}"
        out.append((e["type"], role, detail))
    return out


def _per_caller(
    events: dict[str, list[dict[str, Any]]], callers: list[str]
) -> dict[tuple[str, int], list[tuple[str, ...]]]:
    """Each app's events about each caller, in order (two callers' events interleave freely)."""
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for conn, es in events.items():
        for e in es:
            out.setdefault((conn, _owner(e, callers)), []).append(e)
    return {k: _shape(v, callers) for k, v in out.items()}


def _dialplan_outcomes(r: Replayer) -> tuple[list[bool], list[bool]]:
    """For each caller: did Stasis() fail (STASISSTATUS=FAILED on the monitor / in the sim)?"""
    failed = {
        o["event"]["channel"]["id"]
        for o in r.lines
        if o["kind"] == "event"
        and o["event"]["type"] == "ChannelVarset"
        and o["event"]["variable"] == "STASISSTATUS"
        and o["event"]["value"] == "FAILED"
    }
    return [c in failed for c in r.real_callers], ["stasis-failed" in c.log for c in r.calls]


@pytest.mark.parametrize("trace", sorted(REPLAYS))
async def test_the_simulator_answers_and_emits_like_asterisk(trace: str) -> None:
    spec = REPLAYS[trace]
    sim = AsteriskSim(speed=4, clerks=spec.clerks, prompt_seconds=lambda m: DURATIONS.get(m, 2.0))
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            r = Replayer(sim, http, spec, trace_lines(trace))
            await r.run()
    finally:
        await sim.stop()
    assert r.mismatches == []
    ours = [c.channel.id for c in r.calls]
    assert _per_caller(r.ours(), ours) == _per_caller(r.real_events(), r.real_callers)
    if any(o["conn"] == "monitor" for o in r.lines if o["kind"] == "event"):
        real_failed, sim_failed = _dialplan_outcomes(r)
        assert sim_failed == real_failed


def test_the_broadcast_traces_show_who_won() -> None:
    """The replays above rest on these facts of the recordings: first claim 204, second 404."""
    claims = [
        o["status"]
        for o in trace_lines("stasis-broadcast-claim.jsonl")
        if o["kind"] == "response" and o["path"] == "/ari/events/claim"
    ]
    assert claims == [204, 404]


async def test_rest_errors_replay_with_the_same_statuses_and_bodies() -> None:
    sim = AsteriskSim(
        speed=50,
        clerks=Clerks({"PJSIP/nobody": ClerkScript(ClerkKind.UNREACHABLE)}),
        missing_sounds={"no-such-sound"},
        prompt_seconds=lambda m: DURATIONS.get(m, 2.0),
        dialplan_seconds=16,  # Playback(tt-monkeys) after Stasis, then Hangup()
    )
    await sim.start()
    # the recordings the earlier traces left on the recording machine
    for name in ("vm-1795538154.11", "vm-1795538161.12", "vm-1795538170.13", "vm-1795538175.14"):
        sim.pbx.stored[name] = b"RIFF"
    try:
        await _replay_requests_only("rest-errors.jsonl", sim)
    finally:
        await sim.stop()


async def _replay_requests_only(trace: str, sim: AsteriskSim) -> None:
    lines = trace_lines(trace)
    async with aiohttp.ClientSession() as http:
        r = Replayer(sim, http, Replay(), lines)
        await r.connect("hotline", {"app": "hotline"})
        await r.place(1)
        pending: dict[str, Any] | None = None
        reply: tuple[int, Any] = (0, None)
        for o in lines:
            if o["kind"] == "request":
                if "after both finished" in o.get("note", ""):
                    await asyncio.wait_for(
                        sim.wait_for_event(
                            lambda e: (
                                e["type"] == "PlaybackFinished"
                                and e["playback"]["media_uri"] == "sound:beep"
                            )
                        ),
                        10,
                    )
                pending, reply = o, await r.send(o)
            elif o["kind"] == "response" and pending is not None:
                r.compare(pending, o, *reply)
                pending = None
        await r.close("hotline")
    assert r.mismatches == []


def test_every_trace_is_replayed() -> None:
    names = {p.name for p in Path(TRACES).glob("*.jsonl")}
    assert names == set(REPLAYS) | {"rest-errors.jsonl"}
