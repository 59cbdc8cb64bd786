"""Realistic synthetic calls in bulk for the scale benchmarks (report_scale, web_scale).

A year of calls ending with the month the reports read: mostly in office hours, 9 branches
chosen from the menu, a tenth of callers keying a unit in the directory, a few closed-hours and
fallback calls; answered, abandoned in the menu or while ringing, voicemail, no answer, busy.
Each call has its row and the steps a report reads (hours, menu or directory, dial).

Drawn with numpy a chunk at a time (the same distributions for every chunk), loaded with the
secondary indexes dropped and built again at the end: executemany in large transactions on
SQLite (journal off: a throwaway database), COPY on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.engine import make_url

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST = dt.date(2025, 11, 1)
DAYS = 365  # through 2026-10-31
CALL_COLUMNS = (
    "id", "channel_id", "node", "controller", "linked_id", "caller_number", "caller_name",
    "dialed", "started_at", "answered_at", "ended_at", "path", "digits", "branch", "unit",
    "endpoint", "disposition", "wait_seconds", "talk_seconds", "routing_version", "hangup_by",
    "hangup_cause", "hangup_cause_text", "error",
)  # fmt: skip
STEP_COLUMNS = ("call_id", "seq", "node", "kind", "outcome", "input", "detail", "at")
TABLES = ("calls", "call_steps")
HOUR_WEIGHTS = [0, 0, 0, 0, 0, 0, 1, 6, 10, 10, 9, 7, 3, 5, 9, 10, 8, 5, 2, 1, 1, 0, 0, 0]
UNITS = [f"{3000 + i}" for i in range(60)]
OUTCOMES = (  # (disposition, ringing?, dial outcome, weight)
    ("answered", True, "answered", 62),
    ("abandoned", False, "", 6),
    ("abandoned", True, "", 8),
    ("voicemail", True, "no_answer", 9),
    ("no_answer", True, "no_answer", 10),
    ("busy", True, "busy", 5),
)
FALLBACK, CLOSED, DIRECTORY = 0.02, 0.05, 0.15  # shares of calls, cumulative
CHUNK = 200_000

Call = tuple[Any, ...]
Step = tuple[Any, ...]
US = 1_000_000  # microseconds per second; times are int64 µs since the epoch, UTC


@dataclass
class Chunk:
    """``n`` calls as columns."""

    keys: list[str]
    numbers: list[str]
    start: np.ndarray  # µs
    kind: np.ndarray  # 0 fallback, 1 closed, 2 directory, 3 menu
    branch: np.ndarray  # 1..9 (menu calls)
    unit: np.ndarray  # index in UNITS (directory calls)
    outcome: np.ndarray  # index in OUTCOMES (directory and menu calls)
    ring: np.ndarray  # seconds
    talk: np.ndarray  # seconds
    chosen: np.ndarray  # µs: the menu choice or the unit found


def draw(rng: np.random.Generator, first: int, n: int, prefix: str, days: int = DAYS) -> Chunk:
    """Calls ``first`` .. ``first + n - 1``, over the last ``days`` days of the year."""
    # the local midnight of each day, in UTC µs (Vietnam has kept UTC+7 all year)
    day0 = dt.datetime.combine(FIRST, dt.time(), VN).timestamp()
    hw = np.array(HOUR_WEIGHTS, float)
    day = rng.integers(DAYS - days, DAYS, n)
    hour = rng.choice(24, n, p=hw / hw.sum())
    second = rng.integers(0, 3600, n)
    start = ((day0 + day * 86400 + hour * 3600 + second) * US).astype(np.int64)
    roll = rng.random(n)
    kind = np.searchsorted([FALLBACK, CLOSED, DIRECTORY], roll, side="right")
    w = np.array([o[3] for o in OUTCOMES], float)
    outcome = rng.choice(len(OUTCOMES), n, p=w / w.sum())
    rings = np.array([o[1] for o in OUTCOMES])[outcome]
    answered = outcome == 0
    ring = np.round(np.where(rings, rng.uniform(1, 35, n), 0.0), 3)
    talk = np.round(np.where(answered, rng.uniform(20, 600, n), 0.0), 3)
    fallback, closed = kind == 0, kind == 1
    ring = np.where(fallback, 5.0, np.where(closed, 0.0, ring))
    talk = np.where(fallback, np.round(rng.uniform(20, 300, n), 3), np.where(closed, 0.0, talk))
    chosen = start + (rng.uniform(6, 20, n) * US).astype(np.int64)
    ids = range(first, first + n)
    return Chunk(
        keys=[f"{prefix}/{i:09d}" for i in ids],
        numbers=[f"09{x:08d}" for x in rng.integers(0, 10**8, n).tolist()],
        start=start, kind=kind, branch=rng.integers(1, 10, n), unit=rng.integers(0, 60, n),
        outcome=outcome, ring=ring, talk=talk, chosen=chosen,
    )  # fmt: skip


def chunks(
    n: int, seed: int = 7, prefix: str = "bench", days: int = DAYS, size: int = CHUNK
) -> Iterator[Chunk]:
    rng = np.random.default_rng(seed)
    for first in range(0, n, size):
        yield draw(rng, first, min(size, n - first), prefix, days)


def rows(c: Chunk, stamp: Any) -> tuple[list[Call], list[Step]]:
    """The chunk's call rows and step rows; ``stamp`` turns an array of µs into column values."""
    n = len(c.keys)
    end = c.start + ((30 + c.ring + c.talk) * US).astype(np.int64)
    answered_at = end - (c.talk * US).astype(np.int64)
    has_talk = c.talk > 0
    dial_at = c.chosen + ((c.ring + c.talk) * US).astype(np.int64)
    starts, ends, answers = stamp(c.start), stamp(end), stamp(answered_at)
    chosen, dials = stamp(c.chosen), stamp(dial_at)
    kinds, branches = c.kind.tolist(), c.branch.tolist()
    units, outcomes = c.unit.tolist(), c.outcome.tolist()
    rings, talks, talking = c.ring.tolist(), c.talk.tolist(), has_talk.tolist()
    calls: list[Call] = []
    steps: list[Step] = []
    for i in range(n):
        key, kind, start = c.keys[i], kinds[i], starts[i]
        answer = answers[i] if talking[i] else None
        row: tuple[str, str, str | None, str | None, str | None, str]
        if kind == 0:  # fallback: no controller saw it, no steps
            row = (key, "", None, None, "PJSIP/cchc-op", "fallback")
        elif kind == 1:
            steps.append((key, 0, "entry", "hours", "closed", "", "", start))
            row = (key, "", None, None, None, "closed")
        else:
            steps.append((key, 0, "entry", "hours", "open", "", "", start))
            disposition, ringing, dial, _ = OUTCOMES[outcomes[i]]
            if kind == 2:
                unit = UNITS[units[i]]
                steps.append((key, 1, "directory", "directory", "found", unit, "", chosen[i]))
                branch, digits, desk, dial_kind = None, "", unit, "directory"
            else:
                branch = digits = desk = str(branches[i])
                steps.append((key, 1, "main-menu", "menu", "chosen", digits, "", chosen[i]))
                unit, dial_kind = None, "dial"
            if dial:
                steps.append((key, 2, f"desk-{desk}", dial_kind, dial, "", "", dials[i]))
            endpoint = f"PJSIP/cchc-{desk}" if ringing else None
            row = (key, digits, branch, unit, endpoint, disposition)
        channel = key.rsplit("/", 1)[-1]
        calls.append((
            key, channel, "bench", "bench", channel, c.numbers[i], "", "1022", start, answer,
            ends[i], "entry>main-menu", row[1], row[2], row[3], row[4], row[5], rings[i],
            talks[i], "bench", "caller", 16, "Normal Clearing", None,
        ))  # fmt: skip
    return calls, steps


