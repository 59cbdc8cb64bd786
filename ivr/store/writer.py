"""The writer: off the call's path, batched, durable, idempotent.

Calls hand records over with non-blocking methods (it is a :class:`CallObserver`); a background
task writes them in batches. When the database fails, batches go to the spool and are replayed in
order once it answers again; every write is keyed (call id, step number), so a replay never
writes twice. When even the spool cannot be written, the writer says so loudly (an error log and
the `ivr_store_spool_failures_total` metric), keeps the batch in memory, and calls go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.flow.record import CallRecord, Step
from ivr.store.rows import Op, call_row, final_ops, step_row
from ivr.store.spool import Spool, SpoolError
from models import Call, CallStep, Voicemail

log = structlog.get_logger("ivr.store")

ROWS_WRITTEN = Counter("ivr_store_rows_written_total", "Rows written to the call-record store")
BATCHES_SPOOLED = Counter("ivr_store_batches_spooled_total", "Batches kept in the local spool")
SPOOL_FAILURES = Counter("ivr_store_spool_failures_total", "Batches the spool could not keep")
QUEUED = Gauge("ivr_store_queued_ops", "Records waiting for the writer")

_TABLES: dict[str, Table] = {
    "call": Call.__table__,  # type: ignore[dict-item]
    "step": CallStep.__table__,  # type: ignore[dict-item]
    "voicemail": Voicemail.__table__,  # type: ignore[dict-item]
}
_KEYS = {"call": ["id"], "step": ["call_id", "seq"], "voicemail": ["call_id"]}


class StoreWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        spool_dir: Path,
        *,
        batch_size: int = 500,
        queue_size: int = 50_000,
        retry_seconds: float = 2.0,
    ) -> None:
        self.engine = engine
        self.spool = Spool(spool_dir)
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self._queue: asyncio.Queue[Op] = asyncio.Queue(maxsize=queue_size)
        self._overflow: deque[Op] = deque()  # the queue was full: next in line, still in order
        self._limbo: list[list[Op]] = []  # neither the database nor the spool took these
        self._seq: dict[str, int] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._replaying = asyncio.Lock()
        self.spool_failed = asyncio.Event()  # set once the spool refused a batch
        self.database_ok = True

    # --- CallObserver: never blocks, never raises -------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        self._seq[record.channel_id] = 0
        self._put(("call", call_row(record)))

    def call_step(self, channel_id: str, step: Step) -> None:
        seq = self._seq.get(channel_id, 0)
        self._seq[channel_id] = seq + 1
        self._put(("step", step_row(channel_id, seq, step)))

    def call_ended(self, record: CallRecord) -> None:
        self._seq.pop(record.channel_id, None)
        for op in final_ops(record):
            self._put(op)

    def call_cause(self, channel_id: str, cause: int, text: str) -> None:
        """The caller channel's hang-up cause, as AMI reported it after the call."""
        self._put(
            ("cause", {"id": channel_id, "hangup_cause": cause, "hangup_cause_text": text[:64]})
        )

    def _put(self, op: Op) -> None:
        self._idle.clear()
        if self._overflow:
            self._overflow.append(op)
            return
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            self._overflow.append(op)
        QUEUED.set(self._queue.qsize() + len(self._overflow))

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay what an earlier run left in the spool, close its unfinished calls, then run."""
        await self._replay()
        if not self.spool.pending():
            await mark_interrupted(self.engine)
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def drain(self) -> None:
        """Until everything handed over so far is in the database or the spool."""
        await self._idle.wait()

    async def stop(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            log.error(
                "stopping with call records neither in the database nor in the spool",
                batches_in_memory=len(self._limbo),
                queued=self._queue.qsize(),
            )
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._deliver(batch)
            elif self.spool.pending() or self._limbo:
                await self._replay()
            if self._queue.empty() and not self._overflow and not self._limbo:
                self._idle.set()

    async def _next_batch(self) -> list[Op]:
        waiting = self.spool.pending() or bool(self._limbo)
        if self._queue.empty() and waiting:
            try:
                first = await asyncio.wait_for(self._queue.get(), self.retry_seconds)
            except TimeoutError:
                return []
        else:
            first = await self._queue.get()
        batch = [first]
        while len(batch) < self.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        while self._overflow and not self._queue.full():
            self._queue.put_nowait(self._overflow.popleft())
        QUEUED.set(self._queue.qsize() + len(self._overflow))
        return batch

    async def _deliver(self, batch: list[Op]) -> None:
        if self.spool.pending() or self._limbo:  # keep the order: older batches go first
            self._keep(batch)
            await self._replay()
            return
        try:
            await write_ops(self.engine, batch)
            self._healthy()
        except (SQLAlchemyError, OSError) as e:
            self._failed(e)
            self._keep(batch)

    def held_in_memory(self) -> int:
        """Records neither the database nor the spool has taken (kept until one does)."""
        return sum(len(b) for b in self._limbo)

    async def sync(self) -> bool:
        """Drain, then replay the spool now; True when everything is in the database."""
        await self.drain()
        await self._replay()
        return not self.spool.pending() and not self._limbo

    async def _replay(self) -> None:
        async with self._replaying:
            await self._replay_locked()

    async def _replay_locked(self) -> None:
        while self._limbo:
            try:
                self.spool.append(self._limbo[0])
                self._limbo.pop(0)
            except SpoolError:
                break
        for path in self.spool.batches():
            try:
                ops = self.spool.read(path)
                await write_ops(self.engine, ops)
            except (SQLAlchemyError, OSError) as e:
                self._failed(e)
                return
            path.unlink()
            self._healthy()
        for batch in list(self._limbo):  # the spool is unwritable: straight from memory
            try:
                await write_ops(self.engine, batch)
            except (SQLAlchemyError, OSError) as e:
                self._failed(e)
                return
            self._limbo.remove(batch)
            self._healthy()

    def _keep(self, batch: list[Op]) -> None:
        try:
            self.spool.append(batch)
            BATCHES_SPOOLED.inc()
        except SpoolError as e:
            SPOOL_FAILURES.inc()
            self.spool_failed.set()
            self._limbo.append(batch)
            log.error(
                "SPOOL UNWRITABLE: call records held in memory only",
                error=str(e),
                batches_in_memory=len(self._limbo),
            )

    def _failed(self, e: Exception) -> None:
        if self.database_ok:
            log.error("call-record database unavailable; spooling", error=str(e).splitlines()[0])
        self.database_ok = False

    def _healthy(self) -> None:
        if not self.database_ok:
            log.info("call-record database back; spool replayed")
        self.database_ok = True


async def write_ops(engine: AsyncEngine, ops: Iterable[Op]) -> None:
    """Write one batch in one transaction; idempotent, so a batch may be written again."""
    grouped: dict[str, list[dict[str, Any]]] = {
        "call": [],
        "step": [],
        "voicemail": [],
        "cause": [],
    }
    calls: dict[str, dict[str, Any]] = {}
    for kind, row in ops:
        if kind == "call":
            calls[row["id"]] = row  # a later version of the same call supersedes
        else:
            grouped[kind].append(row)
    grouped["call"] = list(calls.values())
    async with engine.begin() as conn:
        for kind in ("call", "step", "voicemail"):
            if grouped[kind]:
                await _upsert(conn, kind, grouped[kind])
        for row in grouped["cause"]:  # a call AMI reports that we never had is no one's
            await conn.execute(
                update(Call)
                .where(Call.id == row["id"])
                .values(
                    hangup_cause=row["hangup_cause"], hangup_cause_text=row["hangup_cause_text"]
                )
            )
    ROWS_WRITTEN.inc(sum(len(v) for v in grouped.values()))


async def _upsert(conn: AsyncConnection, kind: str, rows: list[dict[str, Any]]) -> None:
    table = _TABLES[kind]
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt: Any = insert(table)
    if kind == "call":
        excluded = stmt.excluded
        cols = {c.name: excluded[c.name] for c in table.columns if c.name != "id"}
        # a finished call is never reopened by a late "in progress" version of itself
        stmt = stmt.on_conflict_do_update(
            index_elements=_KEYS[kind],
            set_=cols,
            where=or_(table.c.disposition == "in_progress", excluded.disposition != "in_progress"),
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=_KEYS[kind])
    await conn.execute(stmt, rows)


async def mark_interrupted(engine: AsyncEngine) -> int:
    """Calls left in progress by a controller that stopped: closed as interrupted."""
    last_step = select(func.max(CallStep.at)).where(CallStep.call_id == Call.id).scalar_subquery()
    stmt = (
        update(Call)
        .where(and_(Call.disposition == "in_progress"))
        .values(disposition="interrupted", ended_at=func.coalesce(last_step, Call.started_at))
    )
    async with engine.begin() as conn:
        result = await conn.execute(stmt)
    count = int(result.rowcount or 0)
    if count:
        log.warning("calls left in progress by an earlier run marked interrupted", calls=count)
    return count
