"""`ivr demo --asterisk`: the demo's six calls through a real Asterisk 22, SIPp as the phones.

The Asterisk is the one `scripts/asterisk up` starts or shares (Debian's package, the project's
own configuration with fixed contacts for the SIPp desks), found and locked as the tests do
(ivr/sim/sipp.py). The controller runs here through ARI
exactly as `ivr run` does; each caller lives at its own time of day (the call's clock, as in the
simulator demo), so the night and Tết calls need no change to the wall clock. Calls go one at a
time: the desk phones sit on the configuration's fixed ports. Keys are RFC 4733 events pressed
early (type-ahead), so the outcome does not hang on how long a prompt plays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.asterisk.pjsip import phones
from ivr.flow.record import CallObserver, CallRecord, FanOut, MemoryObserver
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.demo import DEMO_CALLS, DemoCall, load_demo_routing, print_stored
from ivr.sim.sipp import (
    AsteriskUnavailable,
    Bye,
    Keys,
    Pbx,
    Sipp,
    Step,
    Talk,
    calls_lock,
    shared_asterisk,
)
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter
from models import Call

__all__ = [
    "PHONE_CALLS",
    "AsteriskUnavailable",
    "Desk",
    "Pbx",
    "PhoneCall",
    "PhoneDriver",
    "phone_call",
    "real_asterisk",
    "run_real_demo",
]


@dataclass(frozen=True)
class Desk:
    kind: str  # answer, busy, no_answer
    ring_ms: int = 0
    talk_ms: int = 0


@dataclass(frozen=True)
class PhoneCall:
    """A demo call as SIPp places it: timed steps after the answer, and the desks' behaviour."""

    steps: list[Step]
    desks: dict[str, Desk]


# The demo's scripts (ivr/sim/demo.py) as SIPp timings: the same keys, speech and hang-ups, and
# the desks of DEMO_CLERKS.
PHONE_CALLS: dict[str, PhoneCall] = {
    "0912345678": PhoneCall(
        [Keys(1500, "4")],
        {"PJSIP/cchc-4a": Desk("answer", 3000, 8000), "PJSIP/cchc-4b": Desk("busy")},
    ),
    "0987654321": PhoneCall(
        # the desk rings 20 s unanswered, then the voicemail prompt and the beep
        [Keys(1500, "6"), Talk(3000, 36), Keys(40000, "#")],
        {"PJSIP/cchc-6": Desk("no_answer")},
    ),
    "0355000111": PhoneCall([Talk(1000, 20), Bye(22000)], {}),
    "0243123456": PhoneCall([Keys(1500, "#")], {}),
    "0905111222": PhoneCall([Keys(1500, "03104#")], {"PJSIP/dv-3002": Desk("answer", 4000, 6000)}),
    "0911000999": PhoneCall([Bye(3000)], {}),
}


@contextmanager
def real_asterisk(root: Path) -> Iterator[Pbx]:
    """`scripts/asterisk up`, this process alone placing calls (the lock), `down` at the end."""
    if os.geteuid() != 0:
        raise AsteriskUnavailable(
            "Cần quyền root để dựng Asterisk thật (debootstrap, chroot); chạy: sudo scripts/demo"
            " --asterisk"
        )
    if not Sipp.available():
        raise AsteriskUnavailable("Thiếu SIPp; cài bằng: apt-get install sip-tester")
    with calls_lock():
        try:
            with shared_asterisk(root) as pbx:
                yield pbx
        except AsteriskUnavailable as e:
            raise AsteriskUnavailable(f"scripts/asterisk up thất bại:\n{e}") from e


