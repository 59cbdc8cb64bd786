"""Who owns a call in progress: controllers hold a lease in the database, renewed as they run.

Every controller instance (`ivr run`, `ivr agi`, the demo) has an id, stable across its
restarts, and a row in ``controllers`` whose ``lease_until`` it pushes forward every few seconds.
Its calls carry its id. A call still in progress is closed as ``interrupted`` only when its owner
is gone: the owner's lease has expired (or it never had one), or the owner is the instance now
starting (its previous life). A live controller's calls are never touched, whoever sweeps.

The steps written so far become the interrupted row's path and keys, and its end is the last
step's time. Should the owner come back after all (a long database outage), its final records
still win: the writer lets a finished record replace an interrupted one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import and_, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from ivr.flow.record import Step, summary
from ivr.store.errors import NotReady
from ivr.store.rollups import kept
from ivr.store.rows import bounded
from models import Call, CallStep, Controller

log = structlog.get_logger("ivr.store")

LEASE_SECONDS = 15.0
RENEW_SECONDS = 5.0

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaseConflict(NotReady):
    """Another running process holds this controller id."""


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    node: str = ""
    host: str = ""
    pid: int = 0

    @classmethod
    def here(cls, instance: str, node: str = "") -> Owner:
        return cls(instance, node, socket.gethostname(), os.getpid())


ID_LENGTH = 64  # controllers.id


def default_instance(role: str, serves: str = "") -> str:
    """An instance id stable across restarts and unique on this machine: its name, the service's
    role and what it serves (for ARI, the application and the Asterisk it is registered on: two
    controllers on one host can share neither, Asterisk gives an application to one websocket;
    FastAGI's role carries its port). Too long for the column: the tail becomes a digest."""
    host = socket.gethostname()
    full = f"{host}:{role}:{serves}" if serves else f"{host}:{role}"
    if len(full) <= ID_LENGTH:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    return f"{host[: ID_LENGTH - len(role) - 18]}:{role}:{digest}"[:ID_LENGTH]


async def claim(engine: AsyncEngine, owner: Owner, now: dt.datetime, lease: float) -> None:
    """Take ``owner.id``'s lease; LeaseConflict when another live process holds it."""
    async with engine.begin() as conn:
        q = select(Controller.host, Controller.pid, Controller.lease_until).where(
            Controller.id == owner.id
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        held = (await conn.execute(q)).one_or_none()
        if (
            held is not None
            and held.lease_until > now
            and _someone_else(held.host, held.pid, owner)
        ):
            raise LeaseConflict(
                f"mã bộ điều khiển {owner.id!r} đang được tiến trình {held.pid} trên máy "
                f"{held.host} dùng (hạn giữ đến {held.lease_until:%H:%M:%S} UTC): "
                "đặt mã khác cho bộ điều khiển này hoặc dừng tiến trình kia"
            )
        row = {
            "id": owner.id,
            "node": owner.node,
            "host": owner.host,
            "pid": owner.pid,
            "started_at": now,
            "lease_until": now + dt.timedelta(seconds=lease),
        }
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(Controller).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in row.items() if k != "id"}
        )
        await conn.execute(stmt)


def _someone_else(host: str, pid: int, owner: Owner) -> bool:
    """The row belongs to another process that may be alive (one on this machine is checked)."""
    if host != owner.host:
        return True
    return pid != owner.pid and _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, under another user
    return True


async def renew(engine: AsyncEngine, owner: Owner, now: dt.datetime, lease: float) -> None:
    """Push the lease forward (the row is put back if someone deleted it)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(Controller)
            .where(Controller.id == owner.id)
            .values(lease_until=now + dt.timedelta(seconds=lease))
        )
    if not result.rowcount:
        await claim(engine, owner, now, lease)


async def release(engine: AsyncEngine, owner: Owner, now: dt.datetime) -> None:
    """A clean stop: the lease ends now, so survivors may close what is left at once."""
    async with engine.begin() as conn:
        await conn.execute(
            update(Controller).where(Controller.id == owner.id).values(lease_until=now)
        )


async def sweep(engine: AsyncEngine, now: dt.datetime, *, previous_life: str | None = None) -> int:
    """Close as interrupted the calls in progress whose owner's lease has expired (or that have
    no owner with a lease), and those of ``previous_life``: the starting instance's own id."""
    live = select(Controller.id).where(Controller.lease_until > now)
    gone: ColumnElement[bool] = not_(Call.controller.in_(live))
    if previous_life is not None:
        gone = or_(gone, Call.controller == previous_life)
    orphaned = and_(Call.disposition == "in_progress", gone)
    count = 0
    async with engine.begin() as conn:
        # in key order, as a writer locks its calls (ivr.store.rollups): neither waits in a cycle
        keys = list((await conn.scalars(select(Call.id).where(orphaned).order_by(Call.id))).all())
        for key in keys:
            count += await _interrupt(conn, key)
    if count:
        log.warning("calls whose controller stopped marked interrupted", calls=count)
    return count


