"""The scenario table through the real controller, ARI over loopback sockets, and the simulator."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.agi.server import AgiServer
from ivr.flow.record import CallObserver, CallRecord, FanOut, MemoryObserver
from ivr.flow.survey import survey_answer
from ivr.routing.model import DialNode, Routing
from ivr.sim.agi import AgiCall, AgiSim
from ivr.sim.core import SimCall
from ivr.sim.harness import Harness
from ivr.sim.http import SeenRequest
from ivr.sim.scripts import Clerks
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.identity import keyed
from ivr.store.rows import final_ops
from ivr.store.sql import write_ops
from ivr.store.writer import StoreWriter
from models import SurveyAnswer

from .conftest import vn_time
from .scenarios import ANSWER, SCENARIOS, Scenario

SPEED = 10.0
TOLERANCE = 1.5  # nominal seconds, for waits and talks measured over real sockets


def routing_for(routing: Routing, sc: Scenario) -> Routing:
    """The routing with the row's changes: ``after_talk`` sets dial nodes' ``on.answered``."""
    nodes = dict(routing.nodes)
    for name, target in sc.after_talk.items():
        node = nodes[name]
        assert isinstance(node, DialNode)
        on = node.on.model_copy(update={"answered": target})
        nodes[name] = node.model_copy(update={"on": on})
    return routing.model_copy(update={"nodes": nodes}) if sc.after_talk else routing


async def run_scenario(
    routing: Routing, sc: Scenario, store: CallObserver | None = None
) -> tuple[CallRecord, SimCall, Harness]:
    """``store``: an observer that also gets the call (a StoreWriter), beside the memory one."""
    memory = MemoryObserver()
    observer: CallObserver = FanOut(memory, store) if store else memory
    at = vn_time(sc.at)
    clerks = Clerks(by_endpoint=dict(sc.clerks), default=ANSWER)
    flow = routing_for(routing, sc)
    async with Harness(flow, observer, speed=SPEED, clerks=clerks, clock=lambda: at) as h:
        h.sim.pbx.recordings_fail = sc.recordings_fail
        call = h.sim.call(sc.script())
        await asyncio.wait_for(call.done, timeout=60)
        await asyncio.wait_for(h.idle(), timeout=30)
        leftovers = [c for c in h.sim.pbx.channels.values() if c.in_stasis]
        assert not leftovers, f"channels left in Stasis: {[c.name for c in leftovers]}"
        assert not h.sim.pbx.bridges, "a bridge was left behind"
    (record,) = memory.done
    return record, call, h


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(routing: Routing, sc: Scenario) -> None:
    record, call, _ = await run_scenario(routing, sc)
    check_record(routing, sc, record, call.heard, call.log)


async def run_agi_scenario(
    routing: Routing, sc: Scenario, spool: Path, store: CallObserver | None = None
) -> tuple[CallRecord, AgiCall]:
    """``spool``: the recordings' folder, shared by the simulated PBX and the controller."""
    memory = MemoryObserver()
    observer: CallObserver = FanOut(memory, store) if store else memory
    at = vn_time(sc.at)
    flow = routing_for(routing, sc)
    server = AgiServer(
        lambda: flow, observer, clock=lambda: at, timer_scale=1 / SPEED, recordings_dir=str(spool)
    )
    port = await server.start(port=0)
    try:
        clerks = Clerks(by_endpoint=dict(sc.clerks), default=ANSWER)
        sim = AgiSim(port, speed=SPEED, clerks=clerks, recordings_fail=sc.recordings_fail)
        call = sim.call(sc.script())
        await asyncio.wait_for(call.done, timeout=60)
        await asyncio.wait_for(server.idle(), timeout=30)
    finally:
        await server.stop()
    (record,) = memory.done
    return record, call


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario_through_fastagi(routing: Routing, sc: Scenario, tmp_path: Path) -> None:
    record, call = await run_agi_scenario(routing, sc, tmp_path)
    check_record(routing, sc, record, call.heard, call.log, adapter="fastagi")
    if record.voicemail is not None:  # the file on the shared spool is the one recorded
        assert sha256_of(Path(record.voicemail.location)) == record.voicemail.sha256


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_record(
    routing: Routing,
    sc: Scenario,
    record: CallRecord,
    heard: list[str],
    log: list[str],
    adapter: str = "ari",
) -> None:
    """The same expectations whichever adapter carried the call."""
    e = sc.expect
    wait = e.agi_wait_seconds if adapter == "fastagi" and e.agi_wait_seconds else e.wait_seconds
    assert record.disposition is e.disposition, record.steps
    assert record.path == e.path
    assert record.digits == e.digits
    assert record.branch == e.branch
    assert record.unit == e.unit
    if e.endpoint is not None:
        assert record.endpoint == e.endpoint
    if e.hangup_by is not None:
        assert record.hangup_by == e.hangup_by
    if e.voicemail_seconds is None:
        assert record.voicemail is None  # nothing for the inbox
    else:
        assert record.voicemail is not None
        assert record.voicemail.duration_seconds == e.voicemail_seconds
        assert record.voicemail.size_bytes > 44  # a WAV header and audio
        assert len(record.voicemail.sha256) == 64
        assert record.voicemail.branch == e.branch
        assert record.voicemail.unit == e.unit
    if wait is not None:
        assert record.wait_seconds == pytest.approx(wait, abs=TOLERANCE)
    if e.talk_seconds is not None:
        assert record.talk_seconds == pytest.approx(e.talk_seconds, abs=TOLERANCE)
    answer = survey_answer(record.steps)
    assert (int(answer.input) if answer else None) == e.survey, record.steps
    steps = [(s.node, s.outcome) for s in record.steps]
    it = iter(steps)
    assert all(o in it for o in e.outcomes), steps  # in this order, others may sit between
    for prompt in sc.heard:
        assert prompt in heard
    for prompt in sc.not_heard:
        assert prompt not in heard
    it2 = iter(log)
    assert all(entry in it2 for entry in sc.sim_log), log
    assert record.routing_version == routing.version
    assert record.caller_number == "0912345678"
    assert record.ended_at is not None
    assert record.ended_at >= record.started_at