class _Ended(MemoryObserver):
    """Wakes whoever waits for a caller's call to end."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, asyncio.Event] = {}

    def call_ended(self, record: CallRecord) -> None:
        super().call_ended(record)
        if (event := self.waiting.get(record.caller_number)) is not None:
            event.set()


class PhoneDriver:
    """The controller (ARI) on the real Asterisk, and SIPp placing one scripted call at a time."""

    def __init__(
        self, pbx: Pbx, routing: Routing, observer: CallObserver, folder: Path, media_port: int
    ) -> None:
        self.pbx, self.routing, self.folder = pbx, routing, folder
        self.ended = _Ended()
        self.when: dict[str, dt.datetime] = {}
        self.media_port = media_port
        self.client = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, pbx.ari_app)
        self.app = StasisApp(
            self.client,
            lambda: routing,
            FanOut(observer, self.ended),
            clock_for=self._clock_for,
            recordings_dir=pbx.recordings_dir,
        )
        self.ports = {f"PJSIP/{p.name}": pbx.phone_port + i for i, p in enumerate(phones(routing))}
        self._task: asyncio.Task[None] | None = None

    def _clock_for(self, info: CallInfo) -> Callable[[], dt.datetime]:
        at = self.when.get(info.caller_number)  # each scripted caller lives at its own time
        return (lambda: at) if at is not None else (lambda: dt.datetime.now(dt.UTC))

    async def __aenter__(self) -> PhoneDriver:
        self._task = asyncio.create_task(self.app.run())
        await asyncio.wait_for(self.app.stream.connected.wait(), 10)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.app.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def call(self, number: str, at: dt.datetime, call: PhoneCall) -> CallRecord:
        """Places the call and waits until the controller has ended it; returns its record."""
        self.when[number] = at.astimezone(dt.UTC)
        ended = self.ended.waiting[number] = asyncio.Event()
        sipp = Sipp(self.folder, self.pbx.sip, media_port=self.media_port)
        try:
            for endpoint, desk in call.desks.items():
                name = endpoint.partition("/")[2]
                await sipp.desk(name, self.ports[endpoint], desk.kind, desk.ring_ms, desk.talk_ms)
            await sipp.caller(call.steps, number, self.pbx.caller_port, self.pbx.service)
            await asyncio.wait_for(ended.wait(), 150)
        finally:
            failed = await sipp.close()
        desks = {name: why for name, why in failed.items() if name.startswith("desk-")}
        if desks:
            raise RuntimeError(f"máy bàn SIPp lỗi: {desks}")
        return next(r for r in reversed(self.ended.done) if r.caller_number == number)


async def run_real_demo(
    root: Path, out: TextIO = sys.stdout, data_dir: Path | None = None
) -> list[Call]:
    """The demo's calls through the real Asterisk; prints them as read back from the store."""
    routing = load_demo_routing(root)
    with tempfile.TemporaryDirectory(prefix="ivr-demo-sipp-") as tmp:
        folder = data_dir or Path(tmp)
        url = sqlite_url(folder)
        await asyncio.to_thread(upgrade, url)
        engine = make_engine(url)
        try:
            with real_asterisk(root) as pbx:
                writer = StoreWriter(engine, folder / "spool")
                await writer.start()
                try:
                    await _place_all(pbx, routing, writer, Path(tmp), out)
                finally:
                    await writer.stop()
            return await print_stored(engine, out)
        finally:
            await engine.dispose()


async def _place_all(
    pbx: Pbx, routing: Routing, observer: CallObserver, folder: Path, out: TextIO
) -> None:
    print(
        f"Asterisk thật (ARI {pbx.ari_url}, SIP {pbx.sip}); SIPp là người gọi và máy bàn,"
        " từng cuộc một, thời gian thực",
        file=out,
    )
    async with PhoneDriver(pbx, routing, observer, folder, media_port=26000) as driver:
        for demo in DEMO_CALLS:
            print(f"  ☎ {demo.script.number}: {demo.title}", file=out, flush=True)
            await driver.call(demo.script.number, demo.at, phone_call(demo))


def phone_call(demo: DemoCall) -> PhoneCall:
    return PHONE_CALLS[demo.script.number]