async def interrupt(engine: AsyncEngine, keys: list[str]) -> int:
    """Close as interrupted those of ``keys`` still in progress (e.g. callers a survivor took
    over that never reached it: they hung up during the move)."""
    count = 0
    async with engine.begin() as conn:
        for key in sorted(keys):
            count += await _interrupt(conn, key)
    return count


async def _interrupt(conn: AsyncConnection, key: str) -> int:
    rows = await conn.execute(
        select(CallStep.node, CallStep.kind, CallStep.outcome, CallStep.input, CallStep.at)
        .where(CallStep.call_id == key)
        .order_by(CallStep.seq)
    )
    steps = [Step(r.node, r.kind, r.outcome, r.input, at=r.at) for r in rows]
    path, digits = summary(steps)
    started = await conn.scalar(select(Call.started_at).where(Call.id == key))
    ended = max((s.at for s in steps), default=started)
    # cut to the columns as the writer cuts a call's row: the keys of many steps together can
    # be longer than the digits column (PostgreSQL refused the sweep, and the controller's start)
    closed = bounded("call", {"path": ">".join(path), "digits": digits})
    async with kept(conn, [key]):  # the rollups move it to "interrupted"
        result = await conn.execute(
            update(Call)
            .where(Call.id == key, Call.disposition == "in_progress")  # not if it ended meanwhile
            .values(disposition="interrupted", ended_at=ended, **closed)
        )
    return int(result.rowcount or 0)


class LeaseKeeper:
    """Holds a controller's lease while it runs: renews it, and sweeps dead owners' calls.

    ``tick`` is one round (renew, then sweep); ``run`` repeats it every ``renew_seconds``. The
    clock is injectable, so tests move time instead of waiting for it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        owner: Owner,
        *,
        clock: Clock = utc_now,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        self.engine, self.owner, self.clock = engine, owner, clock
        self.lease_seconds, self.renew_seconds = lease_seconds, renew_seconds
        self.healthy = True
        self._ticking: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Claim the lease (LeaseConflict if a live process holds this id)."""
        await claim(self.engine, self.owner, self.clock(), self.lease_seconds)

    async def close_previous_life(self) -> int:
        """At start: this instance's calls from its last run, and any dead owner's."""
        return await sweep(self.engine, self.clock(), previous_life=self.owner.id)

    async def tick(self) -> int:
        """Renew the lease, then close the calls of owners whose lease has expired."""
        await renew(self.engine, self.owner, self.clock(), self.lease_seconds)
        return await sweep(self.engine, self.clock())

    async def run(self) -> None:
        """A tick every ``renew_seconds``, forever. Cancelled during a tick, it lets the tick
        finish on its own (:meth:`settled` waits for it): a database operation cut in half
        leaves its connection to be closed later, from the driver's thread, on an event loop
        that may be gone by then."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            self._ticking = asyncio.ensure_future(self._tick_quietly())
            await asyncio.shield(self._ticking)

    async def _tick_quietly(self) -> None:
        try:
            await self.tick()
        except Exception as e:  # the database is away: the spool has the calls meanwhile
            if self.healthy:
                log.warning("không gia hạn được quyền giữ cuộc gọi", error=str(e)[:200])
            self.healthy = False
        else:
            self.healthy = True

    async def settled(self) -> None:
        """Until the tick that :meth:`run` was in when cancelled, if any, has finished."""
        if self._ticking is not None:
            await asyncio.gather(self._ticking, return_exceptions=True)

    async def stop(self) -> None:
        """A clean stop: close what this instance leaves in progress and end the lease."""
        try:
            await sweep(self.engine, self.clock(), previous_life=self.owner.id)
            await release(self.engine, self.owner, self.clock())
        except Exception as e:
            log.warning("không trả được quyền giữ cuộc gọi khi dừng", error=str(e)[:200])
