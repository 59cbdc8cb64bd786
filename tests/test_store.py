"""The call-record store on SQLite and on a real PostgreSQL: migrations, exact records, failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.engine import run_call
from ivr.flow.record import CallObserver, CallTrace, FanOut, MemoryObserver, Step
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import FakeSession
from ivr.sim.harness import Harness
from ivr.sim.scripts import ClerkKind, Clerks
from ivr.store import sql
from ivr.store import writer as writer_module
from ivr.store.db import check, downgrade, make_engine, sqlite_url, upgrade
from ivr.store.queries import CallFilter, get_call, list_calls, list_voicemails
from ivr.store.rows import Op
from ivr.store.writer import StoreWriter
from ivr.testing.pg import PgServer
from models import Call, CallStep, Voicemail

from .conftest import ROOT, vn_time
from .scenarios import ANSWER, SCENARIOS

DAY = vn_time("2026-11-25 09:00")


async def test_migrations_upgrade_check_and_round_trip(db_url: str) -> None:
    await asyncio.to_thread(check, db_url)  # models and migrations agree
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"calls", "call_steps", "voicemails", "alembic_version"} <= tables
    await asyncio.to_thread(downgrade, db_url, "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables & {"calls", "call_steps", "voicemails"} == set()
    await asyncio.to_thread(upgrade, db_url)
    await asyncio.to_thread(check, db_url)
    await engine.dispose()


async def test_every_scenario_is_stored_exactly(
    db_url: str, routing: Routing, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", batch_size=50)
    await writer.start()
    memory = MemoryObserver()
    observer = FanOut(writer, memory)

    async def one(sc: object, number: str) -> None:
        from .scenarios import Scenario

        assert isinstance(sc, Scenario)
        at = vn_time(sc.at)
        clerks = Clerks(by_endpoint=dict(sc.clerks), default=ANSWER)
        async with Harness(routing, observer, speed=10, clerks=clerks, clock=lambda: at) as h:
            call = h.sim.call(sc.script(number))
            await asyncio.wait_for(call.done, 60)
            await h.idle()

    await asyncio.gather(*(one(sc, f"09{i:08d}") for i, sc in enumerate(SCENARIOS)))
    assert await writer.sync()
    assert len(memory.done) == len(SCENARIOS)
    for rec in memory.done:
        stored = await get_call(engine, rec.channel_id)
        assert stored is not None
        assert stored.disposition == rec.disposition.value
        assert stored.path.split(">") == list(rec.path)
        assert (stored.digits, stored.branch, stored.unit, stored.endpoint) == (
            rec.digits,
            rec.branch,
            rec.unit,
            rec.endpoint,
        )
        assert (stored.started_at, stored.answered_at, stored.ended_at) == (
            rec.started_at,
            rec.answered_at,
            rec.ended_at,
        )
        assert stored.started_at.tzinfo is not None
        assert (stored.wait_seconds, stored.talk_seconds) == (rec.wait_seconds, rec.talk_seconds)
        assert (stored.caller_number, stored.routing_version, stored.hangup_by) == (
            rec.caller_number,
            rec.routing_version,
            rec.hangup_by,
        )
        steps = [(s.node, s.kind, s.outcome, s.input, s.detail, s.at) for s in stored.steps]
        assert steps == [(s.node, s.kind, s.outcome, s.input, s.detail, s.at) for s in rec.steps]
        if rec.voicemail is None:
            assert stored.voicemail is None
        else:
            vm = stored.voicemail
            assert vm is not None
            assert (vm.name, vm.duration_seconds, vm.size_bytes, vm.sha256, vm.status) == (
                rec.voicemail.name,
                rec.voicemail.duration_seconds,
                rec.voicemail.size_bytes,
                rec.voicemail.sha256,
                "new",
            )
    await writer.stop()
    await engine.dispose()


async def _fake_calls(observer: CallObserver, routing: Routing, first: int, count: int) -> None:
    for i in range(first, first + count):
        session = FakeSession(
            CallInfo(f"burst.{i}", f"09{i:08d}"),
            inputs=["4"],
            default_clerk=ClerkKind.BUSY,
            voicemail_seconds=3,
        )
        await run_call(session, routing, observer, clock=lambda: DAY.astimezone(dt.UTC))


async def _counts(db_url: str) -> tuple[int, int, int, int]:
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        calls = await conn.scalar(select(func.count()).select_from(Call))
        distinct = await conn.scalar(select(func.count(func.distinct(Call.id))))
        steps = await conn.scalar(select(func.count()).select_from(CallStep))
        vms = await conn.scalar(select(func.count()).select_from(Voicemail))
    await engine.dispose()
    return int(calls or 0), int(distinct or 0), int(steps or 0), int(vms or 0)


async def test_database_stopped_mid_burst_loses_nothing_and_writes_nothing_twice(
    pg_server: PgServer | None, routing: Routing, tmp_path: Path
) -> None:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed")
    url = await pg_server.create_database(f"ivr_burst_{os.getpid()}")
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool", batch_size=20, retry_seconds=0.05)
    await writer.start()
    try:
        await _fake_calls(writer, routing, 0, 100)
        await writer.drain()
        await asyncio.to_thread(pg_server.stop)  # the database goes away mid-burst
        await _fake_calls(writer, routing, 100, 100)
        await writer.drain()
        assert writer.spool.pending()  # kept on disk meanwhile
        assert not writer.database_ok
    finally:
        await asyncio.to_thread(pg_server.start)
    assert await writer.sync()
    assert not writer.spool.pending()
    await writer.stop()
    await engine.dispose()
    calls, distinct, steps, vms = await _counts(url)
    probe = MemoryObserver()
    await _fake_calls(probe, routing, 1000, 1)
    assert calls == distinct == 200
    assert vms == 200
    assert steps == 200 * len(probe.done[0].steps)


async def test_a_killed_controller_leaves_its_calls_marked_interrupted(
    db_url: str, tmp_path: Path
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_child",
        db_url,
        str(tmp_path / "spool"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.decode().strip() == "IN-CALL"
        child.send_signal(signal.SIGKILL)  # no clean-up of any kind
    finally:
        await child.wait()
    engine = make_engine(db_url)
    before = await list_calls(engine, CallFilter())
    assert [c.disposition for c in before] == ["in_progress"] * 3
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()  # the next start closes them
    after = await list_calls(engine, CallFilter())
    assert [c.disposition for c in after] == ["interrupted"] * 3
    for c in after:
        assert c.ended_at is not None
        assert c.ended_at >= c.started_at
        full = await get_call(engine, c.id)
        assert full is not None
        assert [s.node for s in full.steps][:3] == ["start", "greeting", "main-menu"]
    await writer.stop()
    await engine.dispose()


async def test_unwritable_spool_is_loud_and_calls_are_still_answered(
    routing: Routing, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    engine = make_engine("postgresql+asyncpg://ivr@127.0.0.1:9/nowhere")  # nobody listens
    writer = StoreWriter(engine, blocker / "spool", retry_seconds=0.05)
    writer._task = asyncio.create_task(writer._run())  # no start(): the database is down
    memory = MemoryObserver()
    failures_before = writer_module.SPOOL_FAILURES._value.get()
    with structlog.testing.capture_logs() as logs:
        async with Harness(routing, FanOut(writer, memory), speed=10, clock=lambda: DAY) as h:
            from ivr.sim.scripts import CallerScript, Press

            call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu"),)))
            await asyncio.wait_for(call.done, 30)
            await h.idle()
        await asyncio.wait_for(writer.spool_failed.wait(), 30)
    assert [r.disposition.value for r in memory.done] == ["answered"]
    assert writer_module.SPOOL_FAILURES._value.get() > failures_before
    assert any(e["event"].startswith("SPOOL UNWRITABLE") for e in logs)
    assert writer.held_in_memory() > 0  # nothing silently dropped
    writer._task.cancel()
    await engine.dispose()


async def test_voicemails_list_new_first(db_url: str, routing: Routing, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    await _fake_calls(writer, routing, 0, 3)
    assert await writer.sync()
    from ivr.store.queries import set_voicemail_status

    first = (await list_voicemails(engine))[0]
    assert await set_voicemail_status(engine, first.id, "heard", "Lan", DAY)
    statuses = [v.status for v in await list_voicemails(engine)]
    assert statuses == ["new", "new", "heard"]
    await writer.stop()
    await engine.dispose()


async def test_steps_handed_over_live_are_written_once_and_the_end_adds_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call's steps reach the writer one by one; its end carries them all again. The writer
    writes each once: the end adds only the steps it had not been given (here the last one, and
    every step of a call it never saw start)."""
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool", linger_seconds=0)
    await writer.start()
    at = DAY.astimezone(dt.UTC)
    steps = [Step(f"n{i}", "prompt", "played", at=at + dt.timedelta(seconds=i)) for i in range(4)]
    written: list[tuple[str, int]] = []  # the steps the writer sends to the database

    async def write_ops(engine: AsyncEngine, ops: list[Op], controller: str = "") -> None:
        written.extend((row["call_id"], row["seq"]) for kind, row in ops if kind == "step")
        await sql.write_ops(engine, ops, controller)

    monkeypatch.setattr(writer_module, "write_ops", write_ops)

    live = CallTrace(CallInfo("live.1", "0912345678"), "v1", at)
    writer.call_started(live.snapshot())
    for s in steps[:3]:
        writer.call_step(live.snapshot().key, live.add(s))
    live.add(steps[3])  # given only with the call's end
    writer.call_ended(live.snapshot(at + dt.timedelta(seconds=9)))
    unseen = CallTrace(CallInfo("unseen.1", "0912345679"), "v1", at, steps=list(steps))
    writer.call_ended(unseen.snapshot(at + dt.timedelta(seconds=9)))
    assert await writer.sync()

    assert sorted(written) == [(k, i) for k in ("live.1", "unseen.1") for i in range(4)]
    for key in ("live.1", "unseen.1"):
        stored = await get_call(engine, key)
        assert stored is not None
        assert [(s.node, s.at) for s in stored.steps] == [(s.node, s.at) for s in steps]
    await writer.stop()
    await engine.dispose()
