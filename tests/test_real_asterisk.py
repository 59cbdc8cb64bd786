"""The scenarios against a real Asterisk 22, with SIPp as the caller and the desk phones.

Skipped unless IVR_TEST_ARI_URL points at one (see the README, "Against a real Asterisk").
The Asterisk must run the project's configuration (`ivr asterisk-config DIR --static-contacts
127.0.0.1:5070 --no-qualify`), so that every phone of the routing is a SIPp desk on its own port.
Keys are pressed early (type-ahead), so the outcome does not depend on how long prompts play.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.agi.server import AgiServer
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.asterisk.pjsip import phones
from ivr.flow.record import CallRecord, Disposition, MemoryObserver
from ivr.routing.model import Routing

from .scenarios import MENU
from .sipp import Bye, Keys, Sipp, Step

ARI_URL = os.environ.get("IVR_TEST_ARI_URL", "")
ARI_USER = os.environ.get("IVR_TEST_ARI_USER", "ivr")
ARI_PASSWORD = os.environ.get("IVR_TEST_ARI_PASSWORD", "")
ARI_APP = os.environ.get("IVR_TEST_ARI_APP", "hotline")
SIP = os.environ.get("IVR_TEST_SIP", "127.0.0.1:5060")
FIRST_PHONE_PORT = int(os.environ.get("IVR_TEST_PHONE_PORT", "5070"))
CALLER_PORT = int(os.environ.get("IVR_TEST_CALLER_PORT", "5300"))
SERVICE = os.environ.get("IVR_TEST_SERVICE", "18001022")  # routed to [hotline-inbound]
AGI_SERVICE = os.environ.get("IVR_TEST_AGI_SERVICE", "")  # a number routed to [hotline-agi]
AGI_PORT = int(os.environ.get("IVR_TEST_AGI_PORT", "4573"))

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(
        not ARI_URL,
        reason="no real Asterisk: set IVR_TEST_ARI_URL (and IVR_TEST_ARI_PASSWORD) to run these",
    ),
    pytest.mark.skipif(not Sipp.available(), reason="SIPp (Debian sip-tester) is not installed"),
]

DAY = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # 09:00 on a Wednesday in Hà Nội


@dataclass(frozen=True)
class RealScenario:
    name: str
    caller: list[Step]
    desks: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # kind, ring, talk ms
    disposition: Disposition = Disposition.ANSWERED
    path: tuple[str, ...] = ()
    digits: str = ""
    endpoint: str | None = None
    unit: str | None = None
    hangup_by: str | None = None


REAL = [
    RealScenario(
        "press 4: one phone answers, the other is busy",
        [Keys(1500, "4")],
        {"PJSIP/cchc-4a": ("answer", 2000, 4000), "PJSIP/cchc-4b": ("busy", 0, 0)},
        Disposition.ANSWERED,
        (*MENU, "branch-4"),
        "4",
        "PJSIP/cchc-4a",
        None,
        "callee",
    ),
    RealScenario(
        "press 6: nobody answers, the caller says nothing after the beep",
        [Keys(1500, "6")],
        {"PJSIP/cchc-6": ("no_answer", 0, 0)},
        Disposition.NO_ANSWER,
        (*MENU, "branch-6", "vm-6", "goodbye"),
        "6",
        None,
        None,
        "system",
    ),
    RealScenario(
        "an invalid key, then silence",
        [Keys(1500, "#")],
        {},
        Disposition.ABANDONED,
        (*MENU, "goodbye"),
        "#",
        None,
        None,
        "system",
    ),
    RealScenario(
        "a commune by its code",
        [Keys(1500, "03002#")],
        {"PJSIP/dv-3002": ("answer", 1000, 3000)},
        Disposition.ANSWERED,
        (*MENU, "directory"),
        "03002",
        "PJSIP/dv-3002",
        "3002",
        "callee",
    ),
    RealScenario(
        "the caller hangs up during the greeting",
        [Bye(1000)],
        {},
        Disposition.ABANDONED,
        MENU[:2],
        "",
        None,
        None,
        "caller",
    ),
]


class _Observer(MemoryObserver):
    def __init__(self) -> None:
        super().__init__()
        self.ended = asyncio.Event()

    def call_ended(self, record: CallRecord) -> None:
        super().call_ended(record)
        self.ended.set()


async def _run(
    routing: Routing, sc: RealScenario, folder: Path, number: str, adapter: str
) -> CallRecord:
    ports = {f"PJSIP/{p.name}": FIRST_PHONE_PORT + i for i, p in enumerate(phones(routing))}
    observer = _Observer()
    sipp = Sipp(folder, SIP)
    if adapter == "agi":
        server = AgiServer(lambda: routing, observer, clock=lambda: DAY)
        await server.start("127.0.0.1", AGI_PORT)
        service = AGI_SERVICE
    else:
        client = AriClient(ARI_URL, ARI_USER, ARI_PASSWORD, ARI_APP)
        app = StasisApp(client, lambda: routing, observer, clock=lambda: DAY)
        task = asyncio.create_task(app.run())
        await asyncio.wait_for(app.stream.connected.wait(), 10)
        service = SERVICE
    try:
        for endpoint, (kind, ring, talk) in sc.desks.items():
            await sipp.desk(endpoint.partition("/")[2], ports[endpoint], kind, ring, talk)
        await sipp.caller(sc.caller, number, CALLER_PORT, service)
        await asyncio.wait_for(observer.ended.wait(), 120)
        return next(r for r in observer.done if r.caller_number == number)
    finally:
        await sipp.close()
        if adapter == "agi":
            await server.stop()
        else:
            await app.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()


@pytest.mark.parametrize("adapter", ["ari", "agi"])
@pytest.mark.parametrize("sc", REAL, ids=[s.name for s in REAL])
async def test_real_asterisk(
    routing: Routing, sc: RealScenario, adapter: str, tmp_path: Path
) -> None:
    if adapter == "agi" and not AGI_SERVICE:
        pytest.skip("set IVR_TEST_AGI_SERVICE to a number the Asterisk routes to [hotline-agi]")
    number = f"09{abs(hash(sc.name)) % 10**8:08d}"
    record = await _run(routing, sc, tmp_path, number, adapter)
    assert record.disposition is sc.disposition, record.steps
    # where exactly a hang-up lands depends on how long the installed prompts play
    assert record.path[: len(sc.path)] == sc.path
    assert record.digits == sc.digits
    assert record.endpoint == sc.endpoint
    assert record.unit == sc.unit
    assert record.hangup_by == sc.hangup_by
