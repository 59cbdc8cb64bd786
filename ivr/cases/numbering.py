"""Case numbers: ``PAKN-2026-0013``, counted per year (the hotline's local year of receipt).

The counter is one row per year in ``case_counters``; :func:`next_number` bumps it inside the
transaction that inserts the case, so a number is never given twice and never skipped by a
rollback. Two writers opening a year's first case at once both try to insert the row: the
loser's primary-key violation is retried by the caller (ivr.cases.store).
"""

from __future__ import annotations

import re

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import CaseCounter

PREFIX = "PAKN"
NUMBER_RE = re.compile(rf"^{PREFIX}-(\d{{4}})-(\d{{4,}})$")


def format_number(year: int, seq: int) -> str:
    return f"{PREFIX}-{year:04d}-{seq:04d}"


def parse_number(text: str) -> tuple[int, int] | None:
    m = NUMBER_RE.match(text.strip().upper())
    return (int(m.group(1)), int(m.group(2))) if m else None


async def next_number(session: AsyncSession, year: int) -> str:
    """Bump the year's counter (creating it at 1) in the session's transaction; the write lock
    it takes is held until that transaction ends."""
    bumped = await session.execute(
        update(CaseCounter).where(CaseCounter.year == year).values(last=CaseCounter.last + 1)
    )
    if getattr(bumped, "rowcount", 0) == 0:
        await session.execute(insert(CaseCounter).values(year=year, last=1))
    last = (await session.scalars(select(CaseCounter.last).where(CaseCounter.year == year))).one()
    return format_number(year, last)