def sqlite_stamps(us: np.ndarray) -> list[str]:
    """As SQLAlchemy writes a UTC datetime on SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return [s.replace("T", " ") for s in text.tolist()]


PG_EPOCH = 946_684_800 * US  # PostgreSQL counts µs from 2000-01-01 UTC


def pg_stamps(us: np.ndarray) -> list[int]:
    """µs from PostgreSQL's epoch: the binary form of ``timestamptz`` (see :func:`load_postgres`)."""
    stamps: list[int] = (us - PG_EPOCH).tolist()
    return stamps


def aware_stamps(us: np.ndarray) -> list[dt.datetime]:
    return [d.replace(tzinfo=dt.UTC) for d in us.astype("datetime64[us]").tolist()]


def calls(n: int, seed: int = 7, prefix: str = "bench") -> Iterator[tuple[Call, list[Step]]]:
    """``n`` calls and their steps, one at a time, started_at in UTC (aware)."""
    for c in chunks(n, seed, prefix):
        call_rows, step_rows = rows(c, aware_stamps)
        by_call: dict[str, list[Step]] = {}
        for s in step_rows:
            by_call.setdefault(s[0], []).append(s)
        for row in call_rows:
            yield row, by_call.get(row[0], [])


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"


def load_sqlite(url: str, n: int, seed: int = 7, prefix: str = "bench", days: int = DAYS) -> None:
    """Bulk-load ``n`` calls into a throwaway SQLite database already at the current schema."""
    db = sqlite3.connect(make_url(url).database or "")
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")  # 1 GB for the index builds
    marks = ",".join("?" * len(TABLES))
    indexes = db.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks})",
        TABLES,
    ).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    for c in chunks(n, seed, prefix, days):
        call_rows, step_rows = rows(c, sqlite_stamps)
        with db:
            db.executemany(_insert("calls", CALL_COLUMNS), call_rows)
            db.executemany(_insert("call_steps", STEP_COLUMNS), step_rows)
    for _, sql in indexes:
        db.execute(sql)
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


def _tuple(x: Any) -> Any:
    return (x,) if isinstance(x, int) else x[0]


SECONDARY = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.tablename = ANY($1::text[]) AND NOT EXISTS (
    SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)
"""
FOREIGN = """
SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
WHERE contype = 'f' AND conrelid = ANY($1::regclass[])
"""


async def load_postgres(
    url: str, n: int, seed: int = 7, prefix: str = "bench", days: int = DAYS
) -> None:
    """Bulk-load ``n`` calls into a PostgreSQL database (COPY, the secondary indexes and the
    foreign keys added after), then VACUUM ANALYZE."""
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '1GB'")
        await conn.set_type_codec(  # times given as µs from 2000-01-01, not as datetimes
            "timestamptz", schema="pg_catalog", encoder=_tuple, decoder=_tuple, format="tuple"
        )
        indexes = await conn.fetch(SECONDARY, list(TABLES))
        foreign = await conn.fetch(FOREIGN, list(TABLES))
        for name, table, _ in foreign:
            await conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        for c in chunks(n, seed, prefix, days):
            call_rows, step_rows = rows(c, pg_stamps)
            async with conn.transaction():
                await conn.copy_records_to_table("calls", records=call_rows, columns=CALL_COLUMNS)
                await conn.copy_records_to_table(
                    "call_steps", records=step_rows, columns=STEP_COLUMNS
                )
        for _, sql in indexes:
            await conn.execute(sql)
        for name, table, definition in foreign:  # checks every step's call
            await conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
