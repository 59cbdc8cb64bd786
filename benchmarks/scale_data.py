"""Realistic synthetic calls in bulk for the scale benchmarks (report_scale, web_scale).

A year of calls ending with the month the reports read: mostly in office hours, 9 branches
chosen from the menu, a tenth of callers keying a unit in the directory, a few closed-hours and
fallback calls; answered, abandoned in the menu or while ringing, voicemail, no answer, busy.
Each call has its row and the steps a report reads (hours, menu or directory, dial). Loaded
with executemany in large transactions on SQLite, COPY on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

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

Call = tuple[Any, ...]
Step = tuple[Any, ...]


def calls(n: int, seed: int = 7, prefix: str = "bench") -> Iterator[tuple[Call, list[Step]]]:
    """``n`` calls and their steps, started_at in UTC (aware)."""
    rng = random.Random(seed)
    hours = list(range(24))
    for i in range(n):
        day = FIRST + dt.timedelta(days=rng.randrange(DAYS))
        hour = rng.choices(hours, HOUR_WEIGHTS)[0]
        local = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)), VN)
        yield _call(rng, f"{prefix}/{i:09d}", local.astimezone(dt.UTC))


def _call(rng: random.Random, key: str, start: dt.datetime) -> tuple[Call, list[Step]]:
    roll = rng.random()
    number = f"09{rng.randrange(10**8):08d}"
    sec = dt.timedelta(seconds=1)
    if roll < 0.02:  # fallback: no controller saw it, no steps
        talk = rng.uniform(20, 300)
        return _row(key, start, number, "", None, None, "PJSIP/cchc-op", "fallback", 5, talk), []
    steps: list[Step] = [
        (key, 0, "entry", "hours", "closed" if roll < 0.05 else "open", "", "", start)
    ]
    if roll < 0.05:
        return _row(key, start, number, "", None, None, None, "closed", 0, 0), steps
    directory = roll < 0.15
    branch = None if directory else str(rng.randint(1, 9))
    unit = rng.choice(UNITS) if directory else None
    digits = "" if directory else branch or ""
    chosen = start + rng.uniform(6, 20) * sec
    if directory:
        steps.append((key, 1, "directory", "directory", "found", unit, "", chosen))
    else:
        steps.append((key, 1, "main-menu", "menu", "chosen", digits, "", chosen))
    disposition, rings, dial, _ = rng.choices(OUTCOMES, [o[3] for o in OUTCOMES])[0]
    ring = rng.uniform(1, 35) if rings else 0.0
    talk = rng.uniform(20, 600) if dial == "answered" else 0.0
    endpoint = f"PJSIP/cchc-{branch or unit}" if rings else None
    if dial:
        kind = "directory" if directory else "dial"
        steps.append(
            (key, 2, f"desk-{branch or unit}", kind, dial, "", "", chosen + (ring + talk) * sec)
        )
    row = _row(key, start, number, digits, branch, unit, endpoint, disposition, ring, talk)
    return row, steps


def _row(
    key: str, start: dt.datetime, number: str, digits: str, branch: str | None,
    unit: str | None, endpoint: str | None, disposition: str, ring: float, talk: float,
) -> Call:  # fmt: skip
    end = start + dt.timedelta(seconds=30 + ring + talk)
    answered = end - dt.timedelta(seconds=talk) if talk else None
    channel = key.rsplit("/", 1)[-1]
    return (
        key, channel, "bench", "bench", channel, number, "", "1022", start, answered, end,
        "entry>main-menu", digits, branch, unit, endpoint, disposition, round(ring, 3),
        round(talk, 3), "bench", "caller", 16, "Normal Clearing", None,
    )  # fmt: skip


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def load_sqlite(url: str, n: int, chunk: int = 100_000, **kw: Any) -> None:
    """Bulk-load ``n`` calls into a SQLite database already at the current schema."""
    path = make_url(url).database or ""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    call_sql = (
        f"INSERT INTO calls ({','.join(CALL_COLUMNS)}) VALUES ({','.join('?' * len(CALL_COLUMNS))})"
    )
    step_sql = f"INSERT INTO call_steps ({','.join(STEP_COLUMNS)}) VALUES ({','.join('?' * len(STEP_COLUMNS))})"
    rows: list[Call] = []
    steps: list[Step] = []

    def flush() -> None:
        with db:
            db.executemany(call_sql, rows)
            db.executemany(step_sql, steps)
        rows.clear()
        steps.clear()

    for row, its in calls(n, **kw):
        rows.append(tuple(_sqlite_value(v) for v in row))
        steps.extend(tuple(_sqlite_value(v) for v in s) for s in its)
        if len(rows) >= chunk:
            flush()
    flush()
    db.execute("ANALYZE")
    db.close()


async def load_postgres(url: str, n: int, chunk: int = 200_000, **kw: Any) -> None:
    """Bulk-load ``n`` calls into a PostgreSQL database (COPY), then VACUUM ANALYZE."""
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
    try:
        rows: list[Call] = []
        steps: list[Step] = []

        async def flush() -> None:
            async with conn.transaction():
                await conn.copy_records_to_table("calls", records=rows, columns=CALL_COLUMNS)
                await conn.copy_records_to_table("call_steps", records=steps, columns=STEP_COLUMNS)
            rows.clear()
            steps.clear()

        for row, its in calls(n, **kw):
            rows.append(row)
            steps.extend(its)
            if len(rows) >= chunk:
                await flush()
        await flush()
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
