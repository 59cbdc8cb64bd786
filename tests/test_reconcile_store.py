"""Reconciliation into the store, on SQLite and PostgreSQL: the captured CEL file
(tests/data/cel_hotline.csv) read incrementally, across restarts, rotation and truncation, gives
each call one row; calls a controller recorded are left alone; running again changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.config import load_settings
from ivr.metrics import RECONCILE_LAG
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.reconcile.cel import parse_line
from ivr.store.reconcile.facts import fold
from ivr.store.reconcile.task import Reconciler
from ivr.store.reconcile.write import fallback_row
from ivr.store.sql import write_ops
from models import Call, CelEvent

from .conftest import ROOT

DATA = Path(__file__).parent / "data" / "cel_hotline.csv"
LINES = DATA.read_text(encoding="utf-8").splitlines(keepends=True)
FALLBACK = "02:fc:00:00:00:01/1795665290.40"
CONTROLLED = "02:fc:00:00:00:01/1795665329.71"
LATER = 1795665400.0  # after every call of the file ended


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    e = make_engine(db_url, create=False)
    yield e
    await e.dispose()


async def rows(engine: AsyncEngine) -> dict[str, tuple[str, str]]:
    async with engine.connect() as conn:
        found = await conn.execute(select(Call.id, Call.disposition, Call.controller))
        return {r.id: (r.disposition, r.controller) for r in found}


async def cel_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(CelEvent)) or 0)


def reconciler(engine: AsyncEngine, cel: Path, now: float = LATER) -> Reconciler:
    return Reconciler(engine, cel, settle=30, clock=lambda: now)


async def test_each_ended_hotline_call_gets_one_row_and_again_changes_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    cel = tmp_path / "hotline.csv"
    cel.write_text("".join(LINES), encoding="utf-8")
    first = await reconciler(engine, cel).once()
    assert (first.read, first.written) == (40, 2)
    assert await rows(engine) == {FALLBACK: ("fallback", ""), CONTROLLED: ("fallback", "")}
    async with engine.connect() as conn:
        row = (await conn.execute(select(Call).where(Call.id == FALLBACK))).one()
    assert (row.caller_number, row.endpoint, row.hangup_by) == (
        "0911000001",
        "PJSIP/cchc-9a",
        "caller",
    )
    assert row.path == "hotline-inbound>hotline-fallback"
    assert row.answered_at is not None
    assert row.talk_seconds == pytest.approx(2.435, abs=0.001)

    again = await reconciler(engine, cel).once()  # a restart: a new reconciler, same database
    assert (again.read, again.looked_at, again.written) == (0, 0, 0)
    assert await cel_count(engine) == 40
    assert len(await rows(engine)) == 2


async def test_a_call_the_controller_recorded_is_not_duplicated(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Its row exists under its key, or (FastAGI, another node name) under its channel."""
    evs = [parse_line(line.rstrip("\n")) for line in LINES]
    facts = fold([e for e in evs if e.linkedid == "1795665329.71"])
    assert facts is not None
    agi = dataclasses.replace(facts, node="127.0.0.1")
    mine = {**fallback_row(agi), "disposition": "abandoned", "controller": "host:agi"}
    await write_ops(engine, [("call", mine)])
    cel = tmp_path / "hotline.csv"
    cel.write_text("".join(LINES), encoding="utf-8")
    out = await reconciler(engine, cel).once()
    assert out.written == 1
    assert await rows(engine) == {
        "127.0.0.1/1795665329.71": ("abandoned", "host:agi"),
        FALLBACK: ("fallback", ""),
    }


