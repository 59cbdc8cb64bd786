"""Who is alive: each controller holds PostgreSQL sessions named after it, one with an advisory
lock of its id.

A controller opens its presence sessions (``application_name`` ``ivr-presence:<id>``: the lock
taken on the first, the second a witness) before it serves calls. When the process dies, even by
SIGKILL, its connections close and PostgreSQL ends both sessions at once. The survivors look a
few times a second at which presence sessions exist: a peer seen alive is *armed*; an armed peer
with no session left is dead. One session ending alone (killed by an administrator, a
connection cut by the network or an idle timeout) is not a death: the peer still has the other,
takes the lost one again, and its calls are never moved while it serves them. The survivor
whose ``pg_try_advisory_lock`` on a dead peer succeeds, and that still finds no session of it,
is the one that takes its calls over: it ends the dead peer's lease (so the others stop judging
it) before it lets the lock go, and a survivor that gets the lock after that finds the lease
ended and does nothing.

Controllers that never open a presence session (another node's FastAGI, a single controller)
are never taken for dead. The 15 s lease (ivr.store.lease) stays the slow path: a process that
hangs without dying keeps its sessions and is found by the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.store.lease import Owner, release
from models import Controller

log = structlog.get_logger("ivr.cluster")

PROBE_SECONDS = 0.2
PREFIX = "ivr-presence:"

OnDead = Callable[[str], Awaitable[None]]


def lock_key(controller: str) -> int:
    """The advisory lock of a controller id: a signed 64-bit number, the same in every process."""
    digest = hashlib.sha256(f"ivr-controller:{controller}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def session_name(controller: str) -> str:
    """The presence session's application_name (PostgreSQL keeps 63 bytes; ids are plain)."""
    safe = "".join(ch for ch in controller if ch.isalnum() or ch in "-_.:")
    return f"{PREFIX}{safe}"[:63]


class NotPostgres(RuntimeError):
    """Cluster mode needs PostgreSQL (advisory locks)."""


class Presence:
    """This controller's presence: its lock, held on a connection kept open while it runs, and a
    witness session of the same name on a second connection."""

    def __init__(self, engine: AsyncEngine, controller: str) -> None:
        self.engine, self.controller = engine, controller
        self._conn: AsyncConnection | None = None
        self._witness: AsyncConnection | None = None

    async def hold(self) -> None:
        if self.engine.dialect.name != "postgresql":
            raise NotPostgres(
                "chạy nhiều bộ điều khiển cần cơ sở dữ liệu PostgreSQL (database_url)"
            )
        # the lock first: waits while a survivor still holds it (taking our previous life's
        # calls over), and the witness after, so that survivor never sees this life meanwhile
        self._conn = await self._session(locked=True)
        if self._witness is None or self._witness.closed:
            self._witness = await self._session(locked=False)

    async def _session(self, *, locked: bool) -> AsyncConnection:
        conn = await self.engine.connect()
        try:
            await conn.execute(text(f"SET application_name = '{session_name(self.controller)}'"))
            if locked:
                key = lock_key(self.controller)
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            await conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        return conn

    async def keep(self, every: float = 1.0) -> None:
        """Hold the sessions while this controller runs: one the database drops (PostgreSQL
        restarted, the connection cut) is taken again as soon as the database answers, so the
        peers, which forget who was alive while they cannot see the database, see us again."""
        while True:
            await asyncio.sleep(every)
            try:
                await self._check()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("mất phiên hiện diện trong cơ sở dữ liệu: giữ lại", error=str(e)[:200])
                with contextlib.suppress(Exception):  # still away: try again next time
                    await self._take_again()
                    log.info("presence held again", controller=self.controller)

    async def _check(self) -> None:
        for conn in (self._conn, self._witness):
            if conn is None or conn.closed:
                raise ConnectionError("no presence session")
            await conn.execute(text("SELECT 1"))
            await conn.commit()

    async def _take_again(self) -> None:
        """Each session that no longer answers is closed and opened again."""
        for name in ("_conn", "_witness"):
            conn: AsyncConnection | None = getattr(self, name)
            if conn is not None and not conn.closed:
                try:
                    await conn.execute(text("SELECT 1"))
                    await conn.commit()
                    continue
                except Exception:
                    with contextlib.suppress(Exception):
                        await conn.close()
            setattr(self, name, None)
        if self._conn is None:
            self._conn = await self._session(locked=True)
        if self._witness is None:
            self._witness = await self._session(locked=False)

    async def release(self) -> None:
        for name in ("_conn", "_witness"):
            conn: AsyncConnection | None = getattr(self, name)
            setattr(self, name, None)
            if conn is not None:
                await conn.close()  # the session ends: PostgreSQL frees the lock


