"""The writer: off the call's path, batched, durable, idempotent.

Calls hand records over with non-blocking methods (it is a :class:`CallObserver`); a background
task writes them in batches. Every write is keyed (call id, step number), so a batch written
twice is stored once. Records arrive already cleaned and cut to their columns (ivr.store.rows).
What waits for the database (the spool, batches held in memory, their replay, the quarantine)
is :mod:`ivr.store.replay`'s; this module decides what goes there.

When a write fails, the rule (ivr.store.errors tells the two kinds apart):

* **An outage** (connection refused or lost, timeout, server gone, database locked or read-only)
  is retried: the batch goes to the spool and batches are replayed in order once the database
  answers again (`ivr_store_batches_spooled_total`).
* **A data error** is one record's fault, never the others': the batch is split in halves until
  the records the database refuses are found, and each is *quarantined*: written to the spool's
  ``quarantine/`` folder, logged, counted in `ivr_store_quarantined_total`. The records behind it
  go on. Cleaning at the edge makes this rare (a step whose call was deleted, a value nobody
  foresaw); the quarantined file can be moved back into the spool once the cause is fixed.
* **A damaged spool file** (torn, garbage, not UTF-8, unreadable) is moved to ``quarantine/``
  with a log line, and its readable records are replayed in its place. Never fatal.
* When even the spool cannot be written, the writer says so loudly (an error log and the
  `ivr_store_spool_failures_total` metric), keeps the batch in memory, and calls go on.
* A bug in the writer's loop is logged and the loop goes on; the batch in hand stays kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.record import CallRecord, Step
from ivr.store.errors import is_conflict, is_data_error
from ivr.store.identity import keyed
from ivr.store.lease import Clock, LeaseKeeper, Owner, default_instance, utc_now
from ivr.store.memory import release_free_memory
from ivr.store.replay import (
    BATCHES_SPOOLED,
    DAMAGED_FILES,
    QUARANTINED,
    SPOOL_FAILURES,
    Backlog,
    first_line,
)
from ivr.store.rows import Op, call_row, cause_row, final_ops, step_row
from ivr.store.spool import Spool
from ivr.store.sql import ROWS_WRITTEN, write_ops

__all__ = [
    "BATCHES_SPOOLED",
    "DAMAGED_FILES",
    "QUARANTINED",
    "ROWS_WRITTEN",
    "SPOOL_FAILURES",
    "StoreWriter",
    "write_ops",
]

log = structlog.get_logger("ivr.store")

QUEUED = Gauge("ivr_store_queued_ops", "Records waiting for the writer")
CONFLICTS = Counter(
    "ivr_store_conflicts_total",
    "Batches written again at once: the database failed them to let another transaction go "
    "on (a deadlock, a serialisation failure), or another stored one of their calls meanwhile",
)
# How often a batch the database failed that way is written again at once; past it, the batch
# waits in the spool like any batch the database did not take.
CONFLICT_RETRIES = 3
# After the first record of a batch, how long the writer waits for more before writing: a
# transaction (with its rollup reads) costs far more than a record in it, and a call's steps
# arrive a few at a time. Cut short by a full batch and by drain() / stop().
LINGER_SECONDS = 0.5
# At most this many records per batch: the writer's work on a batch runs partly on the calls'
# event loop, and a batch of 500 at 300 call set-ups/s held it long enough to show in the set-up
# p99 (benchmarks.calls); at 10 calls/s a 0.5 s batch is about 50 records, far under it.
BATCH_SIZE = 200
TRIM_SECONDS = 30.0  # how often freed memory is given back (ivr.store.memory)


class StoreWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        spool_dir: Path,
        *,
        batch_size: int = BATCH_SIZE,
        queue_size: int = 50_000,
        retry_seconds: float = 2.0,
        linger_seconds: float = LINGER_SECONDS,
        owner: Owner | None = None,
        clock: Clock = utc_now,
        trim: Callable[[], None] = release_free_memory,
        trim_seconds: float = TRIM_SECONDS,
    ) -> None:
        self.engine = engine
        self.owner = owner or Owner.here(default_instance("controller"))
        self.lease = LeaseKeeper(engine, self.owner, clock=clock)
        self.spool = Spool(spool_dir)
        self.backlog = Backlog(self.spool)  # what waits for the database: spool, then memory
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.linger_seconds = linger_seconds
        self._flush = asyncio.Event()  # stop lingering: a batch is full, or someone drains
        self._draining = 0
        self._holding = 0  # 1 while the writer lingers with a batch's first record
        self._queue: asyncio.Queue[Op] = asyncio.Queue(maxsize=queue_size)
        self._overflow: deque[Op] = deque()  # the queue was full: next in line, still in order
        self._seq: dict[str, int] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._working: asyncio.Future[None] | None = None  # the turn's writing (_turn)
        self.spool_failed = self.backlog.spool_failed  # set once the spool refused a batch
        self.database_ok = True
        self._trim = trim
        self.trim_seconds = trim_seconds
        self._trimmed = time.monotonic()

    # --- CallObserver: never blocks, never raises -------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        self._seq[record.key] = 0
        for op in keyed([("call", call_row(record))], record, self.owner.id):
            self._put(op)

    def call_step(self, call_key: str, step: Step) -> None:
        """A step of the call ``call_key`` (its record's key: ivr.flow.record.Identified)."""
        seq = self._seq.get(call_key, 0)
        self._seq[call_key] = seq + 1
        self._put(("step", step_row(call_key, seq, step)))

    def call_ended(self, record: CallRecord) -> None:
        # the steps handed over one by one are queued already, in order, with these numbers:
        # writing them again cost as much as the first time, for rows the database then ignores
        seen = self._seq.pop(record.key, 0)
        for op in keyed(final_ops(record, seen), record, self.owner.id):
            self._put(op)

    def call_cause(self, channel_id: str, cause: int, text: str) -> None:
        """The caller channel's hang-up cause, as AMI reported it: kept unless the call already
        has one (from whichever source came first)."""
        self._put(("cause", cause_row(channel_id, cause, text)))

    def _put(self, op: Op) -> None:
        self._idle.clear()
        if self._overflow:
            self._overflow.append(op)
            return
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            self._overflow.append(op)
        queued = self._queue.qsize()
        if queued + self._holding >= self.batch_size:  # a full batch: no more lingering
            self._flush.set()
        QUEUED.set(queued + len(self._overflow))

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Take this controller's lease (LeaseConflict if a live process holds it), replay what
        an earlier run left in the spool, close its unfinished calls and those of controllers
        whose lease has expired, then run (renewing the lease, sweeping dead owners' calls)."""
        await self.lease.start()
        await self._replay()
        if not self._spooled():
            await self.lease.close_previous_life()
        self._task = asyncio.create_task(self._run(), name="store-writer")
        self._lease_task = asyncio.create_task(self.lease.run(), name="store-lease")

    async def drain(self) -> None:
        """Until everything handed over so far is in the database or the spool."""
        self._draining += 1  # no lingering while someone waits
        self._flush.set()
        try:
            await self._idle.wait()
        finally:
            self._draining -= 1

    async def stop(self, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            log.error(
                "stopping with call records neither in the database nor in the spool",
                batches_in_memory=len(self.backlog.limbo),
                queued=self._queue.qsize(),
            )
        for task in (self._task, self._lease_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(TimeoutError):  # a write or a lease tick in flight ends first
            await asyncio.wait_for(self._settled(), timeout)
        if self._lease_task is not None and not self.backlog.waiting():
            await self.lease.stop()

    async def _settled(self) -> None:
        if self._working is not None:
            await asyncio.gather(self._working, return_exceptions=True)
        await self.lease.settled()

    # --- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._turn()
            except Exception:  # our bug: say so and go on; the batch in hand is already kept
                log.exception("lỗi không lường trước trong bộ ghi bản ghi cuộc gọi; thử lại")
                await asyncio.sleep(self.retry_seconds)

    async def _turn(self) -> None:
        batch = await self._next_batch()
        # the writing goes on by itself: stop() cancels the loop where it waits for records,
        # never in the middle of a database operation (it waits for this one instead, settled),
        # which would leave the driver's thread a connection to close later, on an event loop
        # that may be gone by then
        self._working = asyncio.ensure_future(self._work(batch))
        await asyncio.shield(self._working)

    async def _work(self, batch: list[Op]) -> None:
        if batch:
            await self._deliver(batch)
            await self._give_back()
        elif self.backlog.waiting():
            await self._replay()
        if self._queue.empty() and not self._overflow and not self.backlog.limbo:
            self._idle.set()

    async def _next_batch(self) -> list[Op]:
        waiting = self.backlog.waiting()
        if self._queue.empty() and waiting:
            try:
                first = await asyncio.wait_for(self._queue.get(), self.retry_seconds)
            except TimeoutError:
                return []
        else:
            first = await self._queue.get()
            await self._linger()
        batch = [first]
        while len(batch) < self.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        while self._overflow and not self._queue.full():
            self._queue.put_nowait(self._overflow.popleft())
        QUEUED.set(self._queue.qsize() + len(self._overflow))
        return batch

    async def _give_back(self) -> None:
        """At most every ``trim_seconds``, after a batch: the memory batches freed goes back to
        the system (ivr.store.memory), so resident memory stays flat at constant load. In a
        thread: glibc walks its heaps with the GIL released, which took 90–250 ms on a 1 GB
        fragmented heap here, and the calls' event loop must not wait for that."""
        now = time.monotonic()
        if now - self._trimmed >= self.trim_seconds:
            self._trimmed = now
            await asyncio.to_thread(self._trim)

    async def _linger(self) -> None:
        """Give the records behind the first a moment to join its batch."""
        full = self._queue.qsize() + 1 >= self.batch_size
        if self.linger_seconds > 0 and not (self._draining or full or self._flush.is_set()):
            self._holding = 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger_seconds):
                        await self._flush.wait()
            finally:
                self._holding = 0
        if not self._draining:
            self._flush.clear()

    async def _deliver(self, batch: list[Op]) -> None:
        if self.backlog.waiting():  # keep the order: older batches go first
            self._keep(batch)
            await self._replay()
        elif not await self._write(batch):
            self._keep(batch)

    def held_in_memory(self) -> int:
        """Records neither the database nor the spool has taken (kept until one does)."""
        return self.backlog.held_in_memory()

    async def sync(self) -> bool:
        """Drain, then replay the spool now; True when everything is in the database."""
        await self.drain()
        await self._replay()
        return not self.backlog.waiting()

    def _spooled(self) -> bool:
        return self.backlog.spooled()

    # --- writing: outage or data error ---------------------------------------------------------

    async def _write(self, ops: list[Op]) -> bool:
        """Write a batch, quarantining the records the database refuses; False on an outage
        (then the whole batch is to be kept: parts already written are written again, once)."""
        try:
            await self._write_through_conflicts(ops)
        except Exception as e:
            if not is_data_error(e):
                self._failed(e)
                return False
            if len(ops) == 1:
                self.backlog.quarantine(ops, e)
                return True
            half = len(ops) // 2
            return await self._write(ops[:half]) and await self._write(ops[half:])
        self._healthy()
        return True

    async def _write_through_conflicts(self, ops: list[Op]) -> None:
        """Write a batch; when it conflicts with another transaction (PostgreSQL shared by
        controllers, the reconciler, the lease sweep: ivr.store.errors.is_conflict), write it
        again at once: not an outage."""
        for _ in range(CONFLICT_RETRIES):
            try:
                await write_ops(self.engine, ops, self.owner.id)
                return
            except Exception as e:
                if not is_conflict(e):
                    raise
                CONFLICTS.inc()
                log.info(
                    "batch gave way to another transaction; writing it again", records=len(ops)
                )
        await write_ops(self.engine, ops, self.owner.id)

    # --- the backlog (ivr.store.replay) --------------------------------------------------------

    async def _replay(self) -> None:
        await self.backlog.replay(self._write)

    def _keep(self, batch: list[Op]) -> None:
        self.backlog.keep(batch)

    def _failed(self, e: Exception) -> None:
        if self.database_ok:
            log.error("call-record database unavailable; spooling", error=first_line(e))
        self.database_ok = False

    def _healthy(self) -> None:
        if not self.database_ok:
            log.info("call-record database back; spool replayed")
        self.database_ok = True
