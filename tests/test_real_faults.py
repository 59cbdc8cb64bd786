"""Faults on a real Asterisk 22, with SIPp as the caller and the desk phones (issue 8).

- The controller is killed (SIGKILL) while the caller hears the menu. The caller waits in Stasis
  with nobody in charge; the controller started again (same instance id, as `ivr run` restarts)
  closes the dead life's call as ``interrupted`` with the steps it had, and hands the channel to
  the dialplan's [hotline-fallback], whose Dial rings the operators: the test sees the operator's
  SIPp phone get the call and the caller's SIPp end normally.
- The ARI websocket is cut mid-call by a loopback proxy between the controller and Asterisk
  (the REST requests go on), refused once, then let through: the call goes on to the end it
  would have had, and the store holds one row for it.

Run a controller child with `python -m tests.test_real_faults` (settings in its environment).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import func, select

from ivr import logs
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.asterisk.pjsip import phones
from ivr.flow.record import CallRecord, FanOut, MemoryObserver, Step
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.routing.model import Routing
from ivr.sim.sipp import Keys, Sipp
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.lease import Owner
from ivr.store.queries import get_call
from ivr.store.writer import StoreWriter
from models import Call

from .conftest import RealAsterisk, stop_controller

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # 09:00 on a Wednesday in Hà Nội
MENU = ("start", "greeting", "main-menu")


# --- the controller child of the crash test ------------------------------------------------


class _Tell(MemoryObserver):
    """Prints GREETED once the greeting's step is in the database: the caller is in the menu."""

    def __init__(self, writer: StoreWriter) -> None:
        super().__init__()
        self.writer = writer
        self.tasks: set[asyncio.Task[None]] = set()

    def call_step(self, channel_id: str, step: Step) -> None:
        super().call_step(channel_id, step)
        if step.node == "greeting":
            task = asyncio.create_task(self._tell(channel_id))
            self.tasks.add(task)

    async def _tell(self, channel_id: str) -> None:
        await self.writer.drain()
        print(f"GREETED {channel_id}", flush=True)


async def child() -> None:
    env = os.environ
    logs.configure(level="ERROR")
    routing = load_routing(
        ROOT / "routing" / "hotline.yaml", load_manifest(ROOT / "prompts" / "manifest.yaml").keys()
    )
    engine = make_engine(env["RC_DB"])
    writer = StoreWriter(engine, Path(env["RC_SPOOL"]), owner=Owner.here("real-crash"))
    client = AriClient(env["RC_ARI_URL"], env["RC_ARI_USER"], env["RC_ARI_PASSWORD"], "hotline")
    app = StasisApp(
        client,
        lambda: routing,
        FanOut(writer, _Tell(writer)),
        clock=lambda: DAY,
        recordings_dir=env["RC_RECORDINGS"],
    )
    await writer.start()  # closes the calls of this instance's previous life
    task = asyncio.create_task(app.run())
    await app.stream.connected.wait()
    print("READY", flush=True)
    await task


class Child:
    """A controller process; its stdout lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, pbx: RealAsterisk, url: str, spool: Path) -> Child:
        env = {
            **os.environ,
            "RC_DB": url,
            "RC_SPOOL": str(spool),
            "RC_ARI_URL": pbx.ari_url,
            "RC_ARI_USER": pbx.ari_user,
            "RC_ARI_PASSWORD": pbx.ari_password,
            "RC_RECORDINGS": pbx.recordings_dir,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.test_real_faults",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def said(self, word: str, timeout: float = 60) -> str:
        """The rest of the first line starting with ``word``."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while line := (await self.proc.stdout.readline()).decode():
                if line.startswith(word):
                    return line[len(word) :].strip()
        raise AssertionError(f"the controller exited ({await self.proc.wait()}) before {word}")

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


def _ports(pbx: RealAsterisk, routing: Routing) -> dict[str, int]:
    return {f"PJSIP/{p.name}": pbx.phone_port + i for i, p in enumerate(phones(routing))}


