"""The wallboard's snapshot: calls in progress (state, branch, since when), today's figures.

What the store knows of a call in progress is its steps so far, written as they happen by the
controller that runs it. The flow writes a ``state`` step when the desks start ringing
(``ringing``) and when one answers (``talking``; the ARI adapter knows it then, FastAGI only at
the end of the conversation), so the states are: ``menu`` (greeting, menus, directory),
``ringing``, ``talking`` and ``voicemail`` (no desk answered: the caller is led to a message).
A call from a controller older than the state steps shows ``ringing`` from the choice on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ivr.routing.model import DialNode, MenuNode, Routing
from models import Call, CallStep, PhoneStatus

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SERVICE_SECONDS = 20  # answered within this many seconds of waiting counts for the service level
MISSED = ("no_answer", "busy", "unreachable", "abandoned")
STATES = ("menu", "ringing", "talking", "voicemail")
FAILED_DIAL = ("busy", "no_answer", "unreachable")


@dataclass(frozen=True)
class Live:
    key: str
    caller: str
    branch: str | None
    unit: str | None
    state: str
    started: dt.datetime
    since: dt.datetime  # when it entered this state


def state_of(
    steps: Sequence[CallStep] | Sequence[LiveStep], routing: Routing | None
) -> tuple[str, str | None, str | None, int]:
    """(state, branch, unit, index of the step it entered that state at; -1: the start)."""
    if not steps:
        return "menu", None, None, -1
    last, at = steps[-1], len(steps) - 1
    unit = _unit_of(steps)
    if last.kind == "state" and last.outcome in ("ringing", "talking"):
        return last.outcome, _node_branch(routing, last.node), unit, at
    if last.kind == "directory" and last.outcome in ("found", "replaced"):
        return "ringing", None, last.input or None, at
    if last.kind in ("dial", "directory") and last.outcome in FAILED_DIAL:
        return "voicemail", _node_branch(routing, last.node), unit, at
    if last.kind == "menu" and last.outcome == "chosen" and routing is not None:
        node = routing.nodes.get(last.node)
        target = (
            routing.nodes.get(node.choices.get(last.input, ""))
            if isinstance(node, MenuNode)
            else None
        )
        if isinstance(target, DialNode):
            return "ringing", target.branch, None, at
    return "menu", None, None, -1


def _unit_of(steps: Sequence[CallStep] | Sequence[LiveStep]) -> str | None:
    found = [s.input for s in steps if s.kind == "directory" and s.outcome in ("found", "replaced")]
    return found[-1] if found and found[-1] else None


def _node_branch(routing: Routing | None, name: str) -> str | None:
    node = routing.nodes.get(name) if routing is not None else None
    return node.branch if node is not None else None


@dataclass(frozen=True, slots=True)
class LiveStep:
    """What the board reads of a step (plain rows: a thousand calls' steps without the ORM)."""

    node: str
    kind: str
    outcome: str
    input: str
    at: dt.datetime


async def in_progress(
    engine: AsyncEngine, routing: Routing | None, limit: int = 5000
) -> list[Live]:
    live = (
        select(Call.id, Call.caller_number, Call.branch, Call.unit, Call.started_at)
        .where(Call.disposition == "in_progress")
        .order_by(Call.started_at)
        .limit(limit)
    )
    async with AsyncSession(engine) as s:
        calls = (await s.execute(live)).all()
        keys = live.with_only_columns(Call.id).subquery()
        steps = (
            await s.execute(
                select(
                    CallStep.call_id,
                    CallStep.node,
                    CallStep.kind,
                    CallStep.outcome,
                    CallStep.input,
                    CallStep.at,
                )
                .where(CallStep.call_id.in_(select(keys.c.id)))
                .order_by(CallStep.call_id, CallStep.seq)
            )
        ).all()
    by_call: dict[str, list[LiveStep]] = {}
    for key, node, kind, outcome, typed, when in steps:
        by_call.setdefault(key, []).append(LiveStep(node, kind, outcome, typed, when))
    out = []
    for key, caller, call_branch, call_unit, started in calls:
        mine = by_call.get(key, [])
        state, branch, unit, at = state_of(mine, routing)
        since = mine[at].at if at >= 0 else started
        out.append(
            Live(key, caller, call_branch or branch, call_unit or unit, state, started, since)
        )
    return out


async def today(engine: AsyncEngine, now: dt.datetime) -> dict[str, Any]:
    midnight = now.astimezone(VN).replace(hour=0, minute=0, second=0, microsecond=0)
    q = (
        select(
            Call.disposition,
            func.count(),
            func.sum(case((Call.wait_seconds <= SERVICE_SECONDS, 1), else_=0)),
        )
        .where(Call.started_at >= midnight.astimezone(dt.UTC))
        .group_by(Call.disposition)
    )
    async with AsyncSession(engine) as s:
        rows = (await s.execute(q)).all()
    counts = {d: int(n) for d, n, _ in rows}
    quick = sum(int(k or 0) for d, _, k in rows if d == "answered")
    answered = counts.get("answered", 0)
    missed = sum(counts.get(d, 0) for d in MISSED)
    offered = answered + missed + counts.get("voicemail", 0)
    return {
        "received": sum(counts.values()),
        "answered": answered,
        "missed": missed,
        "voicemail": counts.get("voicemail", 0),
        "in_progress": counts.get("in_progress", 0),
        "service_level": round(100 * quick / offered) if offered else None,
    }


def per_branch(calls: Sequence[Live]) -> dict[str, dict[str, Any]]:
    """Per branch: how many calls are in each state, and since when the longest-waiting caller
    has been ringing (ISO time; None when nobody is)."""
    table: dict[str, dict[str, Any]] = {}
    oldest: dict[str, dt.datetime] = {}
    for c in calls:
        name = c.branch or "—"
        row = table.setdefault(name, {**dict.fromkeys(STATES, 0), "waiting_since": None})
        row[c.state] += 1
        if c.state == "ringing" and (name not in oldest or c.since < oldest[name]):
            oldest[name] = c.since
            row["waiting_since"] = c.since.isoformat()
    return dict(sorted(table.items()))


RoutingSource = Callable[[], Routing | None]


class ChangeCheck:
    """A cheap question before the board's heavy read: has anyone committed since? SQLite's
    ``PRAGMA data_version`` on a connection of its own moves whenever another connection — of
    this process or of any controller sharing the file — commits. None where there is no such
    check (PostgreSQL, an in-memory database): the caller then reads every time."""

    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url
        self.usable = url.get_backend_name() == "sqlite" and url.database not in (
            None,
            "",
            ":memory:",
        )
        self.engine = engine
        self._conn: AsyncConnection | None = None

    async def version(self) -> int | None:
        if not self.usable:
            return None
        try:
            if self._conn is None:
                conn = await self.engine.connect()
                self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return int((await self._conn.exec_driver_sql("PRAGMA data_version")).scalar_one())
        except Exception:
            await self.close()  # a fresh connection next time; this time, read
            return None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


PHONE_STALE_SECONDS = 60.0  # a row no controller touched for this long is not shown as live
PHONE_ORDER = {"unreachable": 0, "unregistered": 1, "unknown": 2, "reachable": 3}


@dataclass(frozen=True)
class DeskPhone:
    endpoint: str
    owner: str  # "nhánh 6 · Tài chính công", "1001 Sở Nội vụ", or ""
    state: str
    since: dt.datetime


async def phones(engine: AsyncEngine, now: dt.datetime, routing: Routing | None) -> list[DeskPhone]:
    """The desk phones as the live controllers last wrote them (ivr.ami.publish); a phone seen by
    several controllers counts as reachable when any of them reaches it."""
    fresh = now - dt.timedelta(seconds=PHONE_STALE_SECONDS)
    async with AsyncSession(engine) as s:
        rows = (await s.scalars(select(PhoneStatus).where(PhoneStatus.seen_at >= fresh))).all()
    best: dict[str, PhoneStatus] = {}
    for r in rows:
        have = best.get(r.endpoint)
        if have is None or _better(r, have):
            best[r.endpoint] = r
    owners = _owners(routing)
    out = [
        DeskPhone(r.endpoint, owners.get(r.endpoint, ""), r.state, r.since) for r in best.values()
    ]
    return sorted(out, key=lambda p: (PHONE_ORDER.get(p.state, 2), p.endpoint))


def _better(new: PhoneStatus, old: PhoneStatus) -> bool:
    if (new.state == "reachable") != (old.state == "reachable"):
        return new.state == "reachable"
    return new.since > old.since


def _owners(routing: Routing | None) -> dict[str, str]:
    """AOR name (what AMI calls a phone) → whose desk it is, from the routing."""
    if routing is None:
        return {}
    out: dict[str, str] = {}
    for u in routing.units:
        out.setdefault(u.endpoint.partition("/")[2] or u.endpoint, f"{u.code} {u.name}")
    for key, b in routing.branches.items():
        for e in b.all_endpoints:
            out[e.partition("/")[2] or e] = f"nhánh {key} · {b.name}"
    return out
