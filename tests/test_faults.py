"""Faults, each with its figures (issue 16, deliverable 3): the ARI websocket frozen without
closing, Asterisk restarted, PostgreSQL stopped while calls go on, the spool's disk full.

Each test places calls through the simulator (a real controller, a simulated Asterisk), injects
the fault, and prints one line (`pytest -s` shows it): calls placed, served, dropped, rows lost.
It asserts the counts, never the time a thing took (the times printed are for reading).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from sqlalchemy import func, select

from ivr.flow.record import CallRecord, Disposition, FanOut, MemoryObserver
from ivr.ops import health
from ivr.ops.http import LiveFigures, OpsServer
from ivr.routing.model import Routing
from ivr.sim.harness import Harness
from ivr.sim.http import AsteriskSim
from ivr.sim.objects import SimCall
from ivr.sim.scripts import CallerScript, Clerks, Press
from ivr.store.db import make_engine, upgrade
from ivr.store.writer import StoreWriter
from ivr.testing.pg import PgServer
from models import Call

from .conftest import vn_time
from .scenarios import ANSWER

SPEED = 10.0
DAY = vn_time("2026-11-25 09:00")
CLERKS = Clerks(default=ANSWER)
FALLBACK = "dialplan:hotline-fallback"
OUTAGE_SECONDS = 10.0  # the database is kept down this long (the issue says 60: CI stays short)
NOT_SERVED = {Disposition.ERRORED, Disposition.INTERRUPTED, Disposition.IN_PROGRESS}


def to_a_clerk(number: str) -> CallerScript:
    return CallerScript((Press("4", on="prompt:main-menu", after=0.3),), number=number)


def figures(
    fault: str,
    placed: Iterable[SimCall],
    records: Iterable[CallRecord],
    rows: int,
    **extra: object,
) -> tuple[int, int, int]:
    """(served, dropped, rows lost) of the calls placed, printed on one line. Served: the flow
    ran to its end; handed back: the caller went to the dialplan's fallback (the operators);
    dropped: neither (the caller was cut off)."""
    calls, by_number = list(placed), {r.caller_number: r for r in records}
    numbers = [c.script.number for c in calls]
    served = sum(
        1 for n in numbers if n in by_number and by_number[n].disposition not in NOT_SERVED
    )
    handed = sum(
        1
        for c in calls
        if FALLBACK in c.log
        and by_number.get(c.script.number) is not None
        and by_number[c.script.number].disposition in NOT_SERVED
    )
    dropped = len(calls) - served - handed
    lost = len(calls) - rows
    more = "".join(f"; {k.replace('_', ' ')} {v}" for k, v in extra.items())
    print(
        f"\n{fault}: calls placed {len(calls)}, served {served}, handed to the operators {handed},"
        f" dropped {dropped}, rows lost {lost}{more}"
    )
    return served, dropped, lost


async def all_done(h: Harness, calls: Iterable[SimCall]) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 60)
    await asyncio.wait_for(h.idle(), 60)


# --- the ARI websocket frozen -------------------------------------------------------------------


async def test_frozen_websocket_is_detected_and_calls_go_on(routing: Routing) -> None:
    observer = MemoryObserver()
    numbers = [f"09110000{i:02d}" for i in range(6)]
    with structlog.testing.capture_logs() as logs:
        async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
            assert h.app is not None
            # ivr run's heartbeat: a ping each 5 s, dropped when no pong in half of that; the
            # bound of the issue (10 s) holds by construction, the test waits for the event
            assert h.app.stream.heartbeat * 1.5 < 10
            before = [h.sim.call(to_a_clerk(n)) for n in numbers[:3]]
            await asyncio.gather(*(c.reached("prompt:greeting") for c in before))
            frozen_at = time.monotonic()
            h.sim.freeze_websockets()  # open, silent, no pong
            await asyncio.wait_for(h.sim.wait_connected(2), 60)  # a new websocket: detected
            detected = time.monotonic() - frozen_at
            after = [h.sim.call(to_a_clerk(n)) for n in numbers[3:]]
            await all_done(h, before + after)
            assert h.sim.pbx.channels == {}
    reconnects = [e for e in logs if e["event"] == "ARI websocket connected" and e["reconnect"]]
    assert len(reconnects) == 1
    served, dropped, lost = figures(
        "ARI websocket frozen",
        before + after,
        observer.done,
        len({r.channel_id for r in observer.done}),
        detected_after=f"{detected:.1f} s",
    )
    assert lost == 0
    assert dropped == 0
    assert served == 6


# --- Asterisk restarted -------------------------------------------------------------------------


def _port(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


@pytest.mark.parametrize("channels_survive", [True, False], ids=["ari-restarted", "pbx-restarted"])
async def test_asterisk_restarted_controller_reconnects_and_settles_every_call(
    routing: Routing, channels_survive: bool
) -> None:
    """``ari-restarted``: Asterisk's HTTP/ARI face goes and comes back, its channels live on (the
    controller resumes them). ``pbx-restarted``: a new Asterisk on the same port, every channel
    gone with the old one (the controller closes their records); then new calls are served."""
    observer = MemoryObserver()
    numbers = [f"09120000{i:02d}" for i in range(6)]
    async with Harness(routing, observer, speed=SPEED, clerks=CLERKS, clock=lambda: DAY) as h:
        assert h.app is not None
        port = _port(h.sim.base_url)
        before = [h.sim.call(to_a_clerk(n)) for n in numbers[:3]]
        await asyncio.gather(*(c.reached("prompt:greeting") for c in before))
        old = h.sim
        await old.stop()
        if channels_survive:
            await old.start(port=port)
            back = old
        else:
            back = AsteriskSim(speed=SPEED, clerks=CLERKS)
            await back.start(port=port)
            h.sim = back
        back_at = time.monotonic()
        await asyncio.wait_for(back.wait_connected(1 if back is not old else 2), 60)
        reconnected = time.monotonic() - back_at
        after = [back.call(to_a_clerk(n)) for n in numbers[3:]]
        survivors = before if channels_survive else []
        await all_done(h, survivors + after)
        assert back.pbx.channels == {}
    by_number = {r.caller_number: r for r in observer.done}
    served, dropped, lost = figures(
        f"Asterisk restarted ({'channels kept' if channels_survive else 'channels lost'})",
        before + after,
        observer.done,
        len({r.channel_id for r in observer.done}),
        reconnected_after=f"{reconnected:.2f} s",
    )
    assert lost == 0  # each call has its one record, closed
    assert all(by_number[n].disposition is not Disposition.IN_PROGRESS for n in numbers)
    assert all(by_number[n].disposition is Disposition.ANSWERED for n in numbers[3:])
    if channels_survive:
        assert dropped == 0  # what Asterisk kept went on, or to the operators
    else:
        assert dropped == 3  # the old Asterisk took its calls with it; we closed their rows
        assert served == 3


# --- PostgreSQL stopped -------------------------------------------------------------------------


async def _rows(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(Call.caller_number, Call.disposition))).all()
            assert await conn.scalar(select(func.count(func.distinct(Call.id)))) == len(rows)
        return {r.caller_number: r.disposition for r in rows}
    finally:
        await engine.dispose()


async def test_postgresql_stopped_calls_served_records_spooled_then_written(
    pg_server: PgServer | None, routing: Routing, tmp_path: Path
) -> None:
    """Different from test_store's burst: whole calls through the controller while the
    database is away, some started before it went and ended during the outage."""
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed")
    url = await pg_server.create_database(f"ivr_fault_pg_{os.getpid()}_{time.monotonic_ns()}")
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool", retry_seconds=0.05)
    await writer.start()
    memory = MemoryObserver()
    numbers = [f"09139999{i:02d}" for i in range(4)]
    outage = 0.0
    try:
        async with Harness(
            routing, FanOut(writer, memory), speed=SPEED, clerks=CLERKS, clock=lambda: DAY
        ) as h:
            first = [h.sim.call(to_a_clerk(n)) for n in numbers[:4]]
            await asyncio.gather(*(c.reached("prompt:greeting") for c in first))
            await writer.drain()  # their starts are in the database
            stopped_at = time.monotonic()
            await asyncio.to_thread(pg_server.stop)
            during: list[SimCall] = []
            while time.monotonic() - stopped_at < OUTAGE_SECONDS:  # waves of calls meanwhile
                wave = [h.sim.call(to_a_clerk(f"0913{len(during) + i:06d}")) for i in range(3)]
                during += wave
                await all_done(h, wave)
            await all_done(h, first + during)
            await writer.drain()
            assert not writer.database_ok
            assert writer.spool.pending()  # kept on disk meanwhile
            spooled = len(writer.spool.batches())
            outage = time.monotonic() - stopped_at
    finally:
        await asyncio.to_thread(pg_server.start)
    assert await writer.sync()
    assert not writer.spool.pending()
    await writer.stop()
    await engine.dispose()
    rows = await _rows(url)
    served, dropped, lost = figures(
        "PostgreSQL stopped",
        first + during,
        memory.done,
        len(rows),
        database_down_for=f"{outage:.1f} s",
        batches_spooled=spooled,
    )
    assert lost == 0
    assert dropped == 0
    assert served == len(first + during)
    assert rows == {r.caller_number: r.disposition.value for r in memory.done}  # as recorded


# --- the spool's disk full ----------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB filesystem filled to the last byte (tmpfs: mounting needs root)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is a small tmpfs, mounted as root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + " "))
    return float(line.split()[1])


async def _scrape(port: int) -> tuple[str, int, dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            metrics = await r.text()
        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
            body = await r.json() if r.content_type == "application/json" else {}
            return metrics, r.status, body


async def test_spool_disk_full_alarms_and_calls_are_still_served(
    pg_server: PgServer | None, routing: Routing, full_disk: Path
) -> None:
    """The database down and the spool's disk full: the alarm, the calls served, the records
    held in memory; then the database back: every record written."""
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed")
    url = await pg_server.create_database(f"ivr_fault_disk_{os.getpid()}_{time.monotonic_ns()}")
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, full_disk / "spool", retry_seconds=0.05)
    await writer.start()
    ops = OpsServer(
        {"asterisk": health.flag(lambda: True, ""), "store": health.store(writer, engine)},
        LiveFigures(spooled=lambda: len(writer.spool.batches())),
    )
    port = await ops.start("127.0.0.1", 0)
    memory = MemoryObserver()
    numbers = [f"09140000{i:02d}" for i in range(4)]
    try:
        before = _metric((await _scrape(port))[0], "ivr_store_spool_failures_total")
    except BaseException:
        await writer.stop()
        await ops.stop()
        await engine.dispose()
        raise
    await asyncio.to_thread(pg_server.stop)
    try:
        with structlog.testing.capture_logs() as logs:
            async with Harness(
                routing, FanOut(writer, memory), speed=SPEED, clerks=CLERKS, clock=lambda: DAY
            ) as h:
                calls = [h.sim.call(to_a_clerk(n)) for n in numbers]
                await all_done(h, calls)
            await asyncio.wait_for(writer.spool_failed.wait(), 30)
        metrics, status, health_body = await _scrape(port)
        held = writer.held_in_memory()
    finally:
        await asyncio.to_thread(pg_server.start)
    try:
        assert await writer.sync()  # the database is back: what memory held is written
        rows = await _rows(url)
        failures = _metric(metrics, "ivr_store_spool_failures_total") - before
        alarms = [e for e in logs if e["event"].startswith("SPOOL UNWRITABLE")]
        served, dropped, lost = figures(
            "spool disk full",
            calls,
            memory.done,
            len(rows),
            spool_failures=int(failures),
            records_held_in_memory=held,
            healthz=status,
        )
        assert served == 4
        assert dropped == 0
        assert lost == 0
        assert rows == {r.caller_number: r.disposition.value for r in memory.done}
        assert failures >= 1  # the alarm on /metrics
        assert alarms  # and in the log, saying why
        assert "No space left on device" in str(alarms[0])
        assert held > 0  # meanwhile nothing dropped: kept in memory
        assert status == 503
        assert "store" in health_body["reasons"]  # type: ignore[operator]
    finally:
        await writer.stop()
        await ops.stop()
        await engine.dispose()
