"""Issue 14, the store's rows: a bad record, a purge during a call, a damaged spool file or two
controllers migrating at once never stop the records behind them."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, inspect, select

from ivr.flow.record import CallRecord, Disposition, Step
from ivr.flow.record import Voicemail as VoicemailRecord
from ivr.store import writer as writer_module
from ivr.store.db import check, make_engine, sqlite_url
from ivr.store.purge import purge
from ivr.store.queries import get_call
from ivr.store.rows import dumps
from ivr.store.writer import StoreWriter
from ivr.testing.pg import PgServer
from models import Call

from .conftest import ROOT

T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


def make_record(
    channel_id: str,
    *,
    number: str = "0912345678",
    name: str = "",
    dialed: str = "1022",
    steps: tuple[Step, ...] = (),
    ended: bool = True,
    voicemail: bool = False,
) -> CallRecord:
    vm = (
        VoicemailRecord(
            f"vm-{len(channel_id)}", "/tmp/vm.wav", 3.0, 48_000, "0" * 64, "4", None, T0
        )
        if voicemail and ended
        else None
    )
    return CallRecord(
        channel_id=channel_id,
        linked_id=channel_id,
        caller_number=number,
        caller_name=name,
        dialed=dialed,
        routing_version="v1",
        started_at=T0,
        answered_at=T0,
        ended_at=T0 + dt.timedelta(seconds=30) if ended else None,
        disposition=(Disposition.VOICEMAIL if vm else Disposition.ABANDONED)
        if ended
        else Disposition.IN_PROGRESS,
        path=("start", "main-menu"),
        digits="".join(s.input for s in steps),
        branch=None,
        unit=None,
        endpoint=None,
        wait_seconds=0.0,
        talk_seconds=0.0,
        steps=steps,
        voicemail=vm,
        error=None,
        hangup_by="caller" if ended else None,
    )


def one_call(writer: StoreWriter, record: CallRecord) -> None:
    """Hand a whole call to the writer the way the flow does: started, each step, ended."""
    writer.call_started(make_record(record.channel_id, number=record.caller_number, ended=False))
    for step in record.steps:
        writer.call_step(record.channel_id, step)
    writer.call_ended(record)


def quarantined() -> float:
    return float(writer_module.QUARANTINED._value.get())


# --- row 1: caller data the columns cannot take ---------------------------------------------


async def test_oversized_and_nul_caller_data_is_bounded_and_blocks_nothing(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", retry_seconds=0.05)
    await writer.start()
    name = "Nguyễn\x00Văn A " + "x" * 300
    number = "09" + "1" * 100
    hostile = make_record(
        "bad.1",
        number=number,
        name=name,
        steps=(Step("main-menu", "menu", "chosen", "4\x00" * 50, "d\x00etail", T0),),
    )
    one_call(writer, hostile)
    one_call(writer, make_record("good.2", name="Trần Thị B"))
    assert await writer.sync()
    bad = await get_call(engine, "bad.1")
    assert bad is not None
    assert bad.caller_name == ("Nguyễn\ufffdVăn A " + "x" * 300)[:128]
    assert bad.caller_number == number[:64]
    assert [(s.input, s.detail) for s in bad.steps] == [(("4\ufffd" * 50)[:64], "d\ufffdetail")]
    good = await get_call(engine, "good.2")
    assert good is not None
    assert good.caller_name == "Trần Thị B"
    assert not writer.spool.pending()
    await writer.stop()
    await engine.dispose()


async def test_a_record_no_cleaning_can_save_is_set_aside_and_the_rest_go_on(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", retry_seconds=0.05)
    await writer.start()
    before = quarantined()
    with structlog.testing.capture_logs() as logs:
        writer.call_step("ghost.9", Step("main-menu", "menu", "chosen", "4", "", T0))  # no call
        one_call(writer, make_record("after.1", steps=(Step("main-menu", "menu", "x", "1"),)))
        assert await writer.sync()
    assert quarantined() == before + 1
    assert any("cách ly" in e["event"] for e in logs)
    aside = list((tmp_path / "spool" / "quarantine").glob("*.jsonl"))
    assert len(aside) == 1
    assert "ghost.9" in aside[0].read_text(encoding="utf-8")
    after = await get_call(engine, "after.1")
    assert after is not None
    assert len(after.steps) == 1
    assert writer.database_ok
    await writer.stop()
    await engine.dispose()


# --- row 2: purge during a live call ----------------------------------------------------------


async def test_purge_during_a_live_call_spares_it_and_later_records_are_stored(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", retry_seconds=0.05)
    await writer.start()
    one_call(writer, make_record("old.1"))
    live = make_record("live.1", ended=False)
    writer.call_started(live)
    writer.call_step("live.1", Step("greeting", "prompt", "played", at=T0))
    await writer.drain()
    assert await writer.sync()
    removed = await purge(engine, dt.datetime.now(dt.UTC))  # `ivr db purge --older-than 0d`
    assert removed.calls == 1
    writer.call_step("live.1", Step("main-menu", "menu", "chosen", "4", at=T0))
    writer.call_ended(make_record("live.1", steps=(Step("greeting", "prompt", "played", at=T0),)))
    one_call(writer, make_record("next.1"))
    assert await writer.sync()
    assert await get_call(engine, "old.1") is None
    kept = await get_call(engine, "live.1")
    assert kept is not None
    assert kept.disposition == "abandoned"
    assert [s.node for s in kept.steps] == ["greeting", "main-menu"]
    assert await get_call(engine, "next.1") is not None
    assert not writer.spool.pending()
    await writer.stop()
    await engine.dispose()


# --- row 3: damaged spool files -------------------------------------------------------------


def _spool_file(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


async def test_damaged_spool_files_at_start_are_set_aside_and_the_good_ones_replayed(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(_upgrade, url)
    spool = tmp_path / "spool"
    good = dumps([("call", _row("kept.1"))]).encode()
    torn = dumps([("call", _row("kept.2")), ("call", _row("kept.3"))]).encode()[:-40]
    _spool_file(spool, "00000000000000000001-1-000000.jsonl", b"\xff\xfe garbage\x00\n")
    _spool_file(spool, "00000000000000000002-1-000000.jsonl", good)
    _spool_file(spool, "00000000000000000003-1-000000.jsonl", torn)
    _spool_file(spool, "00000000000000000004-1-000000.jsonl", b'["nonsense", {"id": 1}]\n')
    _spool_file(spool, "00000000000000000005-1-000000.jsonl", b'{"a": [1, 2]}\n')
    (spool / "00000000000000000006-1-000000.jsonl").mkdir()  # not even a file
    engine = make_engine(url)
    writer = StoreWriter(engine, spool, retry_seconds=0.05)
    with structlog.testing.capture_logs() as logs:
        await writer.start()  # never fatal
        one_call(writer, make_record("after.1"))
        assert await writer.sync()
    assert not writer.spool.pending()
    for cid in ("kept.1", "kept.2", "after.1"):  # the torn file's readable line is salvaged
        assert await get_call(engine, cid) is not None, cid
    damaged = [e for e in logs if "hỏng" in e["event"]]
    assert len(damaged) == 5
    assert len(list((spool / "quarantine").iterdir())) == 5
    await writer.stop()
    await engine.dispose()


async def test_a_garbage_file_dropped_into_a_running_spool_does_not_kill_the_writer(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(_upgrade, url)
    spool = tmp_path / "spool"
    engine = make_engine(url)
    writer = StoreWriter(engine, spool, retry_seconds=0.05)
    await writer.start()
    _spool_file(spool, "00000000000000000001-1-000000.jsonl", b"[[[[\n")
    for i in range(30):
        one_call(writer, make_record(f"c.{i}"))
    assert await asyncio.wait_for(writer.sync(), 60)
    assert writer._task is not None
    assert not writer._task.done()
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(Call)) == 30
    await writer.stop()
    await engine.dispose()


def _row(cid: str) -> dict[str, object]:
    from ivr.store.rows import call_row

    return call_row(make_record(cid))


def _upgrade(url: str) -> None:
    from ivr.store.db import upgrade

    upgrade(url)


# --- row 12: two controllers migrating a fresh database at once ------------------------------


async def _upgrade_in_processes(url: str, count: int) -> list[int]:
    code = "import sys; from ivr.store.db import upgrade; upgrade(sys.argv[1])"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            url,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    return [await asyncio.wait_for(p.wait(), 120) for p in procs]


async def test_concurrent_upgrades_of_a_fresh_postgresql_database_all_succeed(
    pg_server: PgServer | None,
) -> None:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed")
    for attempt in range(2):
        url = await pg_server.create_database(f"ivr_race_{os.getpid()}_{attempt}")
        assert await _upgrade_in_processes(url, 4) == [0, 0, 0, 0]
        await asyncio.to_thread(check, url)


async def test_concurrent_upgrades_of_a_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    for attempt in range(2):
        url = sqlite_url(tmp_path / str(attempt))
        assert await _upgrade_in_processes(url, 4) == [0, 0, 0, 0]
        await asyncio.to_thread(check, url)
        engine = make_engine(url)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await engine.dispose()
        assert {"calls", "call_steps", "voicemails"} <= tables
