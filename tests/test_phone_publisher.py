"""The phones' states written for the console (ivr.ami.publish) at the size of a province: every
department, district and commune has a desk phone, and a busy second changes dozens of them.
The rows are right on both backends, and a publish costs the same few statements however many
phones changed (it cost two per phone, on the calls' event loop)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, select

from ivr.ami.publish import PhonePublisher
from ivr.store.db import make_engine
from models import PhoneStatus

PHONES = 300


class Phone:
    def __init__(self, state: str) -> None:
        self.state = state


async def test_a_province_of_phones_is_written_in_a_few_statements(db_url: str) -> None:
    engine = make_engine(db_url)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(_c: Any, _cur: Any, sql: str, *_: Any) -> None:
        statements.append(sql)

    start = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
    clock = [start]
    phones = {f"ubnd-xa-{i:03d}": Phone("reachable") for i in range(PHONES)}
    publisher = PhonePublisher(engine, phones, "node-a", heartbeat=15, clock=lambda: clock[0])
    try:
        assert await publisher.publish() == PHONES
        first = len(statements)
        for i in range(0, PHONES, 5):  # a busy second: 60 of them ring or answer
            phones[f"ubnd-xa-{i:03d}"].state = "inuse"
        clock[0] = start + dt.timedelta(seconds=1)
        statements.clear()
        assert await publisher.publish() == 60
        assert first <= 3  # the upsert and the heartbeat's update (and SQLite's BEGIN)
        assert len(statements) == 1  # the upsert
        async with engine.connect() as conn:
            rows = {r.endpoint: r for r in await conn.execute(select(PhoneStatus))}
    finally:
        await engine.dispose()
    assert len(rows) == PHONES
    busy = {name for name, r in rows.items() if r.state == "inuse"}
    assert busy == {f"ubnd-xa-{i:03d}" for i in range(0, PHONES, 5)}
    for name, r in rows.items():
        assert r.node == "node-a"
        changed_at = clock[0] if name in busy else start
        assert (_utc(r.since), _utc(r.seen_at)) == (changed_at, changed_at)


def _utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
