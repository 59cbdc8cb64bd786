"""The per-day rollups (call_days, call_hours) a month's report by branch reads at scale: migration
0010 fills them from the hourly rollups as a rebuild would; a day's calls land on the hotline's
local day (a call at 23:59 is that day's); the report's classification of calls with no office-
hours step asks the schedule once per day and stretch yet answers as office_state does."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.hours import office_state
from ivr.reports.query import classifier
from ivr.routing.model import HoursNode, Routing
from ivr.store.db import downgrade, upgrade
from ivr.store.rollups import day_of, rebuild
from ivr.store.sql import write_ops
from models import call_days, call_hours
from tests.test_report_measures import fixture_calls
from tests.test_rollups import _ops, kept_equals_rebuild, rollup_rows, with_engine

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def test_migration_fills_the_day_rollups_as_a_rebuild_does(db_url: str) -> None:
    ops = [op for c in fixture_calls() for op in _ops(c, finished=True)]

    async def written(engine: AsyncEngine) -> tuple[list[Any], ...]:
        await write_ops(engine, ops)
        await rebuild(engine)
        return await rollup_rows(engine)

    rebuilt = with_engine(db_url, written)
    assert rebuilt[2]
    assert rebuilt[3]
    asyncio.run(asyncio.to_thread(downgrade, db_url, "0009"))  # drops call_days, call_hours
    asyncio.run(asyncio.to_thread(upgrade, db_url))  # 0010 again: filled from call_rollups
    assert with_engine(db_url, rollup_rows) == rebuilt
    assert with_engine(db_url, kept_equals_rebuild) == len(fixture_calls())


def test_a_call_at_local_midnight_minus_one_belongs_to_that_day(db_url: str) -> None:
    """A fallback call (no hours step) at 23:59 and one at 00:00 local: two days, their minutes
    kept; the writer's rows equal a rebuild's."""
    (call,) = [c for c in fixture_calls() if c.disposition == "fallback"][:1]
    late = _ops(call, finished=True)[0][1] | {"id": "late", "channel_id": "late"}
    late["started_at"] = dt.datetime(2026, 11, 24, 23, 59, 30, tzinfo=VN)
    early = late | {"id": "early", "channel_id": "early"}
    early["started_at"] = dt.datetime(2026, 11, 25, 0, 0, 10, tzinfo=VN)

    async def go(engine: AsyncEngine) -> list[tuple[Any, ...]]:
        await write_ops(engine, [("call", late), ("call", early)])
        assert await kept_equals_rebuild(engine) == 2
        async with engine.connect() as c:
            days = await c.execute(select(call_days.c.day, call_days.c.minute, call_days.c.hours))
            hours = await c.execute(select(call_hours.c.slot, call_hours.c.calls))
            return [*sorted(tuple(r) for r in days), *sorted(tuple(r) for r in hours)]

    found = with_engine(db_url, go)
    utc = dt.UTC
    assert found == [
        (dt.datetime(2026, 11, 23, 17, tzinfo=utc), 23 * 60 + 59, ""),
        (dt.datetime(2026, 11, 24, 17, tzinfo=utc), 0, ""),
        (dt.datetime(2026, 11, 24, 16, tzinfo=utc), 1),  # UTC hours: 23:00 and 00:00 local
        (dt.datetime(2026, 11, 24, 17, tzinfo=utc), 1),
    ]
    assert day_of(dt.datetime(2026, 11, 24, 16, 59, tzinfo=utc), "") == found[0][:2]


def test_the_report_classifier_answers_as_office_state_every_minute(routing: Routing) -> None:
    """Over Tết 2027 (public holidays), a day off and a swapped working day (the routing's
    overrides), and ordinary weeks; on and off the minute."""
    classify = classifier(routing)
    assert classify is not None
    entry = routing.nodes[routing.hotline.entry]
    assert isinstance(entry, HoursNode)
    schedule, tz = routing.schedule_for(entry), routing.hotline.timezone
    at = dt.datetime(2027, 1, 30, tzinfo=VN)
    states = set()
    while at < dt.datetime(2027, 2, 22, tzinfo=VN):
        for moment in (at, at + dt.timedelta(seconds=59, microseconds=999_999)):
            expected = office_state(schedule, moment, tz).state.value
            assert classify(moment) == expected, moment
            states.add(expected)
        at += dt.timedelta(minutes=1)
    assert states == {"open", "closed", "holiday"}
