"""Reconciliation as a service: at start, then every few seconds, with the lag gauge kept.

A pass copies cel_custom's new lines into ``cel`` (when a file is given: SQLite sites; on
PostgreSQL ``cel_pgsql`` writes there itself), then writes the rows of the finished calls no one
recorded. A failing pass (database away, file unreadable) is logged once and retried; calls
are never lost meanwhile, since nothing is marked done until its row is written. Which file:
the ``cel_file`` setting (``IVR_CEL_FILE``, see ivr.config).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.metrics import RECONCILE_LAG
from ivr.store.reconcile.source import ingest
from ivr.store.reconcile.write import Pass, lag, reconcile

log = structlog.get_logger("ivr.reconcile")

EVERY_SECONDS = 5.0
SETTLE_SECONDS = 60.0  # a controller's own record of a call reaches the store well within this


@dataclass(frozen=True, slots=True)
class Outcome:
    read: int  # CEL events copied from the file
    looked_at: int
    written: int
    lag_seconds: float


class Reconciler:
    def __init__(
        self,
        engine: AsyncEngine,
        cel: Path | None,
        *,
        settle: float = SETTLE_SECONDS,
        node: str = "",
        clock: Callable[[], float] = time.time,
        every: float = EVERY_SECONDS,
    ) -> None:
        self.engine, self.cel, self.settle, self.node = engine, cel, settle, node
        self.clock, self.every = clock, every
        self.healthy = True

    async def once(self) -> Outcome:
        read = await ingest(self.engine, self.cel) if self.cel is not None else 0
        now = self.clock()
        p: Pass = await reconcile(self.engine, now, settle=self.settle, node=self.node)
        behind = lag(p, now)
        RECONCILE_LAG.set(behind)
        if p.written:
            log.info("cuộc gọi không qua bộ điều khiển đã ghi bổ sung", calls=p.written)
        return Outcome(read, p.looked_at, p.written, behind)

    async def run(self) -> None:
        """Forever: a pass now, then one every ``every`` seconds."""
        while True:
            try:
                await self.once()
            except Exception as e:  # the next pass picks up where this one stopped
                if self.healthy:
                    log.warning("đối soát CEL thất bại, sẽ thử lại", error=str(e)[:200])
                self.healthy = False
            else:
                self.healthy = True
            await asyncio.sleep(self.every)
