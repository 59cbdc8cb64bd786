"""The call rollups: a report read from them equals the report read from every call row (counts,
means, days, hours, keys, lookups); the writer keeps them equal to a rebuild however batches
arrive (in progress then finished, written twice); a rebuild run twice gives the same rows."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cli import main
from ivr.reports.facts import read_facts
from ivr.reports.grouping import Grouper
from ivr.reports.measures import Durations, Figures, Options
from ivr.reports.query import classifier, report_from_store
from ivr.reports.report import Report, build_report
from ivr.reports.rollups import report_from_rollups
from ivr.routing.model import Routing
from ivr.store.db import make_engine
from ivr.store.lease import sweep
from ivr.store.reconcile.task import Reconciler
from ivr.store.rollups import FACT_STEPS, rebuild
from ivr.store.rows import Op
from ivr.store.sql import write_ops
from models import Call, call_days, call_hours, call_rollups, lookup_rollups
from models.rollups import EDGES
from tests.conftest import ROOT
from tests.test_reconcile_store import LATER, LINES
from tests.test_report_measures import WEEK, fixture_calls, store_with

BY = ["branch", "unit", "department", "day", "week", "month", "hour", "weekday", "disposition"]
T = TypeVar("T")


def with_engine(url: str, job: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = make_engine(url, create=False)
        try:
            return await job(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def both(
    engine: AsyncEngine, routing: Routing, by: list[str] = BY
) -> tuple[Report, Report | None]:
    grouper, classify = Grouper(routing, WEEK.tz), classifier(routing)
    facts = read_facts(engine, WEEK.start, WEEK.end, classify)
    raw = await build_report(facts, WEEK, by, grouper)
    rolled = await report_from_rollups(engine, WEEK, by, grouper, classify, min_days=0)
    return raw, rolled


def exact(f: Figures) -> Figures:
    """The figures rollups give exactly: all but medians and 90th percentiles."""
    return dataclasses.replace(
        f,
        waiting=Durations(f.waiting.count, f.waiting.mean, None, None),
        talk=Durations(f.talk.count, f.talk.mean, None, None),
    )


def within_bucket(raw: Durations, rolled: Durations) -> None:
    for value, edge in ((raw.median, rolled.median), (raw.p90, rolled.p90)):
        if value is None:
            assert edge is None
            continue
        assert edge is not None
        assert edge in EDGES
        lower = max((e for e in EDGES if e < edge), default=0)
        assert lower <= value <= edge or (edge == EDGES[-1] and value >= edge)


async def rollup_rows(engine: AsyncEngine) -> tuple[list[Any], ...]:
    """The rows of every rollup table that count something: call_rollups first."""
    found: list[list[Any]] = []
    async with engine.connect() as c:
        for table in (call_rollups, lookup_rollups, call_days, call_hours):
            rows = await c.execute(select(table).order_by(*table.primary_key))
            found.append([tuple(r) for r in rows if any(r[len(table.primary_key.columns) :])])
    return tuple(found)


DAILY = ["branch", "disposition", "day", "week", "month", "weekday"]  # read from call_days


@pytest.mark.parametrize("by", [BY, DAILY, ["branch"], ["disposition"], []])
def test_report_from_rollups_equals_the_report_from_call_rows(
    tmp_path: Path, routing: Routing, by: list[str]
) -> None:
    """Every grouping (hourly rollups: units, hours); those the per-day rollups answer, with and
    without a time grouping (the fallback call is classified from its own minute then, not from
    the slot of a time grouping)."""
    url = store_with(tmp_path, fixture_calls())

    async def go(engine: AsyncEngine) -> tuple[Report, Report | None]:
        assert await rebuild(engine) == len(fixture_calls())
        return await both(engine, routing, by)

    raw, rolled = with_engine(url, go)
    assert rolled is not None
    assert exact(rolled.total) == exact(raw.total)
    assert rolled.total.received == 11  # the week's calls, fallback included (by hand)
    assert rolled.total.received_closed + rolled.total.received_holiday > 0
    for name in by:
        got = [(r.key, r.label, exact(r.figures)) for r in rolled.groups[name]]
        assert got == [(r.key, r.label, exact(r.figures)) for r in raw.groups[name]], name
    for name in ("per_day", "per_branch", "heatmap", "busiest_hour", "busiest_weekday"):
        assert getattr(rolled, name) == getattr(raw, name), name
    assert rolled.keys_per_branch == raw.keys_per_branch
    assert rolled.lookups_per_unit == raw.lookups_per_unit == {"3104": 1}
    within_bucket(raw.total.waiting, rolled.total.waiting)
    within_bucket(raw.total.talk, rolled.total.talk)


def test_rebuild_is_idempotent(tmp_path: Path) -> None:
    url = store_with(tmp_path, fixture_calls())

    async def go(engine: AsyncEngine) -> None:
        await rebuild(engine)
        first = await rollup_rows(engine)
        assert all(first)  # every table counts something
        await rebuild(engine)
        assert await rollup_rows(engine) == first

    with_engine(url, go)


def _row(obj: Any) -> dict[str, Any]:
    """An unsaved ORM object as the writer's row, column defaults filled in."""
    row = {}
    for c in obj.__table__.columns:
        value = getattr(obj, c.name)
        row[c.name] = c.default.arg if value is None and c.default is not None else value
    return row


def _ops(call: Call, *, finished: bool) -> list[Op]:
    row = _row(call)
    if not finished:
        return [("call", {**row, "disposition": "in_progress", "ended_at": None})]
    return [("call", row), *(("step", _row(s) | {"call_id": call.id}) for s in call.steps)]


