"""Ownership of calls in progress: two controllers on one database, leases, restarts, sweeps.

Time is a clock the test moves: a lease expires because the clock passed it, not because the
test waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.record import CallTrace, Identified, Step, call_key
from ivr.session import CallInfo
from ivr.store import lease as lease_module
from ivr.store import writer as writer_module
from ivr.store.db import make_engine
from ivr.store.lease import LEASE_SECONDS, LeaseConflict, Owner
from ivr.store.queries import get_call
from ivr.store.writer import StoreWriter

T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _owner(name: str, host: str = "may-1") -> Owner:
    return Owner(name, "", host, os.getpid())


def _call_in_progress(writer: StoreWriter, node: str, channel: str) -> str:
    """A call on ``node`` that went through the greeting and pressed 4 at the menu."""
    observer = Identified(writer, node)
    trace = CallTrace(CallInfo(channel, "0912345678"), "v1", T0)
    observer.call_started(trace.snapshot())
    for step in (
        Step("greeting", "play", "played", at=T0 + dt.timedelta(seconds=1)),
        Step("main-menu", "menu", "pressed", input="4", at=T0 + dt.timedelta(seconds=2)),
        Step("main-menu", "menu", "timeout", at=T0 + dt.timedelta(seconds=5)),
    ):
        trace.add(step)
        observer.call_step(channel, step)
    return call_key(node, channel)


async def _crash(writer: StoreWriter) -> None:
    """The process dies: nothing more is written, the lease is neither renewed nor released."""
    await writer.drain()
    for task in (writer._task, writer._lease_task):
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _calling(
    engine: AsyncEngine, tmp_path: Path, clock: Clock, channel: str
) -> tuple[StoreWriter, Identified, CallTrace]:
    """Controller ctl-a started, and a call on its node ast-1 begun at T0 (not yet written)."""
    writer = StoreWriter(engine, tmp_path / "a", owner=_owner("ctl-a"), clock=clock)
    await writer.start()
    observer = Identified(writer, "ast-1")
    trace = CallTrace(CallInfo(channel, "0912345678"), "v1", T0)
    observer.call_started(trace.snapshot())
    return writer, observer, trace


async def _disposition(engine: AsyncEngine, key: str) -> str:
    call = await get_call(engine, key)
    assert call is not None
    return call.disposition


async def test_two_controllers_one_restarted_the_others_calls_untouched_until_its_lease_ends(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    engine = make_engine(db_url)
    a = StoreWriter(engine, tmp_path / "a", owner=_owner("ctl-a"), clock=clock)
    b = StoreWriter(engine, tmp_path / "b", owner=_owner("ctl-b"), clock=clock)
    await a.start()
    await b.start()
    # the same channel id on two Asterisk nodes: two calls, two rows
    a_call = _call_in_progress(a, "ast-1", "1764043200.7")
    b_call = _call_in_progress(b, "ast-2", "1764043200.7")
    assert await a.sync()
    assert await b.sync()

    await _crash(a)  # A dies and comes back at once, under the same instance id
    clock.advance(1)
    a2 = StoreWriter(engine, tmp_path / "a", owner=_owner("ctl-a"), clock=clock)
    await a2.start()
    assert await _disposition(engine, a_call) == "interrupted"  # its own previous life
    assert await _disposition(engine, b_call) == "in_progress"  # B is alive: untouched
    interrupted = await get_call(engine, a_call)
    assert interrupted is not None
    assert (interrupted.path, interrupted.digits) == ("greeting>main-menu", "4")
    assert interrupted.ended_at == T0 + dt.timedelta(seconds=5)  # the last step written
    assert (interrupted.node, interrupted.controller) == ("ast-1", "ctl-a")

    a2_call = _call_in_progress(a2, "ast-1", "1764043300.9")  # A's new live call
    assert await a2.sync()
    await _crash(b)  # B dies for good
    clock.advance(LEASE_SECONDS - 2)  # B's lease still runs
    assert await a2.lease.tick() == 0
    assert await _disposition(engine, b_call) == "in_progress"
    clock.advance(3)  # now it has ended: the survivor sweeps B's call, never its own
    assert await a2.lease.tick() == 1
    assert await _disposition(engine, b_call) == "interrupted"
    swept = await get_call(engine, b_call)
    assert swept is not None
    assert swept.path == "greeting>main-menu"
    assert await _disposition(engine, a2_call) == "in_progress"
    await a2.stop()  # a clean stop closes what it leaves behind
    assert await _disposition(engine, a2_call) == "interrupted"
    await engine.dispose()


async def test_a_call_interrupted_after_many_keys_is_closed_with_its_keys_cut_to_the_column(
    db_url: str, tmp_path: Path
) -> None:
    """The keys of all its steps together are longer than a call's digits column (64): the
    sweep closes it as the writer would have written it, on PostgreSQL too, and starts."""
    clock = Clock()
    engine = make_engine(db_url)
    a, observer, trace = await _calling(engine, tmp_path, clock, "1764043200.5")
    typed = [str(n) * 30 for n in range(1, 4)]  # a unit's number typed three times, 90 keys
    for n, keys in enumerate(typed, 1):
        step = Step("unit-lookup", "directory", "not_found", input=keys, at=T0.replace(second=n))
        trace.add(step)
        observer.call_step("1764043200.5", step)
    assert await a.sync()
    await _crash(a)
    clock.advance(1)
    again = StoreWriter(engine, tmp_path / "a", owner=_owner("ctl-a"), clock=clock)
    await again.start()  # its previous life's call is closed as it starts
    closed = await get_call(engine, "ast-1/1764043200.5")
    assert closed is not None
    assert closed.disposition == "interrupted"
    assert closed.digits == "".join(typed)[:64]
    assert closed.path == "unit-lookup"
    await again.stop()
    await engine.dispose()


async def test_a_live_controller_id_held_elsewhere_is_refused_until_its_lease_ends(
    db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    engine = make_engine(db_url)
    first = StoreWriter(engine, tmp_path / "1", owner=_owner("ctl", "may-1"), clock=clock)
    await first.start()
    second = StoreWriter(engine, tmp_path / "2", owner=_owner("ctl", "may-2"), clock=clock)
    with pytest.raises(LeaseConflict, match="may-1"):
        await second.start()
    await _crash(first)
    clock.advance(LEASE_SECONDS + 1)
    await second.start()  # the first is gone: its id may be taken over
    await second.stop()
    await engine.dispose()


async def test_a_finished_record_replaces_an_interrupted_one(db_url: str, tmp_path: Path) -> None:
    """An owner swept while the database was away still writes its calls' real end."""
    clock = Clock()
    engine = make_engine(db_url)
    a, observer, trace = await _calling(engine, tmp_path, clock, "1764043200.8")
    assert await a.sync()
    clock.advance(LEASE_SECONDS + 1)  # A's lease lapsed (it could not renew): swept
    survivor = StoreWriter(engine, tmp_path / "s", owner=_owner("ctl-s"), clock=clock)
    await survivor.start()
    assert await _disposition(engine, "ast-1/1764043200.8") == "interrupted"
    observer.call_ended(trace.snapshot(T0 + dt.timedelta(seconds=30)))
    assert await a.sync()
    assert await _disposition(engine, "ast-1/1764043200.8") == "abandoned"
    await a.stop()
    await survivor.stop()
    await engine.dispose()


