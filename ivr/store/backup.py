"""`ivr db backup`: a consistent copy of a SQLite store, taken while the hotline runs.

SQLite's online backup copies the database as one read transaction saw it: writers (`ivr run`,
`ivr web`) go on meanwhile, and the copy holds every transaction committed before it began and
none after, so calls, their rollups and the cases agree in it. The copy is written beside the
target (``.partial``), checked (``PRAGMA integrity_check``), flushed to disk, and only then given
the target's name; an existing file is never overwritten, and no one but its owner and group
can read it. Restoring is copying it back while nothing runs (README).

PostgreSQL has its own tool for this (``pg_dump``); the voicemails' audio files are not in the
database at all (``recordings_dir``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

COUNTED = ("calls", "voicemails", "cases", "web_users")  # what the command says the copy holds


class BackupFailed(Exception):
    """The copy could not be made or did not check out; nothing was left at the target."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size_bytes: int
    revision: str  # the schema's (alembic), as `ivr db upgrade` left it
    counts: dict[str, int]


def backup_sqlite(source: Path, target: Path) -> Backup:
    """Copy the SQLite store ``source`` to ``target`` (FileExistsError if it exists)."""
    if target.exists():
        raise FileExistsError(target)
    partial = target.with_name(target.name + ".partial")
    try:
        revision, counts = _copy(source, partial)
        _fsync(partial)
        os.link(partial, target)  # atomic, and never over a file that appeared meanwhile
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    partial.unlink()
    _fsync(target.parent)  # the new name, and the partial's gone, on disk too
    return Backup(target, target.stat().st_size, revision, counts)


def _copy(source: Path, partial: Path) -> tuple[str, dict[str, int]]:
    partial.unlink(missing_ok=True)  # a copy an earlier attempt left half made
    # made first, readable to the owner and group only: the copy holds callers' numbers (an
    # empty file is an empty database to SQLite)
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640))
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # in one step: the database as one read transaction saw it
            checked = dst.execute("PRAGMA integrity_check").fetchall()
            if checked != [("ok",)]:
                raise BackupFailed(f"bản sao không toàn vẹn: {checked[0][0]}")
            row = dst.execute("SELECT version_num FROM alembic_version").fetchone()
            counts = {
                t: int(dst.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in COUNTED
            }
            return (str(row[0]) if row else "", counts)
        finally:
            dst.close()
    finally:
        src.close()


def _fsync(path: Path) -> None:
    """A file's bytes, or a folder's entries, on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
