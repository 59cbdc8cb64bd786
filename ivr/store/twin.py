"""A SQLite file's synchronous twin engine, in a thread of its own, for the writer's batches.

Through aiosqlite every statement hops to aiosqlite's thread and back, waking the calls' event
loop each time, and SQLAlchemy's async layer adds a greenlet switch on both sides: measured here,
a statement of a ten-statement transaction cost 560 µs of CPU that way and 106 µs run with the
standard sqlite3 driver in a thread. A batch (its rollup reads, upserts and commit) now runs
whole in one hop. PostgreSQL keeps its async engine: asyncpg has no such hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.store.db import sqlite_pragmas

T = TypeVar("T")


class Twin:
    """Transactions on the same SQLite file as an async engine, one at a time, in one thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-store")

    @classmethod
    def of(cls, engine: AsyncEngine) -> Twin | None:
        """The twin of ``engine`` when it is a SQLite file's; None otherwise (an in-memory
        database is the engine's own and has no twin)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        sync = create_engine(url.set(drivername="sqlite+pysqlite"))
        sqlite_pragmas(sync)
        return cls(sync)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(conn, *args)`` in one transaction (committed when it returns)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work, args)

    def _transaction(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self.engine.begin() as conn:
            return work(conn, *args)

    async def close(self) -> None:
        """After the transaction in hand, if any: its connections closed, its thread ended."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.engine.dispose)
        self._thread.shutdown(wait=False)
