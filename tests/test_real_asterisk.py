"""The scenarios against a real Asterisk 22, with SIPp as the caller and the desk phones.

The Asterisk is the one `scripts/asterisk up` starts (Debian's package, the project's own
configuration with fixed contacts for the SIPp desks, see tests/conftest.py), or the one
IVR_TEST_ARI_URL points at. Each scenario runs through ARI (Stasis) and through FastAGI, writes
its call to a real store, and is checked from the row read back. Keys are sent as RFC 4733
events and pressed early (type-ahead), so the outcome does not depend on how long prompts play;
a message is the caller's recorded speech, and its file must hold audio.
"""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import math
import wave
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.agi.server import AgiServer
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.asterisk.pjsip import phones
from ivr.flow.record import CallRecord, Disposition, FanOut, MemoryObserver
from ivr.routing.model import Routing
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.queries import get_call
from ivr.store.writer import StoreWriter

from .conftest import RealAsterisk
from .scenarios import MENU
from .sipp import Bye, Keys, Sipp, Step, Talk

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]

DAY = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # 09:00 on a Wednesday in Hà Nội
NIGHT = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)  # 22:00 in Hà Nội
TET = dt.datetime(2027, 2, 6, 2, 0, tzinfo=dt.UTC)  # first day of Tết 2027, 09:00


@dataclass(frozen=True)
class Desk:
    kind: str  # answer, busy, no_answer
    ring_ms: int = 0
    talk_ms: int = 0


@dataclass(frozen=True)
class RealScenario:
    name: str
    caller: list[Step]
    disposition: Disposition
    path: tuple[str, ...]
    hangup_by: str | None
    desks: dict[str, Desk] = field(default_factory=dict)
    digits: str = ""
    branch: str | None = None
    endpoint: str | None = None
    unit: str | None = None
    at: dt.datetime = DAY
    message: bool = False  # a message with speech in it is kept
    outcomes: tuple[tuple[str, str], ...] = ()  # (node, outcome) steps, in this order


REAL = [
    RealScenario(
        "press 4: one phone answers, the other is busy; the caller rates the call 5",
        # the clerk hangs up about 14 s in; the survey question then plays for 11 s
        [Keys(1500, "4"), Keys(21000, "5")],
        Disposition.ANSWERED,
        (*MENU, "branch-4", "survey", "goodbye"),
        "system",
        {"PJSIP/cchc-4a": Desk("answer", 2000, 4000), "PJSIP/cchc-4b": Desk("busy")},
        "4",  # the survey's key is an answer, not a choice in the menus
        "4",
        "PJSIP/cchc-4a",
        outcomes=(("branch-4", "answered"), ("survey", "answered"), ("goodbye", "hung_up")),
    ),
    RealScenario(
        "busy: the caller leaves a spoken message ended by #",
        [Keys(1500, "1"), Talk(3000, 30), Keys(34000, "#")],
        Disposition.VOICEMAIL,
        (*MENU, "branch-1", "vm-1", "goodbye"),
        "system",
        {"PJSIP/cchc-1": Desk("busy")},
        "1",
        "1",
        message=True,
        outcomes=(("branch-1", "busy"), ("vm-1", "recorded"), ("goodbye", "hung_up")),
    ),
    RealScenario(
        "nobody answers: the caller hangs up while leaving a message, which is kept",
        [Keys(1500, "6"), Talk(3000, 55), Bye(59000)],
        Disposition.VOICEMAIL,
        (*MENU, "branch-6", "vm-6"),
        "caller",
        {"PJSIP/cchc-6": Desk("no_answer")},
        "6",
        "6",
        message=True,
        outcomes=(("branch-6", "no_answer"), ("vm-6", "caller_hung_up")),
    ),
    RealScenario(
        "an invalid key, then silence",
        [Keys(1500, "#")],
        Disposition.ABANDONED,
        (*MENU, "goodbye"),
        "system",
        digits="#",
        outcomes=(("main-menu", "invalid"), ("main-menu", "no_input")),
    ),
    RealScenario(
        "a commune by its code",
        [Keys(1500, "03002#")],
        Disposition.ANSWERED,
        (*MENU, "directory"),
        "callee",
        {"PJSIP/dv-3002": Desk("answer", 1000, 3000)},
        "03002",
        endpoint="PJSIP/dv-3002",
        unit="3002",
    ),
    RealScenario(
        "at night: office closed, the caller hangs up during the announcement",
        [Bye(5000)],
        Disposition.CLOSED,
        ("start", "closed"),
        "caller",
        at=NIGHT,
        outcomes=(("start", "closed"),),
    ),
    RealScenario(
        "first day of Tết: the holiday route, a spoken message ended by #",
        [Talk(1000, 20), Keys(22000, "#")],
        Disposition.VOICEMAIL,
        ("start", "holiday", "vm-closed", "goodbye"),
        "system",
        at=TET,
        message=True,
        outcomes=(("start", "holiday"), ("vm-closed", "recorded")),
    ),
    RealScenario(
        "the caller hangs up during the greeting",
        [Bye(1000)],
        Disposition.ABANDONED,
        MENU[:2],
        "caller",
    ),
    RealScenario(
        "the caller hangs up in the menu",
        [Bye(9000)],
        Disposition.ABANDONED,
        MENU,
        "caller",
    ),
    RealScenario(
        "the caller hangs up while the phone rings",
        [Keys(1500, "2"), Bye(19000)],
        Disposition.ABANDONED,
        (*MENU, "branch-2"),
        "caller",
        {"PJSIP/cchc-2": Desk("no_answer")},
        "2",
        "2",
    ),
]


