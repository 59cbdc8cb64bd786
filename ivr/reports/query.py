"""The thin layer between the store and the report: read a period's call facts, build the
report. Any face (the CLI, a web console, the Ministry DOCX) calls :func:`report_from_store`."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cases.facts import figures_from_store
from ivr.flow.hours import office_state
from ivr.reports.facts import Classify, read_facts
from ivr.reports.feedback import feedback
from ivr.reports.grouping import Grouper
from ivr.reports.measures import Options
from ivr.reports.periods import Period
from ivr.reports.report import Report, build_report, with_feedback
from ivr.reports.rollups import report_from_rollups
from ivr.routing.model import HoursNode, Routing


def classifier(routing: Routing | None) -> Classify | None:
    """Office hours for calls with no recorded `hours` step (fallback rows): the schedule of the
    routing's entry node when it is an hours node, else the "office" schedule."""
    if routing is None:
        return None
    entry = routing.nodes.get(routing.hotline.entry)
    if isinstance(entry, HoursNode):
        schedule = routing.schedule_for(entry)
    elif "office" in routing.schedules:
        schedule = routing.schedules["office"]
    else:
        return None
    tz, zone = routing.hotline.timezone, ZoneInfo(routing.hotline.timezone)
    ranges = [r for rs in schedule.weekly.values() for r in rs]
    ranges += [r for o in schedule.overrides for r in o.hours]
    edges = sorted({t for r in ranges for t in (r.start, r.end)})
    known: dict[tuple[dt.date, int], str] = {}

    def classify(at: dt.datetime) -> str:
        """The state is the same between two consecutive edges of the schedule's time ranges
        (half-open ranges) on a given local day: asked once per day and stretch."""
        local = at.astimezone(zone)
        key = (local.date(), bisect_right(edges, local.time()))
        state = known.get(key)
        if state is None:
            state = known[key] = office_state(schedule, at, tz).state.value
        return state

    return classify


async def report_from_store(
    engine: AsyncEngine,
    period: Period,
    by: Sequence[str],
    routing: Routing | None,
    options: Options | None = None,
    as_of: dt.date | None = None,
) -> Report:
    grouper, classify = Grouper(routing, period.tz, as_of), classifier(routing)
    report = await report_from_rollups(engine, period, by, grouper, classify, options)
    if report is None:  # a short period, or rollups that cannot answer: every call row
        facts = read_facts(engine, period.start, period.end, classify)
        report = await build_report(facts, period, by, grouper, options)
    cases = await figures_from_store(engine, period.start, period.end, period.tz)
    return with_feedback(report, feedback(cases))
