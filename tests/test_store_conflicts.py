"""Writers sharing PostgreSQL (controllers of a cluster, the reconciler, the lease sweep): two
transactions adding to the same rollup rows lock them in one order, so one waits for the other
instead of both failing a deadlock; a batch the database fails anyway to let another transaction
go on is written again at once, not spooled as if the database were down."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.store.db import make_engine
from ivr.store.identity import keyed
from ivr.store.lease import _interrupt
from ivr.store.rollups import Delta, apply, facts_of
from ivr.store.rows import call_row
from ivr.store.sql import write_ops
from ivr.store.writer import StoreWriter
from ivr.testing.pg import PgServer
from models import Call, call_rollups
from tests.conftest import pg_database
from tests.test_rollups import kept_equals_rebuild
from tests.test_store_hardening import make_record

SLOT = dt.datetime(2026, 11, 23, 3, tzinfo=dt.UTC)


async def _until_a_lock_is_awaited(watch: AsyncConnection) -> None:
    """Until some transaction waits for a lock another holds (PostgreSQL's own view of it)."""
    deadline = time.monotonic() + 30
    while not await watch.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
        assert time.monotonic() < deadline, "no transaction ever waited for the other"
        await asyncio.sleep(0.01)


def _answered(*branches: str) -> Delta:
    """One answered call per branch, in the order given, in the same hour."""
    delta = Delta()
    for branch in branches:
        delta.calls[(SLOT, branch, "", "answered", "open", "4")]["calls"] += 1
    return delta


async def test_two_transactions_adding_to_the_same_rollups_wait_instead_of_deadlocking(
    pg_server: PgServer | None,
) -> None:
    engine = make_engine(await pg_database(pg_server, "ivr_lock_order"))
    try:
        async with engine.connect() as first, engine.connect() as second, engine.connect() as w:
            await first.begin()
            await second.begin()
            await apply(first, _answered("1"))  # holds branch 1's rows
            # the second lists branch 2 first: in that order it would hold branch 2's row while
            # waiting for branch 1's, and the first, wanting branch 2's next, would deadlock it
            adding = asyncio.create_task(apply(second, _answered("2", "1")))
            await _until_a_lock_is_awaited(w)
            await apply(first, _answered("2"))
            await first.commit()
            await adding
            await second.commit()
        async with engine.connect() as conn:
            rows = await conn.execute(select(call_rollups.c.branch, call_rollups.c.calls))
            assert dict(rows.all()) == {"1": 2, "2": 2}
    finally:
        await engine.dispose()


async def test_a_batch_failed_to_break_a_deadlock_is_written_again_not_spooled(
    pg_server: PgServer | None, tmp_path: Path
) -> None:
    engine = make_engine(await pg_database(pg_server, "ivr_conflict"))
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    before = REGISTRY.get_sample_value("ivr_store_conflicts_total") or 0.0
    a, b = make_record("a"), make_record("b")
    try:
        async with engine.connect() as other, engine.connect() as watch:
            await other.begin()
            # only the writer's side gives up: its wait began first and times out first
            await other.execute(text("SET LOCAL deadlock_timeout = '60s'"))
            [(_, row_b)] = keyed([("call", call_row(b))], b, "someone-else")
            await other.execute(insert(Call), [row_b])  # b's row, held by another transaction
            writer.call_ended(a)
            writer.call_ended(b)
            draining = asyncio.create_task(writer.drain())
            await _until_a_lock_is_awaited(watch)  # the writer wrote a's row, waits for b's
            [(_, row_a)] = keyed([("call", call_row(a))], a, "someone-else")
            await other.execute(insert(Call), [row_a])  # a cycle: PostgreSQL fails the writer's
            await other.rollback()
            await draining
        assert writer.database_ok
        assert not writer.spool.pending()
        assert REGISTRY.get_sample_value("ivr_store_conflicts_total") == before + 1
        assert await kept_equals_rebuild(engine) == 2
        async with engine.connect() as conn:
            stored = await conn.execute(select(Call.id, Call.controller).order_by(Call.id))
            assert [tuple(r) for r in stored] == [("a", writer.owner.id), ("b", writer.owner.id)]
    finally:
        await writer.stop()
        await engine.dispose()


async def test_a_call_swept_while_its_end_is_written_moves_in_the_rollups_once(
    pg_server: PgServer | None,
) -> None:
    """A survivor sweeps a call (in progress, its controller gone) just as that controller, back,
    writes the call's end: whichever writes second must start from what the first left, or the
    rollups move the call twice. A batch locks its calls' rows while it reads their facts."""
    engine = make_engine(await pg_database(pg_server, "ivr_sweep_race"))
    started, ended = make_record("x", ended=False), make_record("x")
    try:
        await write_ops(engine, keyed([("call", call_row(started))], started, "gone"))
        async with engine.connect() as sweeper, engine.connect() as watch:
            await sweeper.begin()
            await sweeper.execute(select(Call.id).where(Call.id == "x").with_for_update())
            writing = asyncio.create_task(
                write_ops(engine, keyed([("call", call_row(ended))], ended, "gone"))
            )
            await _until_a_lock_is_awaited(watch)
            assert await _interrupt(sweeper, "x") == 1  # the sweep's own step, rollups and all
            await sweeper.commit()
            await writing
        async with engine.connect() as conn:
            assert await conn.scalar(select(Call.disposition)) == "abandoned"  # the real end
        assert await kept_equals_rebuild(engine) == 1
    finally:
        await engine.dispose()


async def test_a_call_stored_by_another_while_its_batch_is_written_is_counted_once(
    pg_server: PgServer | None, tmp_path: Path
) -> None:
    """The reconciler stores a fallback row for a call (CEL says it ended, no record came) just
    as the controller, its database back, writes the call's own record: the batch found no row
    when it read, and finds one when it writes. It is written again, from what is stored."""
    engine = make_engine(await pg_database(pg_server, "ivr_insert_race"))
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    before = REGISTRY.get_sample_value("ivr_store_conflicts_total") or 0.0
    record = make_record("x")
    [(_, fallback)] = keyed([("call", call_row(record))], record, "")
    fallback.update(disposition="fallback", talk_seconds=0.0)
    try:
        async with engine.connect() as reconciler, engine.connect() as watch:
            await reconciler.begin()
            await reconciler.execute(insert(Call), [fallback])
            await apply(reconciler, Delta.between([], await facts_of(reconciler, ["x"])))
            writer.call_ended(record)
            draining = asyncio.create_task(writer.drain())
            await _until_a_lock_is_awaited(watch)  # the writer's upsert waits for that row
            await reconciler.commit()
            await draining
        assert writer.database_ok
        assert not writer.spool.pending()
        assert REGISTRY.get_sample_value("ivr_store_conflicts_total") == before + 1
        async with engine.connect() as conn:
            assert await conn.scalar(select(Call.disposition)) == "abandoned"  # the record's
        assert await kept_equals_rebuild(engine) == 1
    finally:
        await writer.stop()
        await engine.dispose()