async def test_a_killed_controller_leaves_the_caller_to_the_fallback_and_the_row_interrupted(
    real_asterisk: RealAsterisk, routing: Routing, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        sipp = Sipp(tmp_path, real_asterisk.sip, media_port=31000)
        ports = _ports(real_asterisk, routing)
        first = await Child.start(real_asterisk, url, tmp_path / "spool")
        second: Child | None = None
        try:
            await first.said("READY")
            # the fallback's Dial rings the operators (HOTLINE_OPERATORS, dialplan/hotline.conf)
            operator = await sipp.desk("cchc-9a", ports["PJSIP/cchc-9a"], "answer", 1000, 3000)
            await sipp.desk("cchc-9b", ports["PJSIP/cchc-9b"], "busy")
            caller = await sipp.caller(
                [], "0977000111", real_asterisk.caller_port, real_asterisk.service
            )
            channel = await first.said("GREETED")  # in the 39 s menu prompt now
            await first.kill()
            assert caller.returncode is None, "the call ended with its controller"
            in_progress = await get_call(engine, channel)
            assert in_progress is not None
            assert in_progress.disposition == "in_progress"

            second = await Child.start(real_asterisk, url, tmp_path / "spool")
            await second.said("READY")
            async with asyncio.timeout(90):
                assert await operator.wait() == 0, "the operator's phone did not get the call"
                assert await caller.wait() == 0, "the caller's call did not end normally"
        finally:
            for c in (first, second):
                if c is not None:
                    await c.kill()
            failed = await sipp.close()
        assert not failed, failed
        row = await get_call(engine, channel)
        assert row is not None
        assert row.disposition == "interrupted"
        assert tuple(row.path.split(">")) == MENU[:2]  # the steps written before the kill
        assert row.caller_number == "0977000111"
        assert row.ended_at is not None
        assert row.ended_at >= row.started_at
    finally:
        await engine.dispose()  # also when it failed: a pool left open warns in a later test


# --- the websocket cut ---------------------------------------------------------------------


class WebsocketCutter:
    """A loopback TCP proxy to Asterisk's HTTP port that can cut the websocket (an HTTP
    connection that asked for an upgrade) and refuse new ones, leaving REST requests alone."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.refusing = False
        self.refused = asyncio.Event()
        self.bridged = asyncio.Event()  # a channel was added to a bridge: the clerk talks
        self.opened = 0
        self.reopened = asyncio.Event()  # a websocket after the cut
        self._sockets: list[asyncio.StreamWriter] = []  # the websocket's two ends
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._sockets:
            w.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.refusing = True
        for w in self._sockets:
            w.close()
        self._sockets.clear()

    def allow(self) -> None:
        self.refusing = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pump = asyncio.create_task(self._pump(up_reader, writer))
        self._tasks.add(pump)
        try:
            while chunk := await reader.read(65536):
                if b"upgrade: websocket" in chunk.lower():
                    if self.refusing:
                        self.refused.set()
                        break
                    self._sockets += [writer, up_writer]
                    self.opened += 1
                    if self.opened > 1:
                        self.reopened.set()
                if b"/addchannel" in chunk.lower():
                    self.bridged.set()
                up_writer.write(chunk)
                await up_writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            up_writer.close()
            pump.cancel()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def _cutter(pbx: RealAsterisk) -> AsyncIterator[tuple[WebsocketCutter, str]]:
    parts = urlsplit(pbx.ari_url)
    proxy = WebsocketCutter((parts.hostname or "127.0.0.1", parts.port or 80))
    port = await proxy.start()
    try:
        yield proxy, urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
    finally:
        await proxy.close()


class _Ended(MemoryObserver):
    def __init__(self) -> None:
        super().__init__()
        self.ended = asyncio.Event()

    def call_ended(self, record: CallRecord) -> None:
        super().call_ended(record)
        self.ended.set()


async def test_a_websocket_cut_mid_call_the_call_goes_on_to_its_end_with_one_row(
    real_asterisk: RealAsterisk, routing: Routing, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        writer = StoreWriter(engine, tmp_path / "spool")
        await writer.start()
        memory = _Ended()
        sipp = Sipp(tmp_path, real_asterisk.sip, media_port=32000)
        ports = _ports(real_asterisk, routing)
        async with _cutter(real_asterisk) as (proxy, ari_url):
            client = AriClient(
                ari_url, real_asterisk.ari_user, real_asterisk.ari_password, real_asterisk.ari_app
            )
            app = StasisApp(
                client,
                lambda: routing,
                FanOut(writer, memory),
                clock=lambda: DAY,
                recordings_dir=real_asterisk.recordings_dir,
            )
            task = asyncio.create_task(app.run())
            try:
                await asyncio.wait_for(app.stream.connected.wait(), 10)
                # the clerk talks 12 s, then hangs up: the survey and goodbye follow
                await sipp.desk("cchc-4a", ports["PJSIP/cchc-4a"], "answer", 2000, 12000)
                await sipp.desk("cchc-4b", ports["PJSIP/cchc-4b"], "busy")
                await sipp.caller(
                    [Keys(1500, "4")],
                    "0977000222",
                    real_asterisk.caller_port,
                    real_asterisk.service,
                )
                await asyncio.wait_for(proxy.bridged.wait(), 60)
                proxy.cut()
                await asyncio.wait_for(proxy.refused.wait(), 30)  # the controller tried again
                proxy.allow()
                await asyncio.wait_for(proxy.reopened.wait(), 30)
                await asyncio.wait_for(memory.ended.wait(), 120)
                await writer.drain()
            finally:
                failed = await sipp.close()
                await stop_controller(app, task)
                await writer.stop()
        desks = {n: why for n, why in failed.items() if n.startswith("desk-")}
        assert not desks, desks
        (record,) = memory.done
        row = await get_call(engine, record.channel_id)
        async with engine.connect() as conn:
            rows = await conn.scalar(
                select(func.count()).select_from(Call).where(Call.caller_number == "0977000222")
            )
        assert rows == 1, "the call was written twice"
        assert row is not None
        steps = [(s.node, s.outcome) for s in row.steps]
        assert row.disposition == "answered", steps
        assert tuple(row.path.split(">")) == (*MENU, "branch-4", "survey", "goodbye"), steps
        assert row.endpoint == "PJSIP/cchc-4a"
        assert row.hangup_by == "system"
        assert row.talk_seconds > 0
        assert ("branch-4", "answered") in steps
    finally:
        await engine.dispose()  # also when it failed: a pool left open warns in a later test


# --- Asterisk itself crashes ---------------------------------------------------------------


async def test_after_an_asterisk_crash_the_controller_reconnects_and_serves_the_next_call(
    real_asterisk: RealAsterisk, routing: Routing, tmp_path: Path
) -> None:
    """Asterisk dies of a segfault (22.10.1 did once in this suite); scripts/asterisk's keeper
    starts it again, as systemd does in production. The controller, never restarted, finds it
    again by itself and the next caller reaches a desk."""
    seen = len(real_asterisk.crashes())
    memory = _Ended()
    sipp = Sipp(tmp_path, real_asterisk.sip, media_port=32500)
    ports = _ports(real_asterisk, routing)
    async with _cutter(real_asterisk) as (proxy, ari_url):  # (never cut: it counts websockets)
        client = AriClient(
            ari_url, real_asterisk.ari_user, real_asterisk.ari_password, real_asterisk.ari_app
        )
        app = StasisApp(
            client,
            lambda: routing,
            memory,
            clock=lambda: DAY,
            recordings_dir=real_asterisk.recordings_dir,
        )
        task = asyncio.create_task(app.run())
        try:
            await asyncio.wait_for(app.stream.connected.wait(), 10)
            crashed = real_asterisk.asterisk_pid()
            os.kill(crashed, signal.SIGSEGV)
            await asyncio.to_thread(real_asterisk.wait_booted, not_pid=crashed)
            assert real_asterisk.asterisk_pid() != crashed
            await asyncio.wait_for(proxy.reopened.wait(), 60)  # the controller's own retry
            await asyncio.wait_for(app.stream.connected.wait(), 10)
            await sipp.desk("cchc-4a", ports["PJSIP/cchc-4a"], "answer", 1000, 2000)
            await sipp.desk("cchc-4b", ports["PJSIP/cchc-4b"], "busy")
            await sipp.caller(
                [Keys(1500, "4")], "0977000333", real_asterisk.caller_port, real_asterisk.service
            )
            await asyncio.wait_for(memory.ended.wait(), 120)
        finally:
            failed = await sipp.close()
            await stop_controller(app, task)
    desks = {n: why for n, why in failed.items() if n.startswith("desk-")}
    assert not desks, desks
    (line,) = real_asterisk.crashes()[seen:]
    assert f"pid {crashed}" in line, line
    assert "SEGV" in line, line
    (record,) = memory.done
    steps = [(s.node, s.outcome) for s in record.steps]
    assert record.caller_number == "0977000333"
    assert record.disposition == "answered", steps
    assert record.endpoint == "PJSIP/cchc-4a"
    assert ("branch-4", "answered") in steps


if __name__ == "__main__":
    asyncio.run(child())