class _Observer(MemoryObserver):
    """Notes when this test's call ends (a call left over from an earlier test may end too)."""

    def __init__(self, number: str) -> None:
        super().__init__()
        self.number = number
        self.ended = asyncio.Event()

    def call_ended(self, record: CallRecord) -> None:
        super().call_ended(record)
        if record.caller_number == self.number:
            self.ended.set()


async def _place_call(
    pbx: RealAsterisk,
    routing: Routing,
    sc: RealScenario,
    folder: Path,
    number: str,
    adapter: str,
    observer: FanOut,
    ended: asyncio.Event,
) -> None:
    ports = {f"PJSIP/{p.name}": pbx.phone_port + i for i, p in enumerate(phones(routing))}
    sipp = Sipp(folder, pbx.sip)
    clock = lambda: sc.at  # noqa: E731 - the call's own wall clock
    if adapter == "agi":
        server = AgiServer(
            lambda: routing, observer, clock=clock, recordings_dir=pbx.recordings_dir
        )
        await server.start("127.0.0.1", pbx.agi_port)
        service = pbx.agi_service
    else:
        client = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, pbx.ari_app)
        app = StasisApp(
            client, lambda: routing, observer, clock=clock, recordings_dir=pbx.recordings_dir
        )
        task = asyncio.create_task(app.run())
        await asyncio.wait_for(app.stream.connected.wait(), 10)
        service = pbx.service
    try:
        for endpoint, desk in sc.desks.items():
            name = endpoint.partition("/")[2]
            await sipp.desk(name, ports[endpoint], desk.kind, desk.ring_ms, desk.talk_ms)
        await sipp.caller(sc.caller, number, pbx.caller_port, service)
        await asyncio.wait_for(ended.wait(), 150)
    finally:
        failed = await sipp.close()
        if adapter == "agi":
            await server.stop()
            await asyncio.wait_for(server.idle(), 30)  # the call's socket is closed before we go
        else:
            await app.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()
    desks = {name: why for name, why in failed.items() if name.startswith("desk-")}
    assert not desks, f"a SIPp desk phone failed: {desks}"


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


@pytest.mark.parametrize("adapter", ["ari", "agi"])
@pytest.mark.parametrize("sc", REAL, ids=[s.name for s in REAL])
async def test_real_asterisk(
    real_asterisk: RealAsterisk, routing: Routing, sc: RealScenario, adapter: str, tmp_path: Path
) -> None:
    if adapter == "agi" and not real_asterisk.agi_service:
        pytest.skip("set IVR_TEST_AGI_SERVICE to a number the Asterisk routes to [hotline-agi]")
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    number = f"09{abs(hash((sc.name, adapter))) % 10**8:08d}"
    memory = _Observer(number)
    try:
        await _place_call(
            real_asterisk,
            routing,
            sc,
            tmp_path,
            number,
            adapter,
            FanOut(writer, memory),
            memory.ended,
        )
        record = next(r for r in memory.done if r.caller_number == number)
        await writer.drain()
        row = await get_call(engine, record.channel_id)
    finally:
        await writer.stop()
        await engine.dispose()

    assert row is not None, "the call was not written to the store"
    steps = [(s.node, s.outcome) for s in row.steps]
    assert row.disposition == sc.disposition.value, steps
    path = tuple(row.path.split(">"))
    # where exactly a hang-up lands depends on how long the installed prompts play
    assert path[: len(sc.path)] == sc.path, steps
    assert row.caller_number == number
    assert row.digits == sc.digits
    assert row.branch == sc.branch
    assert row.endpoint == sc.endpoint
    assert row.unit == sc.unit
    assert row.hangup_by == sc.hangup_by
    assert row.ended_at is not None
    assert row.ended_at >= row.started_at
    wanted = iter(steps)
    assert all(o in wanted for o in sc.outcomes), steps  # in this order, others between
    if sc.disposition is Disposition.ANSWERED:
        assert row.talk_seconds > 0
        assert row.answered_at is not None
    if sc.message:
        vm = row.voicemail
        assert vm is not None, steps
        assert vm.duration_seconds > 0
        assert vm.size_bytes > 44
        assert vm.location.startswith(real_asterisk.recordings_dir + "/")
        if real_asterisk.recordings_host:  # the file itself, where the tests can read it
            local = Path(real_asterisk.recordings_host) / vm.location.rpartition("/")[2]
            assert local.is_file(), f"{vm.location} was not recorded"
            assert _speech_seconds(local) >= 1.0, f"{local} holds no speech"
    else:
        assert row.voicemail is None
