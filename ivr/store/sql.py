"""SQL for the writer: one batch in one idempotent transaction; closing an earlier run's calls."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.store.rows import Op
from models import Call, CallStep, Voicemail

log = structlog.get_logger("ivr.store")

ROWS_WRITTEN = Counter("ivr_store_rows_written_total", "Rows written to the call-record store")

_TABLES: dict[str, Table] = {
    "call": Call.__table__,  # type: ignore[dict-item]
    "step": CallStep.__table__,  # type: ignore[dict-item]
    "voicemail": Voicemail.__table__,  # type: ignore[dict-item]
}
_KEYS = {"call": ["id"], "step": ["call_id", "seq"], "voicemail": ["call_id"]}


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
