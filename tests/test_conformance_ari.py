"""Keep the simulator honest: the official ARI schema and traces recorded from Asterisk 22.10.1.

- every request our client sends and every event the simulator emits is checked against
  shared/ari/api-docs (strictly: unknown fields and parameters are errors);
- the checker itself is run over the real traces first, so it cannot be looser than Asterisk;
- the rest-errors trace is replayed request by request: same statuses, same bodies;
- scenario traces are replayed (same requests, same caller) and the simulator must emit the
  same events in the same order.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.ari.client import basic_auth
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
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


@dataclass
class Replayer:
    sim: AsteriskSim
    http: aiohttp.ClientSession
    ids: dict[str, str]
    got: list[dict[str, Any]]

    def swap(self, text: str) -> str:
        for old in sorted(self.ids, key=len, reverse=True):
            text = text.replace(old, self.ids[old])
        return text

    def compare(
        self, req: dict[str, Any], real: dict[str, Any], status: int, body: Any
    ) -> list[str]:
        """What differs between Asterisk's response and ours; learns the ids Asterisk chose."""
        if isinstance(real["body"], dict) and "id" in real["body"] and isinstance(body, dict):
            self.ids[real["body"]["id"]] = body["id"]
        if status == real["status"] and _same_shape(real["body"], body):
            return []
        return [
            f"{req['method']} {req['path']} {req['query']}: "
            f"Asterisk {real['status']} {real['body']} / sim {status} {body}"
        ]

    async def send(self, req: dict[str, Any]) -> tuple[int, Any]:
        auth = req.get("auth")
        headers = (
            {}
            if auth == "none"
            else {
                "Authorization": basic_auth(self.sim.user, "wrong" if auth else self.sim.password)
            }
        )
        path = self.swap(req["path"]).removeprefix("/ari")
        query = {k: self.swap(v) for k, v in req["query"].items()}
        url = self.sim.base_url + path
        async with self.http.request(req["method"], url, params=query, headers=headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body


def _same_shape(real: Any, ours: Any) -> bool:
    if isinstance(real, dict) and ("message" in real or "error" in real):
        return bool(real == ours)
    if isinstance(real, dict):
        return isinstance(ours, dict) and set(real) == set(ours)
    if isinstance(real, list):
        return isinstance(ours, list) and (not real or _same_shape(real[0], ours[0]))
    return bool(real == ours)


async def _replay(
    trace: str, sim: AsteriskSim, script: CallerScript
) -> tuple[list[Any], list[Any]]:
    """Send the trace's requests at the points the trace sent them; return both event lists."""
    lines = trace_lines(trace)
    real_events = [o["event"] for o in lines if o["kind"] == "event" and o["conn"] == "hotline"]
    real_sig = [e for e in real_events if e["type"] in SIGNIFICANT]
    got: list[dict[str, Any]] = []
    arrived = asyncio.Condition()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            sim.base_url.replace("http", "ws") + "/events?app=hotline",
            headers={"Authorization": basic_auth(sim.user, sim.password)},
        )

        async def reader() -> None:
            async for msg in ws:
                event = json.loads(msg.data)
                if event["type"] in SIGNIFICANT:
                    async with arrived:
                        got.append(event)
                        arrived.notify_all()

        read_task = asyncio.create_task(reader())
        caller_id = real_sig[0]["channel"]["id"] if real_sig else ""
        call = sim.call(script)
        rp = Replayer(sim, http, {caller_id: call.channel.id} if caller_id else {}, got)
        seen = 0
        mismatches: list[str] = []
        pending: dict[str, Any] | None = None
        for o in lines:
            if (
                o["kind"] == "event"
                and o["conn"] == "hotline"
                and o["event"]["type"] in SIGNIFICANT
            ):
                seen += 1
            elif o["kind"] == "request":
                async with arrived:
                    await asyncio.wait_for(arrived.wait_for(lambda n=seen: len(got) >= n), 10)
                pending = o
                status, body = await rp.send(o)
            elif o["kind"] == "response" and pending is not None:
                mismatches += rp.compare(pending, o, status, body)
                pending = None
        async with arrived:
            await asyncio.wait_for(arrived.wait_for(lambda: len(got) >= len(real_sig)), 10)
        assert mismatches == []
        read_task.cancel()
        await ws.close()
    return real_sig, got


