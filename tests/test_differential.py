"""The same scripted calls through the simulator and through the real Asterisk give the same call
records, field by field (ids, times and recording names aside; waiting and talking seconds within
a second).

The calls are the demo's (ivr/sim/demo.py), each with its SIPp timing (ivr/sim/real_demo.py):
answered with one phone busy, no answer → a spoken message, a commune by an old code, a public
holiday. Differences found so far are fixed in the simulator (see its history); SIPp's caller
shows its number as its name, so the simulator's caller does too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from ivr.flow.record import CallRecord, MemoryObserver
from ivr.routing.model import Routing
from ivr.sim.demo import DEMO_CALLS, DEMO_CLERKS, DemoCall, demo_prompt_seconds
from ivr.sim.harness import Harness
from ivr.sim.real_demo import Pbx, PhoneDriver, phone_call
from ivr.sim.sipp import Sipp

from .conftest import ROOT, RealAsterisk

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]

ROWS = {
    "answered": "0912345678",
    "no answer, voicemail": "0987654321",
    "directory, old code": "0905111222",
    "holiday, closed": "0911000999",
}
TOLERANCE = 1.0  # seconds, for waiting and talking


def _demo(number: str) -> DemoCall:
    return next(d for d in DEMO_CALLS if d.script.number == number)


async def _simulated(demo: DemoCall, routing: Routing) -> CallRecord:
    memory = MemoryObserver()
    at = demo.at.astimezone(dt.UTC)
    script = dataclasses.replace(demo.script, name=demo.script.number)  # as SIPp's From shows
    async with Harness(
        routing,
        memory,
        speed=20,
        clerks=DEMO_CLERKS,
        prompt_seconds=demo_prompt_seconds(ROOT, routing),
        clock_for=lambda _info: lambda: at,
    ) as h:
        call = h.sim.call(script)
        await call.done
        await h.idle()
    return next(r for r in memory.done if r.caller_number == demo.script.number)


async def _real(demo: DemoCall, routing: Routing, pbx: RealAsterisk, folder: Path) -> CallRecord:
    target = Pbx(
        pbx.ari_url,
        pbx.ari_user,
        pbx.ari_password,
        pbx.ari_app,
        pbx.sip,
        pbx.phone_port,
        pbx.caller_port,
        pbx.service,
        pbx.recordings_dir,
    )
    memory = MemoryObserver()
    async with PhoneDriver(target, routing, memory, folder, media_port=27000) as driver:
        return await driver.call(demo.script.number, demo.at, phone_call(demo))


def _facts(r: CallRecord) -> dict[str, object]:
    """What must be the same on both: everything but ids, times and the recording's name."""
    steps = [
        (s.node, s.kind, s.outcome, s.input, "" if s.kind == "voicemail" else s.detail)
        for s in r.steps
    ]
    return {
        "caller_number": r.caller_number,
        "caller_name": r.caller_name,
        "dialed": r.dialed,
        "routing_version": r.routing_version,
        "disposition": r.disposition,
        "path": r.path,
        "digits": r.digits,
        "branch": r.branch,
        "unit": r.unit,
        "endpoint": r.endpoint,
        "hangup_by": r.hangup_by,
        "error": r.error,
        "answered": r.answered_at is not None,
        "ended": r.ended_at is not None,
        "steps": steps,
        "voicemail": r.voicemail is not None,
    }


@pytest.mark.parametrize("number", list(ROWS.values()), ids=list(ROWS))
async def test_simulator_matches_real_asterisk(
    real_asterisk: RealAsterisk, routing: Routing, number: str, tmp_path: Path
) -> None:
    demo = _demo(number)
    sim = await _simulated(demo, routing)
    real = await _real(demo, routing, real_asterisk, tmp_path)
    s, r = _facts(sim), _facts(real)
    assert {k: v for k, v in s.items() if r[k] != v} == {k: v for k, v in r.items() if s[k] != v}
    assert abs(sim.wait_seconds - real.wait_seconds) <= TOLERANCE, (sim.wait_seconds, real)
    assert abs(sim.talk_seconds - real.talk_seconds) <= TOLERANCE, (sim.talk_seconds, real)
    if real.voicemail is not None and sim.voicemail is not None:
        assert real.voicemail.size_bytes > 44
        assert sim.voicemail.duration_seconds > 0
        assert real.voicemail.duration_seconds > 0
