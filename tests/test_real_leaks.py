"""On the real Asterisk: a handful of calls, faults included, then Asterisk holds no bridge and
no channel (GET /bridges, GET /channels). Faults are injected at the client: a request that
Asterisk carried out but whose answer was lost (the timeout that stranded callers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.errors import AriUnavailable
from ivr.asterisk.pjsip import phones
from ivr.flow.record import CallRecord, Disposition, MemoryObserver
from ivr.routing.model import Routing

from .conftest import RealAsterisk, stop_controller, vn_time
from .scenarios import DAY
from .sipp import Bye, Keys, Sipp, Step

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]


class LosingClient(AriClient):
    """Adds channels to a bridge, then loses Asterisk's answer, while ``lose`` is set."""

    lose = False

    async def add_to_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None:
        await super().add_to_bridge(bridge_id, channel_ids)
        if self.lose:
            raise AriUnavailable(f"POST /bridges/{bridge_id}/addChannel: TimeoutError")


class Ended(MemoryObserver):
    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}

    def waiter(self, number: str) -> asyncio.Event:
        return self.events.setdefault(number, asyncio.Event())

    def start_waiter(self, number: str) -> asyncio.Event:
        return self.started.setdefault(number, asyncio.Event())

    def call_started(self, record: CallRecord) -> None:
        super().call_started(record)
        self.start_waiter(record.caller_number).set()

    def call_ended(self, record: CallRecord) -> None:
        super().call_ended(record)
        self.waiter(record.caller_number).set()


def free_media_ports(start: int = 17800, span: int = 100) -> int:
    """A base for SIPp's RTP ports (each SIPp takes the next ten) that nothing on this machine
    holds, so a test of another checkout running SIPp beside us cannot make ours fail."""
    for base in range(start, start + 2000, span):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + span):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise AssertionError("no free UDP ports for SIPp's media")


async def _empty(client: AriClient) -> tuple[list[Any], list[Any]]:
    """Until Asterisk holds neither channel nor bridge (or 60 s): what it still holds."""
    async with asyncio.timeout(60):
        while True:
            channels = await client.request("GET", "/channels")
            bridges = await client.request("GET", "/bridges")
            if not channels and not bridges:
                return channels, bridges
            await asyncio.sleep(0.5)


async def test_calls_and_faults_leave_nothing_in_asterisk(
    real_asterisk: RealAsterisk, routing: Routing, tmp_path: Path
) -> None:
    pbx = real_asterisk
    ports = {p.name: pbx.phone_port + i for i, p in enumerate(phones(routing))}
    client = LosingClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, pbx.ari_app)
    observer = Ended()
    at = vn_time(DAY)  # office hours, whatever the time of the run
    app = StasisApp(
        client, lambda: routing, observer, clock=lambda: at, recordings_dir=pbx.recordings_dir
    )
    app.retry_delays = (0.1, 0.2)
    task = asyncio.create_task(app.run())
    sipp = Sipp(tmp_path, pbx.sip, media_port=free_media_ports())
    procs: list[asyncio.subprocess.Process] = []

    async def call(n: int, steps: list[Step], desk: str | None = None) -> str:
        for proc in procs:  # the last call's SIPp let go of the caller and desk ports
            await asyncio.wait_for(proc.wait(), 60)
        procs.clear()
        number = f"0933000{n:03d}"
        if desk is not None:
            procs.append(await sipp.desk(f"cchc-2-{n}", ports["cchc-2"], desk, 1000, 2000))
        procs.append(await sipp.caller(steps, number, pbx.caller_port, pbx.service))
        return number

    try:
        await asyncio.wait_for(app.stream.connected.wait(), 10)
        before = await _empty(client)
        assert before == ([], [])
        # 1. answered, the desk hangs up
        n1 = await call(1, [Keys(1500, "2"), Bye(30000)], "answer")
        await asyncio.wait_for(observer.waiter(n1).wait(), 60)
        # 2. the desk answers, adding to the bridge "times out" after it happened
        client.lose = True
        n2 = await call(2, [Keys(1500, "2"), Bye(20000)], "answer")
        await asyncio.wait_for(observer.waiter(n2).wait(), 60)
        client.lose = False
        # 3. the caller hangs up while the desk rings
        n3 = await call(3, [Keys(1500, "2"), Bye(14000)], "no_answer")
        await asyncio.wait_for(observer.waiter(n3).wait(), 60)
        # 4. the controller stops while a call is in the menu: handed back
        n4 = await call(4, [Bye(12000)])
        await asyncio.wait_for(observer.start_waiter(n4).wait(), 30)
        await app.stop()
        await asyncio.wait_for(observer.waiter(n4).wait(), 30)
        left = await _empty(client)
    finally:
        failed = await sipp.close()
        await stop_controller(app, task)
    assert left == ([], [])
    got = {r.caller_number: r for r in observer.done}
    assert got[n1].disposition is Disposition.ANSWERED
    assert got[n2].disposition is Disposition.ERRORED  # handed back to the fallback
    assert got[n3].disposition is Disposition.ABANDONED
    assert (got[n4].error or "").startswith("shutdown")
    # call 2's desk answered, then we hung it up (the bridge "failed"): a BYE before its own,
    # which SIPp desks now ignore as a phone would (ivr/sim/sipp.py) or may still report
    failed.pop("desk-cchc-2-2", None)
    assert not {k: v for k, v in failed.items() if k.startswith("desk-")}
