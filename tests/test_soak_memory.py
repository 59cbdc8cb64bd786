"""The writer gives the memory its batches freed back to the system (issue 16, the soak's
resident memory creeping up at constant load; ivr.store.memory says why)."""

from __future__ import annotations

import asyncio
import platform
from pathlib import Path

import pytest

from ivr.store import memory
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter


async def _writer(tmp_path: Path, trims: list[int], every: float) -> StoreWriter:
    await asyncio.to_thread(upgrade, sqlite_url(tmp_path))
    writer = StoreWriter(
        make_engine(sqlite_url(tmp_path)),
        tmp_path / "spool",
        linger_seconds=0,
        trim=lambda: trims.append(1),
        trim_seconds=every,
    )
    await writer.start()
    return writer


async def test_freed_memory_is_given_back_after_batches(tmp_path: Path) -> None:
    trims: list[int] = []
    writer = await _writer(tmp_path, trims, every=0.0)
    for n in range(3):  # three batches, each drained before the next is handed over
        writer.call_cause(f"no-such-channel-{n}", 16, "Normal Clearing")
        await asyncio.wait_for(writer.drain(), 30)
    await writer.stop()
    await writer.engine.dispose()
    assert len(trims) == 3


async def test_not_more_often_than_asked(tmp_path: Path) -> None:
    trims: list[int] = []
    writer = await _writer(tmp_path, trims, every=3600.0)
    for n in range(3):
        writer.call_cause(f"no-such-channel-{n}", 16, "Normal Clearing")
        await asyncio.wait_for(writer.drain(), 30)
    await writer.stop()
    await writer.engine.dispose()
    assert trims == []


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_trim_is_found_and_runs() -> None:
    assert memory.TRIM is not None
    memory.release_free_memory()
