"""The phones' states, from this controller's AMI watch to the store, for the web console (a
process of its own that cannot ask AMI): a changed state is written within a second, and every
phone's row is touched every ``heartbeat`` seconds so the console can tell a live view from the
last word of a stopped controller.

It reads the watch's dictionary, never awaits AMI, and a database that is away only delays the
picture: the loop logs once and tries again; calls never wait for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog
from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import PhoneStatus

log = structlog.get_logger("ivr.ami")

Clock = Callable[[], dt.datetime]


class _Phone(Protocol):
    @property
    def state(self) -> str: ...


@functools.cache
def _upsert(dialect: str) -> Any:
    """A phone's row written whole (its state, since when, last seen), built once per dialect."""
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(PhoneStatus)
    return stmt.on_conflict_do_update(
        index_elements=["node", "endpoint"],
        set_={c: stmt.excluded[c] for c in ("state", "since", "seen_at")},
    )


class PhonePublisher:
    def __init__(
        self,
        engine: AsyncEngine,
        phones: Mapping[str, _Phone],
        node: str,
        *,
        every: float = 1.0,
        heartbeat: float = 15.0,
        clock: Clock = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.engine, self.phones, self.node = engine, phones, node[:64]
        self.every, self.heartbeat, self.clock = every, heartbeat, clock
        self.written: dict[str, str] = {}  # endpoint → state as the store has it
        self._touched: dt.datetime | None = None
        self._failing = False

    async def run(self) -> None:
        await self._forget_old_rows()
        while True:
            try:
                await self.publish()
                self._failing = False
            except Exception as e:  # the database is away: the next turn tries again
                if not self._failing:
                    log.warning("phones_not_written", error=str(e).splitlines()[0][:200])
                self._failing = True
            await asyncio.sleep(self.every)

    async def publish(self) -> int:
        """Write the phones whose state changed (and touch all when the heartbeat is due);
        the number of rows written."""
        now = self.clock()
        current = {name[:64]: str(p.state) for name, p in dict(self.phones).items() if name}
        changed = {name: s for name, s in current.items() if self.written.get(name) != s}
        due = self._touched is None or (now - self._touched).total_seconds() >= self.heartbeat
        if not changed and not due:
            return 0
        async with self.engine.begin() as conn:
            if changed:  # one statement for them all, however many phones the site has
                rows = [
                    {"node": self.node, "endpoint": name, "state": state, "since": now,
                     "seen_at": now}
                    for name, state in sorted(changed.items())
                ]  # fmt: skip
                await conn.execute(_upsert(conn.dialect.name), rows)
            if due:
                await conn.execute(
                    update(PhoneStatus).where(PhoneStatus.node == self.node).values(seen_at=now)
                )
        self.written.update(changed)
        if due:
            self._touched = now
        return len(changed)

    async def _forget_old_rows(self) -> None:
        """A restarted controller starts from what its watch says, not from its last life."""
        try:
            async with AsyncSession(self.engine) as s, s.begin():
                await s.execute(delete(PhoneStatus).where(PhoneStatus.node == self.node))
        except Exception as e:
            log.warning("phones_not_cleared", error=str(e).splitlines()[0][:200])
