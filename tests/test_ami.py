"""AMI: the phones' states from the simulator and from the real traces; reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.ami.watch import EndpointWatch, PhoneState
from ivr.ari.client import AriClient
from ivr.ari.errors import NotFound
from ivr.asterisk.pjsip import phones
from ivr.routing.model import Routing
from ivr.sim.ami import AmiSim, SimPhone

from .conftest import ROOT, SHARED, RealAsterisk


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


def test_the_generated_manager_conf_filters_the_watch_user_events(
    tmp_path: Path, routing: Routing
) -> None:
    from ivr.asterisk.config import write_config

    write_config(
        tmp_path, ROOT / "asterisk.conf.example", ROOT / "dialplan" / "hotline.conf", routing
    )
    text = (tmp_path / "manager.conf").read_text()
    user = text[text.index("[ivr]") :]
    assert "read=system,call" in user  # the user's own settings stay
    filters = [line for line in user.splitlines() if line.startswith("eventfilter")]
    assert filters == [
        "eventfilter(action(include),name(PeerStatus))=",
        "eventfilter(action(include),name(ContactStatus))=",
        "eventfilter(action(include),name(Hangup),header(Context),method(regex))="
        "^hotline-(inbound|cluster|agi|fallback)$",
    ]
    assert "eventfilter" not in text[: text.index("[ivr]")]  # not in [general]


async def test_a_refused_filter_leaves_every_event_coming() -> None:
    """The simulator knows no Filter action (like an AMI user without the 'system' right): the
    watch says so and works all the same."""
    sim = AmiSim(phones={"cchc-4a": SimPhone("cchc-4a")})
    port = await sim.start()
    watch = EndpointWatch("127.0.0.1", port, "ivr", "secret")
    try:
        await watch.start()
        assert not watch.filtered
        assert watch.state("PJSIP/cchc-4a") is PhoneState.REACHABLE
    finally:
        watch.close()
        await sim.stop()


def _ami_settings() -> dict[str, str]:
    if os.environ.get("IVR_TEST_AMI_ADDRESS"):
        return dict(os.environ)
    env = subprocess.run(
        [str(ROOT / "scripts" / "asterisk"), "env"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line)


@pytest.mark.real_asterisk
async def test_on_the_real_asterisk_only_the_read_events_reach_the_watch(
    real_asterisk: RealAsterisk,
) -> None:
    """A call outside the hotline's contexts brings the watch nothing (ARI shows it existed and
    ended); a hotline caller's hang-up still comes with its cause. The generated manager.conf
    filters the AMI user itself, so a second session of the same user would be filtered too:
    ARI is the independent witness."""
    env = _ami_settings()
    if "IVR_TEST_AMI_ADDRESS" not in env:
        pytest.skip("this Asterisk has no AMI for the tests (IVR_TEST_AMI_ADDRESS)")
    host, _, port = env["IVR_TEST_AMI_ADDRESS"].rpartition(":")
    user, secret = env.get("IVR_TEST_AMI_USER", "ivr"), env["IVR_TEST_AMI_SECRET"]
    watch = EndpointWatch(host, int(port), user, secret)
    seen: list[dict[str, str]] = []
    causes: dict[str, int] = {}
    changed = asyncio.Event()

    def keep(_manager: object, event: dict[str, str]) -> None:
        seen.append(dict(event))
        changed.set()

    def cause(uniqueid: str, number: int, _text: str) -> None:
        causes[uniqueid] = number
        changed.set()

    async def until(check: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):
            while not check():
                changed.clear()
                await changed.wait()

    watch.manager.register_event("*", keep)
    watch.on_hangup = cause
    pbx = real_asterisk
    client = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, pbx.ari_app)

    async def local(context: str) -> str:
        where = {"extension": "s", "context": context, "priority": 1}
        channel = await client.request(
            "POST", "/channels", {"endpoint": f"Local/s@{context}", **where}
        )
        return str(channel["id"])

    async def gone(channel: str) -> bool:
        try:
            await client.request("GET", f"/channels/{channel}")
        except NotFound:
            return True
        return False

    try:
        await watch.start()
        assert watch.filtered
        seen.clear()
        other = await local("hotline-answered")  # a subroutine: run on its own it ends at once
        ours = await local("hotline-fallback")  # a caller handed back: plays, then rings
        with contextlib.suppress(NotFound):  # it may have ended by itself (no operator)
            await client.request("DELETE", f"/channels/{ours}")
        await until(lambda: ours in causes)
        assert await gone(other)  # it existed (ARI gave its id) and has ended
        names = {e.get("Event") for e in seen}
        assert names <= {"Hangup", "PeerStatus", "ContactStatus"}, names
        contexts = {e.get("Context") for e in seen if e.get("Event") == "Hangup"}
        assert contexts == {"hotline-fallback"}, contexts
        assert not any(other in (e.get("Uniqueid"), e.get("Linkedid")) for e in seen)
    finally:
        watch.close()
        await client.close()
