"""The scenario table (tests/scenarios.py) against a real Asterisk 22, through ARI (Stasis) and
through FastAGI, with SIPp as the caller and the desk phones.

The Asterisk is the one `scripts/asterisk up` starts (Debian's package, the project's own
configuration with fixed contacts for the SIPp desks, see tests/conftest.py), or the one
IVR_TEST_ARI_URL points at. Every row of the table runs with the simulator's expectations, read
back from a real store. The caller's steps are timed (tests/scenarios.PHONE); keys go as RFC 4733
events, a message is recorded speech whose file must hold audio.

The calls are placed together, as many at once as the desk phones allow: two calls that may
ring the same desk never overlap (a desk is one SIPp on a fixed port). The routing is the
project's own with two prompts swapped for short ones (the main menu's 39 s and the survey
question's 11 s): what is under test is the menus' logic, which is the same.
"""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import math
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.agi.server import AgiServer
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.overload import Limits
from ivr.asterisk.pjsip import phones
from ivr.flow.record import CallRecord, Disposition, FanOut, MemoryObserver
from ivr.routing.model import MenuNode, Routing, SurveyNode
from ivr.session import CallInfo
from ivr.sim.scripts import ClerkKind, ClerkScript
from ivr.sim.sipp import Sipp
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.queries import get_call
from ivr.store.writer import StoreWriter
from models import Call

from .conftest import RealAsterisk, stop_controller, vn_time
from .scenarios import ANSWER, NOT_ON_REAL, PHONE, PHONE_ARI, SCENARIOS, Scenario
from .test_scenarios import routing_for

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]

ROWS = [sc for sc in SCENARIOS if sc.name in PHONE]
ADAPTERS = ("ari", "agi")
AT_ONCE = 8  # calls in progress at the same time (a shared 2-core machine)
SHORT_MENU = "branch-8"  # "ISO." (0.5 s) instead of the 39 s menu
SHORT_SURVEY = "survey-invalid"  # "press a key from 1 to 5" (2.7 s) instead of 11 s
CALL_TIMEOUT = 240.0  # a loaded machine: SIPp and Asterisk fall behind real time


def short_prompts(routing: Routing) -> Routing:
    """The routing with the main menu and the survey question as short prompts."""
    nodes = dict(routing.nodes)
    for name, node in nodes.items():
        if isinstance(node, MenuNode) and node.prompts == ["main-menu"]:
            nodes[name] = node.model_copy(update={"prompts": [SHORT_MENU]})
        elif isinstance(node, SurveyNode):
            nodes[name] = node.model_copy(update={"prompts": [SHORT_SURVEY]})
    return routing.model_copy(update={"nodes": nodes})


def agi_recordings(pbx: RealAsterisk) -> str:
    """The recording folder for FastAGI: one path that names the same folder for Asterisk (in its
    root) and for the controller here, which reads a message to judge it as `ivr agi` does beside
    its PBX (a file it cannot read is kept on its length alone). A link in Asterisk's root."""
    if not (pbx.root and pbx.recordings_host):
        return pbx.recordings_dir
    link = Path(pbx.root) / pbx.recordings_host.lstrip("/")
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(pbx.recordings_dir)
    return pbx.recordings_host


def desks_of(routing: Routing, sc: Scenario) -> dict[str, ClerkScript]:
    """Every desk the row may ring, as its clerk behaves (the simulator's default: answers)."""
    rung = set(sc.clerks)
    if sc.expect.branch is not None:
        rung.update(str(ep) for ep in routing.branches[sc.expect.branch].endpoints)
    if sc.expect.endpoint is not None:
        rung.add(sc.expect.endpoint)
    return {ep: sc.clerks.get(ep, ANSWER) for ep in sorted(rung)}