def test_the_writer_keeps_rollups_equal_to_a_rebuild(db_url: str) -> None:
    url = db_url
    calls = fixture_calls()
    started = [op for c in calls for op in _ops(c, finished=False)]
    finished = [op for c in calls for op in _ops(c, finished=True)]

    async def go(engine: AsyncEngine) -> None:
        await write_ops(engine, started[:5])
        await write_ops(engine, started)  # some again
        await write_ops(engine, finished[: len(finished) // 2])
        await write_ops(engine, finished)
        await write_ops(engine, finished)  # a batch written again changes nothing
        await write_ops(engine, started)  # late "in progress" versions reopen nothing
        assert await kept_equals_rebuild(engine) == len(calls)

    with_engine(url, go)


def test_steps_written_one_batch_at_a_time_keep_the_rollups(db_url: str) -> None:
    """As a live call writes them: each step in its own batch before the call ends. A batch of
    steps no report reads is skipped by the rollup upkeep; one with a step it reads is not."""
    calls = fixture_calls()
    started = [op for c in calls for op in _ops(c, finished=False)]
    steps = [op for c in calls for op in _ops(c, finished=True) if op[0] == "step"]
    assert {row["kind"] for _, row in steps} - FACT_STEPS, "no step of a kind no report reads"
    assert {row["kind"] for _, row in steps} & FACT_STEPS, "no step a report reads"
    finished = [op for c in calls for op in _ops(c, finished=True) if op[0] == "call"]

    async def go(engine: AsyncEngine) -> None:
        await write_ops(engine, started)
        for op in steps:  # the calls' rollup rows move while they are still in progress
            await write_ops(engine, [op])
        assert await kept_equals_rebuild(engine) == len(calls)
        await write_ops(engine, finished)
        assert await kept_equals_rebuild(engine) == len(calls)

    with_engine(db_url, go)


async def kept_equals_rebuild(engine: AsyncEngine) -> int:
    """The rollups as kept equal a rebuild's; the calls they count."""
    kept = await rollup_rows(engine)
    await rebuild(engine)
    assert await rollup_rows(engine) == kept
    return sum(r[6] for r in kept[0])  # column 6: calls


def test_interrupted_and_fallback_calls_are_kept_too(db_url: str, tmp_path: Path) -> None:
    """The lease sweep closing calls in progress, and the reconciler's fallback rows."""
    started = [op for c in fixture_calls()[:4] for op in _ops(c, finished=False)]
    cel = tmp_path / "hotline.csv"
    cel.write_text("".join(LINES), encoding="utf-8")

    async def go(engine: AsyncEngine) -> None:
        await write_ops(engine, started)  # their controller "c1" holds no lease
        assert await sweep(engine, dt.datetime.now(dt.UTC)) == 4
        await Reconciler(engine, cel, settle=30, clock=lambda: LATER).once()  # 2 fallback rows
        assert await kept_equals_rebuild(engine) == 6
        async with engine.connect() as c:
            found = await c.execute(
                select(call_rollups.c.disposition, func.sum(call_rollups.c.calls)).group_by(
                    call_rollups.c.disposition
                )
            )
            assert {d: n for d, n in found if n} == {"interrupted": 4, "fallback": 2}

    with_engine(db_url, go)


def test_rollups_that_miss_calls_are_not_used(tmp_path: Path, routing: Routing) -> None:
    """Calls stored before the rollups existed (no rebuild): the report reads every row."""
    url = store_with(tmp_path, fixture_calls())

    async def go(engine: AsyncEngine) -> tuple[Report | None, Report | None, Report]:
        await rebuild(engine)
        grouper, classify = Grouper(routing, WEEK.tz), classifier(routing)
        async with engine.begin() as c:
            await c.execute(delete(call_days).where(call_days.c.branch == "2"))
        hourly = await report_from_rollups(engine, WEEK, ["branch"], grouper, classify, min_days=0)
        async with engine.begin() as c:
            await c.execute(delete(call_rollups).where(call_rollups.c.branch == "2"))
        rolled = await report_from_rollups(engine, WEEK, ["branch"], grouper, None, min_days=0)
        return hourly, rolled, await report_from_store(engine, WEEK, ["branch"], routing)

    hourly, rolled, report = with_engine(url, go)
    assert hourly is not None  # per-day rollups short of calls: the hourly ones answer
    assert [r.figures.received for r in hourly.groups["branch"]] == [
        r.figures.received for r in report.groups["branch"]
    ]
    assert rolled is None
    assert report.total.received == 11


@pytest.mark.parametrize(
    ("by", "options", "min_days"),
    [
        (["phone"], Options(), 0),  # a call's phone is not in the rollups
        (["branch"], Options(service_seconds=30), 0),  # counted with the default thresholds
        (["day"], Options(), 8),  # a week is shorter than that: exact percentiles from rows
    ],
)
def test_what_rollups_cannot_answer_reads_every_row(
    tmp_path: Path, by: list[str], options: Options, min_days: int
) -> None:
    url = store_with(tmp_path, fixture_calls())

    async def go(engine: AsyncEngine) -> Report | None:
        await rebuild(engine)
        grouper = Grouper(None, WEEK.tz)
        return await report_from_rollups(engine, WEEK, by, grouper, None, options, min_days)

    assert with_engine(url, go) is None


def test_readme_rebuild_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"^ivr db rollups rebuild$", readme, re.M)
    url = store_with(tmp_path, fixture_calls())
    assert main([*shlex.split(command)[1:], "--db", url]) == 0
    assert "13 cuộc gọi" in capsys.readouterr().out  # the fixture's 13 calls, by hand
