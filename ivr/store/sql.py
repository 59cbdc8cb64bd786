"""SQL for the writer: one batch in one idempotent transaction.

A call's row is written whole each time, except what other sources add to it: a hang-up cause
already stored (AMI's, which may arrive before the call's last write) is never overwritten, and
the first cause to arrive is the one kept.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import Table, and_, bindparam, func, literal_column, or_, select, update
from sqlalchemy import insert as plain_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import BindParameter

from ivr.store import upkeep
from ivr.store.errors import ConcurrentWrite
from ivr.store.rollups import FACT_COLUMNS, FACT_STEPS, STEP_FACT_COLUMNS, apply, stored_of
from ivr.store.rows import Op
from models import Call, CallStep, SurveyAnswer, Voicemail

log = structlog.get_logger("ivr.store")

ROWS_WRITTEN = Counter("ivr_store_rows_written_total", "Rows written to the call-record store")

_TABLES: dict[str, Table] = {
    "call": Call.__table__,  # type: ignore[dict-item]
    "step": CallStep.__table__,  # type: ignore[dict-item]
    "voicemail": Voicemail.__table__,  # type: ignore[dict-item]
}
_KEYS = {"call": ["id"], "step": ["call_id", "seq"], "voicemail": ["call_id"]}
_CAUSE_COLUMNS = {"hangup_cause", "hangup_cause_text"}
# what the upserts give back of the rows they write: what the call's facts are made of
_RETURNED = {"call": FACT_COLUMNS, "step": ("call_id", "seq", *STEP_FACT_COLUMNS)}


async def write_ops(engine: AsyncEngine, ops: Iterable[Op], controller: str = "") -> None:
    """Write one batch in one transaction; idempotent, so a batch may be written again.
    ``controller``: the writing controller, owner of rows spooled before calls had one."""
    grouped: dict[str, list[dict[str, Any]]] = {
        "call": [],
        "step": [],
        "voicemail": [],
        "cause": [],
        "survey": [],
    }
    calls: dict[str, dict[str, Any]] = {}
    for kind, row in ops:
        if kind == "call":
            calls[row["id"]] = _complete(row, controller)  # a later version supersedes
        else:
            grouped[kind].append(row)
    # every table's rows in the order of their keys: two transactions writing the same rows lock
    # them in the same order, one waiting for the other (ivr.store.rollups.in_lock_order); the
    # sort is stable: rows of one key keep their order (the first cause to arrive stays)
    grouped["call"] = [calls[key] for key in sorted(calls)]
    grouped["step"].sort(key=_step_key)
    grouped["voicemail"].sort(key=_call_of)
    grouped["cause"].sort(key=_id_of)
    # the calls whose facts this batch can change: a step of a kind no report reads (a prompt
    # played, a survey key) changes none, and most of a call's batches hold only such steps
    touched = set(calls) | {row["call_id"] for row in grouped["step"] if row["kind"] in FACT_STEPS}
    async with engine.begin() as conn:
        # the rollups change with the calls: what the touched calls are made of is read before
        # the writes; what they are made of after, the writes return (ivr.store.upkeep)
        before = await stored_of(conn, touched) if touched else {}
        written: dict[str, list[Any]] = {"call": [], "step": []}
        for kind in ("call", "step", "voicemail"):  # calls first: the others refer to them
            if grouped[kind]:
                written[kind] = await _upsert(conn, kind, grouped[kind])
        if grouped["cause"]:  # a call AMI reports that we never had is no one's
            await conn.execute(
                _CAUSE,
                [
                    {
                        "key": row["id"],
                        "writer": controller,
                        "cause": row["hangup_cause"],
                        "cause_text": row["hangup_cause_text"],
                    }
                    for row in grouped["cause"]
                ],
            )
        for row in grouped["survey"]:
            await _survey_once(conn, row)
        if conn.dialect.name == "postgresql":
            _none_stored_meanwhile(before, written["call"])
        if touched:
            await apply(conn, upkeep.delta(before, written["call"], written["step"]))
    ROWS_WRITTEN.inc(sum(len(v) for v in grouped.values()))


def _none_stored_meanwhile(before: dict[str, Any], calls: list[Any]) -> None:
    """A call row this batch updated that its read of the facts did not find was stored by
    another transaction in between (its row could not be locked: it did not exist yet). Counted
    by that one, it would be counted again from nothing here: the batch is run again instead."""
    late = [row.id for row in calls if not row.fresh and row.id not in before]
    if late:
        raise ConcurrentWrite(f"calls stored by another transaction meanwhile: {late[:5]}")


def _step_key(row: dict[str, Any]) -> tuple[str, int]:
    return row["call_id"], row["seq"]


def _call_of(row: dict[str, Any]) -> str:
    return str(row["call_id"])


def _id_of(row: dict[str, Any]) -> str:
    return str(row["id"])


def _complete(row: dict[str, Any], controller: str) -> dict[str, Any]:
    """A call row as this schema wants it (rows spooled by an older version lack its identity)."""
    if "channel_id" in row:
        return row
    return {"channel_id": row["id"], "node": "", "controller": controller, **row}


# The call AMI's cause is about: AMI names the channel, the key adds the node to it; the channel
# id alone is enough among this controller's own calls (one Asterisk per AMI). Kept only when
# the call has no cause yet. Built once, run for all of a batch's causes at once.
_KEY: BindParameter[str] = bindparam("key")
_CAUSE = (
    update(Call)
    .where(
        or_(Call.id == _KEY, and_(Call.channel_id == _KEY, Call.controller == bindparam("writer"))),
        Call.hangup_cause.is_(None),
    )
    .values(hangup_cause=bindparam("cause"), hangup_cause_text=bindparam("cause_text"))
)


async def _survey_once(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """A call's IVR survey answer, once: a batch written again finds it there."""
    known = await conn.scalar(
        select(SurveyAnswer.id).where(
            SurveyAnswer.call_id == row["call_id"], SurveyAnswer.source == row["source"]
        )
    )
    if known is None:
        await conn.execute(plain_insert(SurveyAnswer), [row])


