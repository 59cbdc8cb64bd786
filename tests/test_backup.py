"""`ivr db backup`: a copy of the SQLite store taken while calls are being written is a whole,
current store (its rollups equal a recount of its calls); it never overwrites, never creates,
and says what to use for PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr.cli import main
from ivr.store.db import make_engine, require_current, sqlite_url, upgrade
from ivr.store.rollups import rebuild
from ivr.store.writer import StoreWriter
from models import Call

from .conftest import rollup_rows
from .test_store_hardening import make_record, one_call


async def test_a_copy_taken_while_calls_are_written_is_a_whole_current_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = tmp_path / "live"
    url = sqlite_url(live)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool", linger_seconds=0)
    await writer.start()
    for i in range(40):
        one_call(writer, make_record(f"before.{i}"))
    assert await writer.sync()
    capsys.readouterr()
    copy = tmp_path / "copy.db"
    backup = asyncio.create_task(asyncio.to_thread(main, ["db", "backup", str(copy), "--db", url]))
    n = 0
    while not backup.done():  # calls keep coming while the copy is made
        one_call(writer, make_record(f"during.{n}"))
        n += 1
        await writer.drain()
    assert await backup == 0
    out, _ = capsys.readouterr()
    await writer.stop()
    await engine.dispose()
    copied_url = f"sqlite+aiosqlite:///{copy}"
    copied = make_engine(copied_url)
    await require_current(copied)  # a store at the schema's revision: usable as it is
    async with copied.connect() as conn:
        calls = await conn.scalar(select(func.count()).select_from(Call))
    assert calls is not None
    assert 40 <= calls <= 40 + n
    assert f"{calls} cuộc gọi" in out
    kept = await rollup_rows(copied_url)
    assert await rebuild(copied) == calls
    await copied.dispose()
    assert await rollup_rows(copied_url) == kept  # one moment's calls, rollups and all
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.partial")))
    assert copy.stat().st_mode & 0o007 == 0  # callers' numbers: no one else reads the copy


def test_an_existing_file_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqlite_url(tmp_path)
    upgrade(url)
    target = tmp_path / "keep.db"
    target.write_bytes(b"last week's copy")
    assert main(["db", "backup", str(target), "--db", url]) == 2
    assert "đã có tệp" in capsys.readouterr().err
    assert target.read_bytes() == b"last week's copy"


def test_a_folder_that_is_not_there_fails_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqlite_url(tmp_path)
    upgrade(url)
    target = tmp_path / "no-such-folder" / "copy.db"
    assert main(["db", "backup", str(target), "--db", url]) == 1
    assert "không sao lưu được vào" in capsys.readouterr().err
    assert not target.parent.exists()


def test_a_missing_store_is_not_created_to_be_copied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqlite_url(tmp_path / "nothing")
    assert main(["db", "backup", str(tmp_path / "copy.db"), "--db", url]) == 2
    assert "ivr db upgrade" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()
    assert not (tmp_path / "copy.db").exists()


def test_postgresql_is_sent_to_pg_dump_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://ivr:secret@127.0.0.1:5432/hotline"
    assert main(["db", "backup", str(tmp_path / "x.dump"), "--db", url]) == 2
    err = capsys.readouterr().err
    assert "pg_dump --format=custom" in err
    assert "secret" not in err
