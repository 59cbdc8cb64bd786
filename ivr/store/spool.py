"""A durable local spool: batches the database could not take, replayed in order later.

Beside the batches, ``quarantine/`` keeps what must not go back in line: damaged spool files (as
they were found) and records the database refused (in the spool's own format, so an
administrator can move such a file back into the spool once the cause is fixed).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

from ivr.store.rows import Op, dumps, salvage


class SpoolError(Exception):
    """The spool folder cannot be written (read-only, full, missing permissions)."""


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.quarantine = folder / "quarantine"
        self._seq = itertools.count()
        self._skipped: set[Path] = set()

    def append(self, ops: list[Op]) -> Path:
        """Write one batch durably (fsync) under a name that sorts in arrival order."""
        return self._write(self._new_name(self.folder), ops)

    def set_aside_records(self, ops: list[Op]) -> Path:
        """Keep records the database refused in quarantine/, out of the line."""
        return self._write(self._new_name(self.quarantine), ops)

    def set_aside_file(self, path: Path) -> Path:
        """Move a damaged spool file to quarantine/, as it was (OSError if it cannot be)."""
        self.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.quarantine / f"{path.name}.damaged"
        path.rename(target)
        return target

    def rewrite(self, path: Path, ops: list[Op]) -> None:
        """Replace a batch with ``ops`` in place, keeping its turn in the line."""
        self._write(path, ops)

    def batches(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.glob("*.jsonl") if p not in self._skipped)
        except OSError:
            return []

    def skip(self, path: Path) -> None:
        """Leave a file this run can neither replay nor move out of the way."""
        self._skipped.add(path)

    def pending(self) -> bool:
        return bool(self.batches())

    @staticmethod
    def read(path: Path) -> tuple[list[Op], int]:
        """A batch's readable records and how many of its lines are damaged (OSError: none)."""
        return salvage(path.read_bytes())

    def _new_name(self, folder: Path) -> Path:
        return folder / f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.jsonl"

    def _write(self, path: Path, ops: list[Op]) -> Path:
        tmp = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(dumps(ops))
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SpoolError(
                f"không ghi được vào thư mục dự phòng {path.parent}: {e.strerror}"
            ) from e
        return path
