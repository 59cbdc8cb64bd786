"""cel_custom's CSV file → the ``cel`` table, incrementally and exactly once.

Where reading stopped (the file's inode and the byte offset after the last whole line) is kept
in ``reconcile_state``, committed in the same transaction as the lines it covers: a restart
resumes there, nothing is read twice or skipped. When the file is replaced (rotated: another
inode) the rest of the old file is read first if it is still beside it under another name; when
it was cut shorter (truncated in place), reading starts again at its beginning. A line that is
not ours is logged and skipped, never stops the lines after it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.store.reconcile.cel import CelLineError, row_of
from models import CelEvent as CelRow
from models import ReconcileState

log = structlog.get_logger("ivr.reconcile")

CHUNK = 1 << 20  # bytes read per transaction
_INSERT = insert(CelRow.__table__)  # type: ignore[arg-type]


async def ingest(engine: AsyncEngine, path: Path) -> int:
    """Copy the file's new lines into ``cel``; returns how many events were added."""
    source = f"file:{path}"
    added = 0
    while True:
        async with engine.begin() as conn:
            inode, offset = await _position(conn, source)
            current = _inode(path)
            if current == 0:
                return added  # no file yet: Asterisk creates it at its first event
            if inode and inode != current:  # rotated: finish the old file first
                old = _find_inode(path, inode)
                used, count = (0, 0) if old is None else await _copy(conn, old, offset)
                if old is None:
                    log.warning("tệp CEL đã bị thay, phần cuối tệp cũ không còn", file=str(path))
                await save_state(conn, source, *((inode, offset + used) if used else (current, 0)))
                added += count
                continue
            if _size(path) < offset:
                log.warning("tệp CEL bị cắt ngắn, đọc lại từ đầu", file=str(path))
                offset = 0
            used, count = await _copy(conn, path, offset)
            await save_state(conn, source, current, offset + used)
            added += count
            if not used:
                return added


async def _copy(conn: AsyncConnection, path: Path, offset: int) -> tuple[int, int]:
    """Inserts the whole lines after ``offset`` (up to CHUNK bytes): (bytes used, events)."""
    lines, used = _whole_lines(_read(path, offset))
    rows = _parse(lines, path)
    if rows:
        await conn.execute(_INSERT, rows)
    return used, len(rows)


def _size(path: Path) -> int:
    return path.stat().st_size


def _read(path: Path, offset: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(CHUNK)


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return 0


def _find_inode(path: Path, inode: int) -> Path | None:
    """The rotated file (hotline.csv.1, hotline.csv-20261126...) beside ``path``."""
    for sibling in path.parent.glob(path.name + "*"):
        if sibling != path and _inode(sibling) == inode:
            return sibling
    return None


def _whole_lines(data: bytes) -> tuple[list[bytes], int]:
    """The complete lines (a line still being written waits for the next pass)."""
    end = data.rfind(b"\n")
    if end < 0:
        return [], 0
    return data[:end].split(b"\n"), end + 1


def _parse(lines: list[bytes], where: Path) -> list[dict[str, Any]]:
    """The lines as rows of ``cel``; a line that is not ours is logged and left out."""
    rows = []
    for raw in lines:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text:
            continue
        try:
            rows.append(row_of(text))
        except CelLineError as e:
            log.warning("bỏ qua dòng CEL", file=str(where), error=str(e), line=text[:200])
    return rows


async def _position(conn: AsyncConnection, source: str) -> tuple[int, int]:
    row = (
        await conn.execute(
            select(ReconcileState.inode, ReconcileState.offset).where(
                ReconcileState.source == source
            )
        )
    ).one_or_none()
    return (row.inode, row.offset) if row else (0, 0)


async def save_state(conn: AsyncConnection, source: str, inode: int, offset: int) -> None:
    values = {"inode": inode, "offset": offset, "updated_at": dt.datetime.now(dt.UTC)}
    result = await conn.execute(
        ReconcileState.__table__.update()  # type: ignore[attr-defined]
        .where(ReconcileState.source == source)
        .values(values)
    )
    if not result.rowcount:
        await conn.execute(insert(ReconcileState).values(source=source, **values))