class PeerWatch:
    """Probes the live controllers' locks; calls ``on_dead(peer)`` holding a dead peer's lock."""

    def __init__(
        self,
        engine: AsyncEngine,
        me: str,
        on_dead: OnDead,
        *,
        every: float = PROBE_SECONDS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.engine, self.me, self.on_dead, self.every, self.clock = (
            engine,
            me,
            on_dead,
            every,
            clock,
        )
        self.armed: set[str] = set()
        self._conn: AsyncConnection | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.probe()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database is away: nobody can be judged dead now
                log.warning("không dò được bộ điều khiển khác", error=str(e)[:200])
                self.forget()
                await self._drop()
            await asyncio.sleep(self.every)

    def forget(self) -> None:
        """Judge nobody until seen alive again: after the database was away (a restart ends every
        session, the live peers' too), a peer is armed only once its session is back."""
        self.armed.clear()

    async def probe(self) -> list[str]:
        """One round: the peers found dead and taken over by this controller."""
        conn = await self._connection()
        peers = await self._peers(conn)
        alive = await self._alive(conn)
        dead = []
        for peer in peers:
            if session_name(peer) in alive:
                if peer not in self.armed:
                    self.armed.add(peer)
                    log.info("peer alive", peer=peer)
            elif peer in self.armed:
                self.armed.discard(peer)
                if await self._try(conn, peer):
                    try:
                        if await self._gone(conn, peer):
                            dead.append(peer)
                            await self._take(peer)
                            await release(self.engine, Owner(peer), self.clock())
                    finally:
                        await self._unlock(conn, peer)
        self.armed &= set(peers)
        return dead

    async def _take(self, peer: str) -> None:
        log.warning("bộ điều khiển khác đã ngừng: nhận các cuộc gọi của nó", peer=peer)
        try:
            await self.on_dead(peer)
        except Exception:
            log.exception("takeover failed", peer=peer)

    async def _peers(self, conn: AsyncConnection) -> list[str]:
        rows = await conn.scalars(
            select(Controller.id).where(
                Controller.lease_until > self.clock(), Controller.id != self.me
            )
        )
        await conn.commit()
        return list(rows)

    async def _gone(self, conn: AsyncConnection, peer: str) -> bool:
        """Holding its lock: the peer is still leased (no other survivor took it over) and has
        no session left (one taken again since the probe: it lives, lost a connection only)."""
        if session_name(peer) in await self._alive(conn):
            log.info("peer took its presence again", peer=peer)
            self.armed.add(peer)
            return False
        return await self._still_leased(conn, peer)

    async def _still_leased(self, conn: AsyncConnection, peer: str) -> bool:
        until = await conn.scalar(select(Controller.lease_until).where(Controller.id == peer))
        await conn.commit()
        return until is not None and until > self.clock()

    async def _alive(self, conn: AsyncConnection) -> set[str]:
        rows = await conn.scalars(
            text("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE :p"),
            {"p": PREFIX + "%"},
        )
        await conn.commit()
        return set(rows)

    async def _try(self, conn: AsyncConnection, peer: str) -> bool:
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(peer)})
        await conn.commit()
        return bool(got)

    async def _unlock(self, conn: AsyncConnection, peer: str) -> None:
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(peer)})
        await conn.commit()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await self.engine.connect()
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._drop()