async def _upsert(conn: AsyncConnection, kind: str, rows: list[dict[str, Any]]) -> list[Any]:
    """Write ``kind``'s rows; for calls and steps, the rows written as stored (RETURNING): the
    calls a version changed (a late one that would reopen a finished call is not), the steps
    not stored already. The rollup upkeep counts those (ivr.store.upkeep)."""
    columns = tuple(rows[0]) if kind == "call" else ()
    result = await conn.execute(_upsert_statement(conn.dialect.name, kind, columns), rows)
    return list(result) if kind in _RETURNED else []


@functools.cache
def _upsert_statement(dialect: str, kind: str, columns: tuple[str, ...]) -> Any:
    """The idempotent write of ``kind``'s rows (for calls: of these columns), built once per
    dialect: building it cost more than running it for a batch of a call or two."""
    table = _TABLES[kind]
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt: Any = insert(table)
    returned: list[Any] = [table.c[c] for c in _RETURNED.get(kind, ())]
    if kind == "call" and dialect == "postgresql":  # inserted (true) or updated (false)
        returned.append(literal_column("xmax = 0").label("fresh"))
    if kind != "call":
        stmt = stmt.on_conflict_do_nothing(index_elements=_KEYS[kind])
        return stmt.returning(*returned) if returned else stmt
    excluded = stmt.excluded
    cols: dict[str, Any] = {k: excluded[k] for k in columns if k != "id"}
    for cause in _CAUSE_COLUMNS & set(cols):  # the first cause to arrive stays
        cols[cause] = func.coalesce(table.c[cause], excluded[cause])
    # a finished call is never reopened by a late "in progress" version of itself
    return stmt.on_conflict_do_update(
        index_elements=_KEYS[kind],
        set_=cols,
        where=or_(table.c.disposition == "in_progress", excluded.disposition != "in_progress"),
    ).returning(*returned)