@dataclass
class Placed:
    sc: Scenario
    adapter: str
    number: str
    desks: dict[str, ClerkScript]
    row: Call | None = None
    failed: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _Ended(MemoryObserver):
    """Wakes the call waiting for its caller's record."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, asyncio.Event] = {}

    def call_ended(self, record: CallRecord) -> None:
        super().call_ended(record)
        if (event := self.waiting.get(record.caller_number)) is not None:
            event.set()


def _desk_args(clerk: ClerkScript) -> tuple[str, int, int | None]:
    kind = {ClerkKind.UNREACHABLE: "gone"}.get(clerk.kind, str(clerk.kind))
    talk = None if clerk.talk_seconds is None else int(clerk.talk_seconds * 1000)
    return kind, int(clerk.ring_seconds * 1000), talk


class Switchboard:
    """The controller on both adapters, one store, and SIPp phones placing the calls."""

    def __init__(self, pbx: RealAsterisk, routing: Routing, folder: Path) -> None:
        self.pbx, self.routing, self.folder = pbx, routing, folder
        self.ended = _Ended()
        self.when: dict[str, dt.datetime] = {}
        self.ports = {f"PJSIP/{p.name}": pbx.phone_port + i for i, p in enumerate(phones(routing))}
        self.busy: set[str] = set()
        self.slots = list(range(AT_ONCE))
        self.freed = asyncio.Condition()

    def clock_for(self, info: CallInfo) -> Callable[[], dt.datetime]:
        at = self.when[info.caller_number]
        return lambda: at

    async def place(self, call: Placed, writer: StoreWriter, engine: AsyncEngine) -> None:
        async with self.freed:
            await self.freed.wait_for(lambda: bool(self.slots) and not self.busy & set(call.desks))
            slot = self.slots.pop()
            self.busy |= set(call.desks)
        try:
            await self._call(call, slot)
            await writer.drain()
            record = next(r for r in self.ended.done if r.caller_number == call.number)
            call.row = await get_call(engine, record.channel_id)
        except Exception as e:  # reported by the row's test
            call.failed.append(f"{type(e).__name__}: {e}")
        finally:
            async with self.freed:
                self.slots.append(slot)
                self.busy -= set(call.desks)
                self.freed.notify_all()
            call.done.set()

    async def _call(self, call: Placed, slot: int) -> None:
        self.when[call.number] = vn_time(call.sc.at)
        ended = self.ended.waiting[call.number] = asyncio.Event()
        folder = self.folder / call.number
        folder.mkdir()
        sipp = Sipp(folder, self.pbx.sip, media_port=30000 + slot * 200)
        service = self.pbx.agi_service if call.adapter == "agi" else self.pbx.service
        try:
            for endpoint, clerk in call.desks.items():
                name = endpoint.partition("/")[2]
                await sipp.desk(name, self.ports[endpoint], *_desk_args(clerk))
            port = self.pbx.caller_port + 1 + slot
            steps = PHONE_ARI.get(call.sc.name) if call.adapter == "ari" else None
            await sipp.caller(list(steps or PHONE[call.sc.name]), call.number, port, service)
            await asyncio.wait_for(ended.wait(), CALL_TIMEOUT)
        finally:
            failed = await sipp.close()
        call.failed += [f"SIPp {n}: {why}" for n, why in failed.items() if n.startswith("desk-")]


async def _run_phase(
    pbx: RealAsterisk, routing: Routing, calls: list[Placed], folder: Path, url: str
) -> None:
    engine = make_engine(url)
    writer = StoreWriter(engine, folder / "spool")
    await writer.start()
    board = Switchboard(pbx, routing, folder)
    observer = FanOut(writer, board.ended)
    client = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, pbx.ari_app)
    app = StasisApp(
        client,
        lambda: routing,
        observer,
        clock_for=board.clock_for,
        recordings_dir=pbx.recordings_dir,
        # not shed for the loop's lag: the test's own loop writes captures and starts SIPps,
        # and the machine is shared (the shedding has its own tests)
        limits=Limits(max_loop_lag=0),
    )
    server = AgiServer(
        lambda: routing, observer, clock_for=board.clock_for, recordings_dir=agi_recordings(pbx)
    )
    task = asyncio.create_task(app.run())
    try:
        await asyncio.wait_for(app.stream.connected.wait(), 10)
        await server.start("127.0.0.1", pbx.agi_port)
        await asyncio.gather(*(board.place(c, writer, engine) for c in calls))
    finally:
        await server.stop()
        await asyncio.wait_for(server.idle(), 30)  # the calls' sockets are closed before we go
        await stop_controller(app, task)
        await writer.stop()
        await engine.dispose()


def _number(sc: Scenario, adapter: str) -> str:
    return f"09{(SCENARIOS.index(sc) * 2 + ADAPTERS.index(adapter)):02d}{abs(hash(sc.name)) % 10**6:06d}"


async def _run_all(
    pbx: RealAsterisk, routing: Routing, wanted: list[tuple[Scenario, str]], folder: Path
) -> dict[tuple[str, str], Placed]:
    url = sqlite_url(folder)
    await asyncio.to_thread(upgrade, url)
    by_routing: dict[tuple[tuple[str, str], ...], list[Placed]] = {}
    for sc, adapter in wanted:
        flow = short_prompts(routing_for(routing, sc))
        call = Placed(sc, adapter, _number(sc, adapter), desks_of(flow, sc))
        by_routing.setdefault(tuple(sorted(sc.after_talk.items())), []).append(call)
    # the calls with the most company on their desks first: they make the longest queue
    placed: dict[tuple[str, str], Placed] = {}
    for calls in by_routing.values():
        share = {ep: sum(ep in c.desks for c in calls) for c in calls for ep in c.desks}
        calls.sort(key=lambda c: -max((share[ep] for ep in c.desks), default=0))
        flow = short_prompts(routing_for(routing, calls[0].sc))
        await _run_phase(pbx, flow, calls, folder, url)
        placed.update({(c.sc.name, c.adapter): c for c in calls})
    return placed


@pytest.fixture(scope="module")
def placed_calls(
    request: pytest.FixtureRequest,
    real_asterisk: RealAsterisk,
    routing: Routing,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], Placed]:
    """Every call this session selected, placed once through the real Asterisk."""
    if not real_asterisk.agi_service:
        pytest.skip("set IVR_TEST_AGI_SERVICE to a number the Asterisk routes to [hotline-agi]")
    wanted = [
        (item.callspec.params["sc"], item.callspec.params["adapter"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and item.originalname == "test_real_asterisk"
    ]
    folder = tmp_path_factory.mktemp("real-calls")
    return asyncio.run(_run_all(real_asterisk, routing, wanted, folder))


def _speech_seconds(path: Path) -> float:
    """Seconds of the recording louder than a quiet line (RMS over 20 ms frames)."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2, "Asterisk writes 16-bit wav"
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    step = rate // 50
    chunks = (samples[i : i + step] for i in range(0, len(samples), step))
    loud = sum(1 for c in chunks if c and math.sqrt(sum(x * x for x in c) / len(c)) > 300)
    return loud / 50