async def test_two_single_controllers_on_one_host_get_their_own_ids_and_leave_each_other_alone(
    db_url: str, tmp_path: Path
) -> None:
    """`ivr run` twice on one machine, one database: two ARI apps (or two Asterisks). Each
    default id is its own, so the second's start-up sweep of "its previous life" does not close
    the first's call (with one id for both, it did: same host, same id)."""
    from ivr.cli.serve import _open_store
    from ivr.config import Settings

    one = Settings(database_url=db_url, data_dir=str(tmp_path / "1"), ari_app="hotline")
    two = Settings(database_url=db_url, data_dir=str(tmp_path / "2"), ari_app="hotline-b")
    three = Settings(  # the same app on another Asterisk of this host
        database_url=db_url, data_dir=str(tmp_path / "3"), ari_url="http://127.0.0.1:8089/ari"
    )
    engine_1, first = await _open_store(one)
    key = _call_in_progress(first, "ast-1", "1764043200.11")
    assert await first.sync()
    engine_2, second = await _open_store(two)  # its start sweeps its own previous life
    engine_3, third = await _open_store(three)
    ids = {first.owner.id, second.owner.id, third.owner.id}
    assert len(ids) == 3, ids
    assert all(i.startswith(f"{first.owner.host}:ari:") for i in ids)
    assert await _disposition(engine_1, key) == "in_progress"
    for writer, engine in ((third, engine_3), (second, engine_2)):
        await writer.stop()
        await engine.dispose()
    assert await _disposition(engine_1, key) == "in_progress"  # their clean stops too
    await first.stop()
    assert await _disposition(engine_1, key) == "interrupted"  # its own stop closes it
    await engine_1.dispose()