SURVEY_ROWS = [s for s in SCENARIOS if s.name.startswith("survey:")]


@pytest.mark.parametrize("adapter", ["ari", "fastagi"])
@pytest.mark.parametrize("sc", SURVEY_ROWS, ids=[s.name for s in SURVEY_ROWS])
async def test_the_survey_answer_is_read_back_from_the_store(
    routing: Routing, sc: Scenario, adapter: str, tmp_path: Path
) -> None:
    """The flow only records a step; the store writes the answer, linked to the call's key, its
    branch and the desk that answered."""
    await asyncio.to_thread(upgrade, sqlite_url(tmp_path))
    engine = make_engine(sqlite_url(tmp_path))
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    try:
        if adapter == "ari":
            record, _, _ = await run_scenario(routing, sc, writer)
        else:
            record, _ = await run_agi_scenario(routing, sc, tmp_path / "rec", writer)
        assert await writer.sync()
        async with AsyncSession(engine) as s:
            rows = (await s.scalars(select(SurveyAnswer))).all()
        if sc.expect.survey is None:
            assert rows == []
            return
        (row,) = rows
        assert (row.call_id, row.source, row.score) == (record.key, "ivr", sc.expect.survey)
        assert (row.branch, row.endpoint) == (sc.expect.branch, sc.expect.endpoint)
        assert record.started_at <= row.answered_at <= (record.ended_at or record.started_at)
        again = keyed(final_ops(record), record, writer.owner.id)
        await write_ops(engine, again)  # the call's last batch written again: still one answer
        async with AsyncSession(engine) as s:
            assert len((await s.scalars(select(SurveyAnswer))).all()) == 1
    finally:
        await writer.stop()
        await engine.dispose()


# --- when the confirmation prompt plays (a dial node's ``announce``) ------------------------------

ANNOUNCED = next(s for s in SCENARIOS if s.name.startswith("the desk rings while the announce"))
EARLY = Scenario(  # the clerk answers during the announcement
    "early answer", ANNOUNCED.caller, ANNOUNCED.expect, clerks={"PJSIP/cchc-4a": ANSWER}
)


def announcing(routing: Routing, mode: str) -> Routing:
    node = routing.nodes["branch-4"]
    assert isinstance(node, DialNode)
    assert node.prompts == ["please-hold", "branch-4"]
    nodes = {**routing.nodes, "branch-4": node.model_copy(update={"announce": mode})}
    return routing.model_copy(update={"nodes": nodes})