def test_every_row_of_the_table_runs_on_the_real_asterisk() -> None:
    names = {sc.name for sc in SCENARIOS}
    assert set(PHONE) | set(PHONE_ARI) <= names, set(PHONE) - names  # none left for a row renamed
    assert set(NOT_ON_REAL) <= names
    assert names == set(PHONE) | set(NOT_ON_REAL), names - set(PHONE) - set(NOT_ON_REAL)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("sc", ROWS, ids=[s.name for s in ROWS])
def test_real_asterisk(
    placed_calls: dict[tuple[str, str], Placed],
    real_asterisk: RealAsterisk,
    routing: Routing,
    sc: Scenario,
    adapter: str,
) -> None:
    call = placed_calls[(sc.name, adapter)]
    assert not call.failed, call.failed
    row = call.row
    assert row is not None, "the call was not written to the store"
    e = sc.expect
    steps = [(s.node, s.outcome) for s in row.steps]
    assert row.disposition == e.disposition.value, steps
    assert tuple(row.path.split(">")) == e.path, steps
    assert row.caller_number == call.number
    assert row.digits == e.digits
    assert row.branch == e.branch
    assert row.unit == e.unit
    if e.endpoint is not None:
        assert row.endpoint == e.endpoint
    if e.hangup_by is not None:
        assert row.hangup_by == e.hangup_by
    assert row.routing_version == routing.version
    assert row.ended_at is not None
    assert row.ended_at >= row.started_at
    wanted = iter(steps)
    assert all(o in wanted for o in e.outcomes), steps  # in this order, others between
    answers = [s.input for s in row.steps if s.kind == "survey" and s.outcome == "answered"]
    assert (int(answers[-1]) if answers else None) == e.survey, steps
    if e.disposition is Disposition.ANSWERED:
        assert row.talk_seconds > 0
        assert row.answered_at is not None
    if e.voicemail_seconds is None:
        assert row.voicemail is None, steps
        return
    vm = row.voicemail
    assert vm is not None, steps
    assert vm.duration_seconds > 0
    assert vm.size_bytes > 44
    assert vm.branch == e.branch
    assert vm.unit == e.unit
    folder = agi_recordings(real_asterisk) if adapter == "agi" else real_asterisk.recordings_dir
    assert vm.location.startswith(folder + "/")
    if real_asterisk.recordings_host:  # the file itself, where the tests can read it
        local = Path(real_asterisk.recordings_host) / vm.location.rpartition("/")[2]
        assert local.is_file(), f"{vm.location} was not recorded"
        assert _speech_seconds(local) >= 1.0, f"{local} holds no speech"