def test_a_default_id_too_long_for_its_column_stays_unique() -> None:
    from ivr.store.lease import ID_LENGTH, default_instance

    a = default_instance("ari", "hotline-" + "x" * 80 + "@127.0.0.1:8088")
    b = default_instance("ari", "hotline-" + "x" * 80 + "@127.0.0.1:8089")
    assert a != b
    assert len(a) <= ID_LENGTH
    assert len(b) <= ID_LENGTH


class Held:
    """A database operation of the writer's, held in flight until ``gate`` opens."""

    def __init__(self, operation: Callable[..., Awaitable[Any]]) -> None:
        self.operation = operation
        self.gate, self.entered = asyncio.Event(), asyncio.Event()
        self.finished = False

    async def __call__(self, *args: Any) -> None:
        self.entered.set()
        await self.gate.wait()
        await self.operation(*args)
        self.finished = True

    async def stop_meanwhile(self, writer: StoreWriter, loop: asyncio.Task[None] | None) -> None:
        """stop() while the operation is held: it cancels ``loop`` (the task that runs the
        operation), then waits for the operation, which finishes once let go."""
        assert loop is not None
        stopping = asyncio.create_task(writer.stop())
        await asyncio.wait({loop})  # stop cancelled the loop
        assert not stopping.done()  # and waits for the operation
        self.gate.set()
        await asyncio.wait_for(stopping, 30)
        assert self.finished


async def test_a_stop_during_a_lease_tick_lets_the_tick_finish(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled halfway, a tick's database operation leaves its connection to be closed from
    the driver's thread later, on an event loop that may be closed by then."""
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", owner=_owner("a"))
    writer.lease.renew_seconds = 0  # the first tick at once
    held = Held(lease_module.renew)
    monkeypatch.setattr(lease_module, "renew", held)
    await writer.start()
    await asyncio.wait_for(held.entered.wait(), 30)  # a tick is in flight
    await held.stop_meanwhile(writer, writer._lease_task)
    await engine.dispose()


async def test_a_stop_during_a_replay_lets_the_write_finish(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer replays the spool on its own, while drain() has nothing to wait for: a stop
    then must not cut the replay's write halfway (see the lease's test above)."""
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", owner=_owner("a"), retry_seconds=0.01)
    held = Held(writer_module.write_ops)
    monkeypatch.setattr(writer_module, "write_ops", held)
    await writer.start()
    writer.spool.append([("cause", {"id": "spooled.1", "hangup_cause": 16,
                                    "hangup_cause_text": "Normal Clearing"})])  # fmt: skip
    await asyncio.wait_for(held.entered.wait(), 30)  # the writer replays it by itself
    await held.stop_meanwhile(writer, writer._task)
    assert not writer.spool.pending()
    await engine.dispose()
