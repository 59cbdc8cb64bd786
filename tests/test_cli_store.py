"""`ivr db`, `ivr calls`, `ivr voicemails` as a supervisor and a clerk use them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.cli.store import parse_age
from ivr.flow.engine import run_call
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import FakeSession
from ivr.sim.scripts import ClerkKind
from ivr.store.db import make_engine, sqlite_url
from ivr.store.queries import mask_number
from ivr.store.writer import StoreWriter

from .conftest import vn_time


async def _fill(
    url: str, routing: Routing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    ids = []
    plan = [
        ("0912345678", ["4"], ClerkKind.ANSWER, "2025-11-25 09:00"),
        ("0987654321", ["6"], ClerkKind.BUSY, "2025-11-25 10:00"),
        ("0355000111", ["#", "", ""], ClerkKind.ANSWER, "2025-11-26 09:00"),
    ]
    for i, (number, keys, clerk, at) in enumerate(plan):
        session = FakeSession(
            CallInfo(f"cli.{i}", number), inputs=keys, default_clerk=clerk, voicemail_seconds=5
        )
        when = vn_time(at)
        await run_call(session, routing, writer, clock=lambda when=when: when)
        ids.append(f"cli.{i}")
    assert await writer.sync()
    await writer.stop()
    await engine.dispose()
    capsys.readouterr()  # the calls' own log lines are not the commands' output
    return ids


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_calls_list_filter_show_and_mask(
    db_url: str, routing: Routing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await _fill(db_url, routing, tmp_path, capsys)
    code, out, _ = await _in_thread(capsys, "calls", "--db", db_url)
    assert code == 0
    assert "(3 cuộc gọi)" in out
    assert "Người gọi" in out  # Vietnamese headings, diacritics intact
    code, out, _ = await _in_thread(
        capsys,
        "calls",
        "--db",
        db_url,
        "--from",
        "2025-11-25",
        "--to",
        "2025-11-25",
        "--json",
        "--mask",
    )
    rows = json.loads(out)
    assert {r["id"] for r in rows} == set(ids[:2])
    assert {r["caller_number"] for r in rows} == {"0912***678", "0987***321"}
    code, out, _ = await _in_thread(capsys, "calls", "--db", db_url, "--branch", "6")
    assert "voicemail" in out
    assert "0987654321" in out
    code, out, _ = await _in_thread(capsys, "calls", "show", ids[1], "--db", db_url)
    assert code == 0
    assert "đường đi: start → greeting → main-menu → branch-6 → vm-6 → goodbye" in out
    assert "lời nhắn #" in out
    code, _, err = await _in_thread(capsys, "calls", "show", "nope", "--db", db_url)
    assert code == 1
    assert "không có cuộc gọi nope" in err


async def test_voicemails_and_marking(
    db_url: str, routing: Routing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _fill(db_url, routing, tmp_path, capsys)
    code, out, _ = await _in_thread(capsys, "voicemails", "--db", db_url, "--json")
    (vm,) = json.loads(out)
    assert vm["status"] == "new"
    assert vm["branch"] == "6"
    code, out, _ = await _in_thread(
        capsys,
        "voicemails",
        "mark",
        str(vm["id"]),
        "handled",
        "--by",
        "Nguyễn Thị Lan",
        "--db",
        db_url,
    )
    assert code == 0
    code, out, _ = await _in_thread(capsys, "voicemails", "--db", db_url, "--json")
    (vm,) = json.loads(out)
    assert vm["status"] == "handled"
    assert vm["status_by"] == "Nguyễn Thị Lan"


async def test_purge_removes_old_calls(
    db_url: str, routing: Routing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _fill(db_url, routing, tmp_path, capsys)
    code, out, _ = await _in_thread(capsys, "db", "purge", "--older-than", "1d", "--db", db_url)
    assert code == 0
    assert "đã xoá 3 cuộc gọi" in out
    code, out, _ = await _in_thread(capsys, "calls", "--db", db_url)
    assert "(0 cuộc gọi)" in out


async def _in_thread(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    import asyncio

    return await asyncio.to_thread(run, capsys, *args)


def test_upgrade_and_bad_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    code, out, _ = run(capsys, "db", "upgrade", "--db", url)
    assert code == 0
    assert "phiên bản mới nhất" in out
    code, _, err = run(capsys, "calls", "--db", sqlite_url(tmp_path / "empty"))
    assert code == 2  # a missing database is a configuration error, and none is created
    assert "ivr db upgrade" in err
    assert not (tmp_path / "empty").exists()
    code, _, err = run(capsys, "db", "purge", "--older-than", "soon", "--db", url)
    assert code == 2
    assert "2y (năm)" in err


def test_age_and_masking() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    assert parse_age("2y", now) == now - dt.timedelta(days=730)
    assert parse_age("90d", now) == now - dt.timedelta(days=90)
    assert mask_number("0912345678") == "0912***678"
    assert mask_number("1022") == "****"
