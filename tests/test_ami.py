"""AMI: the phones' states from the simulator and from the real traces; reconnection."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ivr.ami.watch import EndpointWatch, PhoneState
from ivr.asterisk.pjsip import phones
from ivr.routing.model import Routing
from ivr.sim.ami import AmiSim, SimPhone

from .conftest import ROOT, SHARED


async def test_phone_states_follow_ami() -> None:
    sim = AmiSim(phones={
        "cchc-4a": SimPhone("cchc-4a"),
        "cchc-4b": SimPhone("cchc-4b", reachable=False),
        "dv-3002": SimPhone("dv-3002", registered=False),
    })  # fmt: skip
    port = await sim.start()
    watch = EndpointWatch("127.0.0.1", port, "ivr", "secret")
    try:
        await watch.start()
        assert watch.state("PJSIP/cchc-4a") is PhoneState.REACHABLE
        assert watch.state("PJSIP/cchc-4b") is PhoneState.UNREACHABLE
        assert watch.state("PJSIP/dv-3002") is PhoneState.UNREGISTERED
        assert watch.unreachable("PJSIP/cchc-4b")
        assert watch.state("PJSIP/nobody") is PhoneState.UNKNOWN
        changed = asyncio.Event()
        watch.manager.register_event("ContactStatus", lambda *_: changed.set())
        sim.set_reachable("cchc-4a", False)
        await asyncio.wait_for(changed.wait(), 10)
        assert watch.state("PJSIP/cchc-4a") is PhoneState.UNREACHABLE
        # the connection drops: panoramisk reconnects and the list is read again
        watch.ready.clear()
        sim.phones["cchc-4b"].reachable = True
        await sim.drop_clients()
        await asyncio.wait_for(watch.ready.wait(), 15)
        assert watch.logins == 2
        assert watch.state("PJSIP/cchc-4b") is PhoneState.REACHABLE
    finally:
        watch.close()
        await sim.stop()


def test_the_real_endpoint_list_reads_as_expected() -> None:
    from ivr.ami.watch import _state

    path = SHARED / "ami" / "traces" / "pjsip-show-endpoints.txt"
    if not path.exists():
        pytest.skip(f"{path.parent} is absent: the AMI traces of Asterisk 22 are needed")
    blocks = path.read_bytes().decode().split("\r\n\r\n")
    states = {}
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("Event") == "EndpointList":
            states[fields["ObjectName"]] = _state(
                fields.get("DeviceState", ""), fields.get("Contacts", "")
            )
    assert states["desk1"] is PhoneState.REACHABLE
    assert states["desk8"] is PhoneState.UNREACHABLE  # static contact, qualify failed
    assert states["desk9"] is PhoneState.UNREGISTERED  # AOR without contact


async def test_ivr_endpoints_shows_the_routing_phones(tmp_path: Path, routing: Routing) -> None:
    sim = AmiSim(phones={p.name: SimPhone(p.name) for p in phones(routing)})
    sim.phones["cchc-6"].reachable = False
    sim.phones["dv-3004"].registered = False
    port = await sim.start()
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(
        f'ami_address = "127.0.0.1:{port}"\nami_secret = "secret"\n'
        f'routing = "{ROOT / "routing" / "hotline.yaml"}"\n'
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.cli",
            "endpoints",
            "--config",
            str(cfg),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await sim.stop()
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "PJSIP/cchc-6       không liên lạc được" in text
    assert "PJSIP/dv-3004      chưa đăng ký" in text
    assert "PJSIP/cchc-4a      sẵn sàng" in text
    assert "79 máy, 2 không sẵn sàng" in text  # 11 branch phones, 68 units (old and new)


async def test_a_phone_ami_knows_unreachable_is_not_dialled(routing: Routing) -> None:
    from ivr.flow.record import MemoryObserver
    from ivr.sim.harness import Harness
    from ivr.sim.scripts import CallerScript, Press

    from .conftest import vn_time

    day = vn_time("2026-11-25 09:00")
    observer = MemoryObserver()
    down = {"PJSIP/cchc-6"}
    async with Harness(
        routing, observer, speed=10, clock=lambda: day, unreachable=down.__contains__
    ) as h:
        call = h.sim.call(CallerScript((Press("6", on="prompt:main-menu"),)))
        await asyncio.wait_for(call.done, 30)
        await h.idle()
        originates = [r for r in h.sim.requests if r.route == "/channels" and r.method == "POST"]
    (record,) = observer.done
    assert originates == []
    assert ("branch-6", "unreachable") in [(s.node, s.outcome) for s in record.steps]


async def test_the_hangup_cause_from_ami_reaches_the_call_record(
    db_url: str, routing: Routing, tmp_path: Path
) -> None:
    from ivr.flow.engine import run_call
    from ivr.session import CallInfo
    from ivr.sim.dry_run import FakeSession
    from ivr.store.db import make_engine
    from ivr.store.queries import get_call
    from ivr.store.writer import StoreWriter

    from .conftest import vn_time

    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    sim = AmiSim()
    port = await sim.start()
    watch = EndpointWatch("127.0.0.1", port, "ivr", "secret")
    seen = asyncio.Event()

    def on_hangup(uniqueid: str, cause: int, text: str) -> None:
        writer.call_cause(uniqueid, cause, text)
        seen.set()

    watch.on_hangup = on_hangup
    try:
        await watch.start()
        at = vn_time("2026-11-25 09:00")
        await run_call(
            FakeSession(CallInfo("1795538127.3", "0912"), inputs=["4"]),
            routing,
            writer,
            clock=lambda: at,
        )
        sim.hangup("1795538127.3", 16, "Normal Clearing")
        await asyncio.wait_for(seen.wait(), 10)
        assert await writer.sync()
        call = await get_call(engine, "1795538127.3")
        assert call is not None
        assert (call.hangup_cause, call.hangup_cause_text) == (16, "Normal Clearing")
    finally:
        watch.close()
        await sim.stop()
        await writer.stop()
        await engine.dispose()