def first(
    requests: list[SeenRequest], method: str, route: str, media: str = "", after: int = -1
) -> int:
    """Where the first such request (past ``after``) sits in the simulator's request log."""
    for i, r in enumerate(requests):
        if i <= after:
            continue
        if (r.method, r.route) == (method, route) and media in r.query.get("media", ""):
            return i
    raise AssertionError(f"no {method} {route} {media}: {[(r.method, r.route) for r in requests]}")


async def test_ari_dials_first_and_announces_while_the_desks_ring(routing: Routing) -> None:
    """The default: the desks are originated as soon as the key is final, the announcement is
    played while they ring (the desks' ringing logged before its last prompt began), ringback
    only after it."""
    assert isinstance(routing.nodes["branch-4"], DialNode)
    assert routing.nodes["branch-4"].announce == "while_ringing"
    record, call, h = await run_scenario(routing, ANNOUNCED)
    assert record.endpoint == "PJSIP/cchc-4a"
    req = h.sim.requests
    originate = first(req, "POST", "/channels")
    announce = first(req, "POST", "/channels/{channelId}/play/{playbackId}", "please-hold")
    ring = first(req, "POST", "/channels/{channelId}/ring")
    assert originate < announce < ring
    assert "branch-4" in req[announce].query["media"]  # one playback: the whole announcement
    log = call.log
    assert log.index("ringing:PJSIP/cchc-4a") < log.index("prompt:branch-4")
    assert log.index("ringing:PJSIP/cchc-4b") < log.index("prompt:branch-4")
    assert log.index("prompt:branch-4") < log.index("ringing") < log.index("talking:PJSIP/cchc-4a")


async def test_ari_a_desk_answering_during_the_announcement_stops_it(routing: Routing) -> None:
    record, call, h = await run_scenario(routing, EARLY)
    assert record.endpoint == "PJSIP/cchc-4a"
    req = h.sim.requests
    announce = first(req, "POST", "/channels/{channelId}/play/{playbackId}", "please-hold")
    stop = first(req, "DELETE", "/playbacks/{playbackId}", after=announce)  # not the menu's
    bridged = first(req, "POST", "/bridges/{bridgeId}/addChannel")
    assert first(req, "POST", "/channels") < announce < stop < bridged
    assert not [r for r in req if r.route == "/channels/{channelId}/ring"]  # no ringback at all
    assert "talking:PJSIP/cchc-4a" in call.log


async def test_ari_announce_before_plays_it_before_dialling(routing: Routing) -> None:
    _, call, h = await run_scenario(announcing(routing, "before"), ANNOUNCED)
    req = h.sim.requests
    announce = first(req, "POST", "/channels/{channelId}/play/{playbackId}", "please-hold")
    assert (
        announce
        < first(req, "POST", "/channels")
        < first(req, "POST", "/channels/{channelId}/ring")
    )
    assert call.log.index("prompt:branch-4") < call.log.index("ringing:PJSIP/cchc-4a")


async def test_fastagi_announces_while_the_desks_ring(routing: Routing, tmp_path: Path) -> None:
    """``announce: while_ringing`` over FastAGI: the desks are dialled at once, and the caller
    hears the prompts from the node's music-on-hold class (Dial's m()), then its ringback."""
    _, call = await run_agi_scenario(announcing(routing, "while_ringing"), ANNOUNCED, tmp_path)
    log = call.log
    assert "moh:hotline-announce+please-hold+branch-4" in log
    assert log.count("prompt:please-hold") == 1
    assert log.index("ringing:PJSIP/cchc-4a") < log.index("prompt:please-hold")
    assert log.index("prompt:branch-4") < log.index("ringing") < log.index("talking:PJSIP/cchc-4a")


async def test_fastagi_announce_before_plays_it_before_dial(
    routing: Routing, tmp_path: Path
) -> None:
    _, call = await run_agi_scenario(announcing(routing, "before"), ANNOUNCED, tmp_path)
    log = call.log
    assert log.count("prompt:please-hold") == 1
    assert not [x for x in log if x.startswith("moh:")]
    assert log.index("prompt:branch-4") < log.index("ringing") < log.index("ringing:PJSIP/cchc-4a")
