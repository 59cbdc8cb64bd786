"""The backlog: call records the database has not taken yet, kept and replayed in order.

Batches wait in the spool (:mod:`ivr.store.spool`); when even the spool cannot be written they
are held in memory ("limbo") and written straight from there once the database answers. Replay
keeps the order: held batches go to the spool first, then every spooled file in turn. A damaged
spool file is moved to ``quarantine/`` with a log line and its readable records replayed in its
place; a record the database refuses is quarantined by itself (:meth:`Backlog.quarantine`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from prometheus_client import Counter

from ivr.store.rows import Op, dumps
from ivr.store.spool import Spool, SpoolError

log = structlog.get_logger("ivr.store")

BATCHES_SPOOLED = Counter("ivr_store_batches_spooled_total", "Batches kept in the local spool")
SPOOL_FAILURES = Counter("ivr_store_spool_failures_total", "Batches the spool could not keep")
QUARANTINED = Counter(
    "ivr_store_quarantined_total", "Records the database refused, set aside in quarantine/"
)
DAMAGED_FILES = Counter("ivr_store_damaged_spool_files_total", "Spool files moved to quarantine/")

Write = Callable[[list[Op]], Awaitable[bool]]  # False: the database is away, keep the batch


class Backlog:
    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.limbo: list[list[Op]] = []  # neither the database nor the spool took these
        self.spool_failed = asyncio.Event()  # set once the spool refused a batch
        self._replaying = asyncio.Lock()

    def spooled(self) -> bool:
        return bool(self.spool.batches())

    def waiting(self) -> bool:
        """Older batches wait: a new one must queue behind them."""
        return self.spooled() or bool(self.limbo)

    def held_in_memory(self) -> int:
        return sum(len(b) for b in self.limbo)

    def keep(self, batch: list[Op]) -> None:
        """Into the spool; in memory when the spool refuses it (said loudly, calls go on)."""
        try:
            self.spool.append(batch)
            BATCHES_SPOOLED.inc()
        except Exception as e:  # SpoolError, or a record that cannot be serialised
            SPOOL_FAILURES.inc()
            self.spool_failed.set()
            self.limbo.append(batch)
            log.error(
                "SPOOL UNWRITABLE: call records held in memory only",
                error=str(e),
                batches_in_memory=len(self.limbo),
            )

    def quarantine(self, ops: list[Op], e: Exception) -> None:
        """Records the database refused: out of the line, into quarantine/, logged."""
        QUARANTINED.inc(len(ops))
        kind, row = ops[0]
        call = row.get("id", row.get("call_id"))
        error = first_line(e)
        try:
            where = str(self.spool.set_aside_records(ops))
        except SpoolError as se:
            SPOOL_FAILURES.inc()
            log.error(
                "bản ghi bị cơ sở dữ liệu từ chối, không cách ly được: ghi lại nguyên văn tại đây",
                kind=kind, call=call, error=error, spool_error=str(se), record=dumps(ops),
            )  # fmt: skip
            return
        log.error(
            "bản ghi bị cơ sở dữ liệu từ chối, đã cách ly; các bản ghi sau vẫn được ghi",
            kind=kind, call=call, error=error, file=where,
        )  # fmt: skip

    async def replay(self, write: Write) -> None:
        """Write what waits, oldest first; stop at the first outage (the rest stays kept)."""
        async with self._replaying:
            await self._replay(write)

    async def _replay(self, write: Write) -> None:
        while self.limbo:
            try:
                self.spool.append(self.limbo[0])
                self.limbo.pop(0)
            except SpoolError:
                break
        for path in self.spool.batches():
            ops = self._read_batch(path)
            if ops is None:
                continue
            if not await write(ops):
                return
            self._done_with(path)
        for batch in list(self.limbo):  # the spool is unwritable: straight from memory
            if not await write(batch):
                return
            self.limbo.remove(batch)

    def _read_batch(self, path: Path) -> list[Op] | None:
        """A spooled batch's records; a damaged file is set aside, its readable records kept in
        its place (same name, same turn). None when there is nothing to write from it now."""
        try:
            ops, damaged = self.spool.read(path)
        except OSError as e:
            self._set_aside(path, f"không đọc được: {e.strerror}")
            return None
        if not damaged:
            return ops
        if not self._set_aside(path, f"{damaged} dòng hỏng, {len(ops)} bản ghi đọc được"):
            return None
        if not ops:
            return None
        try:
            self.spool.rewrite(path, ops)
        except SpoolError:
            self.limbo.insert(0, ops)
            return None
        return ops

    def _set_aside(self, path: Path, why: str) -> bool:
        DAMAGED_FILES.inc()
        try:
            where = self.spool.set_aside_file(path)
        except OSError as e:
            self.spool.skip(path)
            log.error(
                "tệp dự phòng hỏng, không chuyển đi được: bỏ qua trong lần chạy này",
                file=str(path), why=why, error=e.strerror,
            )  # fmt: skip
            return False
        log.error("tệp dự phòng hỏng, đã chuyển vào thư mục cách ly", file=str(where), why=why)
        return True

    def _done_with(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            self.spool.skip(path)  # written already: replaying it again would change nothing
            log.error("không xoá được tệp dự phòng đã ghi", file=str(path), error=e.strerror)


def first_line(e: BaseException) -> str:
    lines = str(e).splitlines()
    return lines[0] if lines else type(e).__name__