def _shape(events: list[dict[str, Any]], caller: str) -> list[tuple[str, ...]]:
    out = []
    for e in events:
        ch = (e.get("channel") or e.get("peer") or {}).get("id")
        role = "" if ch is None else ("caller" if ch == caller else "leg")
        detail = str(
            e.get("digit")
            or e.get("dialstatus")
            or e.get("cause")
            or (e.get("playback") or e.get("recording") or {}).get("state")
            or ""
        )
        out.append((e["type"], role, detail))
    return out


REPLAYS = {
    "menu-dtmf-during-playback.jsonl": ((Press("4", on="answer", after=2.48),), Clerks()),
    "dtmf-multi-digit.jsonl": ((Press("90123", on="answer", after=2.48),), Clerks()),
    "caller-hangs-up-during-playback.jsonl": ((Hangup(on="prompt:vm-intro", after=1.5),), Clerks()),
    "voicemail-record-hash.jsonl": ((Speak(2.5, after=0.3), Press("#", after=0.76)), Clerks()),
    "voicemail-record-silence.jsonl": ((Speak(2.5, after=0.1),), Clerks()),
    "voicemail-caller-hangs-up.jsonl": ((Speak(2.1, after=0.3), Hangup(after=0.2)), Clerks()),
    "dial-busy.jsonl": ((), Clerks({"PJSIP/desk1": ClerkScript(ClerkKind.BUSY, ring_seconds=0.5)})),
    "dial-no-answer.jsonl": ((), Clerks({"PJSIP/desk1": ClerkScript(ClerkKind.NO_ANSWER)})),
    "dial-unreachable.jsonl": ((), Clerks({"PJSIP/desk9": ClerkScript(ClerkKind.UNREACHABLE)})),
    "dial-answered-bridge.jsonl": (
        (),
        Clerks({"PJSIP/desk1": ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=4)}),
    ),
    "continue-in-dialplan.jsonl": ((), Clerks()),
}
DURATIONS = {"sound:vm-intro": 5.6, "sound:beep": 0.42}


@pytest.mark.parametrize("trace", sorted(REPLAYS))
async def test_the_simulator_answers_and_emits_like_asterisk(trace: str) -> None:
    actions, clerks = REPLAYS[trace]
    sim = AsteriskSim(speed=4, clerks=clerks, prompt_seconds=lambda m: DURATIONS.get(m, 2.0))
    await sim.start()
    try:
        real, ours = await _replay(trace, sim, CallerScript(tuple(actions)))
    finally:
        await sim.stop()
    caller_real = real[0]["channel"]["id"]
    caller_ours = ours[0]["channel"]["id"]
    assert _shape(ours, caller_ours) == _shape(real, caller_real)


async def test_rest_errors_replay_with_the_same_statuses_and_bodies() -> None:
    sim = AsteriskSim(
        speed=50,
        clerks=Clerks({"PJSIP/nobody": ClerkScript(ClerkKind.UNREACHABLE)}),
        missing_sounds={"no-such-sound"},
        prompt_seconds=lambda m: DURATIONS.get(m, 2.0),
    )
    await sim.start()
    for name in ("vm-1795538154.11", "vm-1795538161.12", "vm-1795538170.13"):
        sim.pbx.stored[name] = b"RIFF"
    try:
        await _replay_requests_only("rest-errors.jsonl", sim)
    finally:
        await sim.stop()


async def _replay_requests_only(trace: str, sim: AsteriskSim) -> None:
    lines = trace_lines(trace)
    first = next(o["event"] for o in lines if o["kind"] == "event")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            sim.base_url.replace("http", "ws") + "/events?app=hotline",
            headers={"Authorization": basic_auth(sim.user, sim.password)},
        )
        call = sim.call(CallerScript(()))
        rp = Replayer(sim, http, {first["channel"]["id"]: call.channel.id}, [])
        mismatches = []
        pending: dict[str, Any] | None = None
        status, body = 0, None
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
                pending = o
                status, body = await rp.send(o)
            elif o["kind"] == "response" and pending is not None:
                mismatches += rp.compare(pending, o, status, body)
                pending = None
        await ws.close()
    assert mismatches == []


def test_traces_folder_has_what_we_replay() -> None:
    names = {p.name for p in Path(TRACES).glob("*.jsonl")}
    assert set(REPLAYS) | {"rest-errors.jsonl"} <= names