async def test_the_events_of_a_call_recorded_already_are_not_read_again(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Nearly every call is one a controller recorded: a pass finds those in one query for the
    batch, and reads (and folds) the events of the others alone."""
    evs = [parse_line(line.rstrip("\n")) for line in LINES]
    facts = fold([e for e in evs if e.linkedid == "1795665329.71"])
    assert facts is not None
    mine = {**fallback_row(facts), "disposition": "abandoned", "controller": "host:ivr"}
    await write_ops(engine, [("call", mine)])
    events_read: list[object] = []

    def note(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        if "FROM cel" in statement and "cel.linkedid =" in statement:
            events_read.append(params)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        cel = tmp_path / "hotline.csv"
        cel.write_text("".join(LINES), encoding="utf-8")
        out = await reconciler(engine, cel).once()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert (out.looked_at, out.written) == (2, 1)
    assert len(events_read) == 1  # the fallback call's, not the recorded one's
    assert "1795665290.40" in str(events_read[0])
    assert "1795665329.71" not in str(events_read[0])
    assert await rows(engine) == {CONTROLLED: ("abandoned", "host:ivr"), FALLBACK: ("fallback", "")}


async def test_lines_read_as_they_come_count_once(engine: AsyncEngine, tmp_path: Path) -> None:
    """Written in pieces, a line cut in the middle: nothing skipped, nothing twice."""
    cel = tmp_path / "hotline.csv"
    text = "".join(LINES)
    cut = text.index("\n", len(text) // 3) + 20  # inside the next line
    cel.write_text(text[:cut], encoding="utf-8")
    r = reconciler(engine, cel)
    part = await r.once()
    assert part.read == text[:cut].count("\n")
    with cel.open("a", encoding="utf-8") as f:
        f.write(text[cut:])
    rest = await r.once()
    assert part.read + rest.read == 40
    assert part.written + rest.written == 2
    assert await cel_count(engine) == 40


async def test_rotation_reads_the_old_files_end_then_the_new_file(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    cel = tmp_path / "hotline.csv"
    cel.write_text("".join(LINES[:10]), encoding="utf-8")
    r = reconciler(engine, cel)
    assert (await r.once()).read == 10
    with cel.open("a", encoding="utf-8") as f:  # written after our pass, before the rotation
        f.write("".join(LINES[10:25]))
    os.rename(cel, tmp_path / "hotline.csv.1")
    cel.write_text("".join(LINES[25:]), encoding="utf-8")
    out = await r.once()
    assert out.read == 30
    assert await cel_count(engine) == 40
    assert len(await rows(engine)) == 2


async def test_truncated_in_place_reads_from_the_start(engine: AsyncEngine, tmp_path: Path) -> None:
    cel = tmp_path / "hotline.csv"
    cel.write_text("".join(LINES), encoding="utf-8")
    r = reconciler(engine, cel)
    assert (await r.once()).read == 40
    with cel.open("r+", encoding="utf-8") as f:  # logrotate's copytruncate
        f.truncate(0)
    cel.write_text("".join(LINES[:3]), encoding="utf-8")
    assert (await r.once()).read == 3


async def test_a_line_not_ours_is_skipped_and_the_rest_read(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    cel = tmp_path / "hotline.csv"
    cel.write_text('"2026-11-26 10:00:00","CHAN_START"\n' + "".join(LINES), encoding="utf-8")
    assert (await reconciler(engine, cel).once()).read == 40


async def test_a_call_just_ended_waits_and_the_lag_says_so(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    cel = tmp_path / "hotline.csv"
    cel.write_text("".join(LINES), encoding="utf-8")
    ended = 1795665302.075965  # the fallback call's LINKEDID_END
    early = await reconciler(engine, cel, now=ended + 10).once()
    assert early.written == 0
    assert early.lag_seconds == pytest.approx(10, abs=0.01)
    assert RECONCILE_LAG._value.get() == pytest.approx(10, abs=0.01)
    late = await reconciler(engine, cel, now=LATER).once()
    assert (late.written, late.lag_seconds) == (2, 0)
    assert RECONCILE_LAG._value.get() == 0


async def test_without_a_file_the_cel_table_is_read(engine: AsyncEngine) -> None:
    """PostgreSQL sites: cel_pgsql writes the table, the node comes from the settings."""
    evs = [parse_line(line.rstrip("\n")) for line in LINES]
    async with engine.begin() as conn:
        await conn.execute(
            CelEvent.__table__.insert(),  # type: ignore[attr-defined]
            [{**dataclasses.asdict(e), "eid": ""} for e in evs],
        )
    r = Reconciler(engine, None, settle=30, node="pbx-1", clock=lambda: LATER)
    assert (await r.once()).written == 2
    assert set(await rows(engine)) == {"pbx-1/1795665290.40", "pbx-1/1795665329.71"}


async def test_ivr_agi_reconciles_the_cel_file_named_in_the_settings(tmp_path: Path) -> None:
    from ivr.cli import serve

    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    cel = tmp_path / "cel" / "hotline.csv"
    cel.parent.mkdir()
    cel.write_text("".join(LINES), encoding="utf-8")
    config = tmp_path / "ivr.toml"
    config.write_text('cel_file = "cel/hotline.csv"\n')  # relative: to the file's folder
    settings = load_settings(
        config,
        {
            "IVR_DATABASE_URL": url,
            "IVR_METRICS_ADDRESS": "",
            "IVR_ROUTING": str(ROOT / "routing" / "hotline.yaml"),
            "IVR_PROMPTS": str(ROOT / "prompts" / "manifest.yaml"),
            "IVR_SPOOL_DIR": str(tmp_path / "spool"),
        },
        require_ari=False,
    )
    assert settings.cel_path == cel
    agi = asyncio.create_task(serve._agi(settings, "127.0.0.1", 0))
    engine = make_engine(url, create=False)
    try:
        async with asyncio.timeout(60):  # the first pass runs as the server starts
            while await cel_count(engine) < len(LINES):
                assert not agi.done(), agi
                await asyncio.sleep(0.05)
        # what a service manager sends (asyncio's handler is in place: never kill pytest)
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(agi, 60) == 0
        assert await cel_count(engine) == 40
    finally:
        if not agi.done():
            agi.cancel()
            await asyncio.gather(agi, return_exceptions=True)
        await engine.dispose()


def test_db_reconcile_reads_the_cel_file_of_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.cli import main

    url = sqlite_url(tmp_path)
    upgrade(url)
    (tmp_path / "hotline.csv").write_text("".join(LINES), encoding="utf-8")
    config = tmp_path / "ivr.toml"
    config.write_text('cel_file = "hotline.csv"\n')
    assert main(["db", "reconcile", "--db", url, "--config", str(config)]) == 0
    assert "đã đọc 40 sự kiện CEL" in capsys.readouterr().out
    config.write_text('cel_file = "none"\n')  # cel_pgsql's table only: nothing read
    assert main(["db", "reconcile", "--db", url, "--config", str(config)]) == 0
    assert "đã đọc 0 sự kiện CEL" in capsys.readouterr().out
