"""A durable local spool: batches the database could not take, replayed in order later."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

from ivr.store.rows import Op, dumps, loads


class SpoolError(Exception):
    """The spool folder cannot be written (read-only, full, missing permissions)."""


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = itertools.count()

    def append(self, ops: list[Op]) -> Path:
        """Write one batch durably (fsync) under a name that sorts in arrival order."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.jsonl"
        path = self.folder / name
        tmp = path.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(dumps(ops))
                f.flush()
                os.fsync(f.fileno())
            tmp.rename(path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SpoolError(
                f"không ghi được vào thư mục dự phòng {self.folder}: {e.strerror}"
            ) from e
        return path

    def batches(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("*.jsonl"))
        except OSError:
            return []

    def pending(self) -> bool:
        return bool(self.batches())

    @staticmethod
    def read(path: Path) -> list[Op]:
        return loads(path.read_text(encoding="utf-8"))
