"""A case's deadlines and where it stands against them, in working days. Pure."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ivr.cases.calendar import add_working_days, working_days_between
from ivr.cases.rules import Rules, RulesError
from ivr.cases.status import OPEN, Status
from ivr.routing.model import Routing, Schedule


@dataclass(frozen=True, slots=True)
class Deadlines:
    forward_due: dt.date  # forward to the owner (NĐ 20/2008 Điều 9 khoản 1 điểm d)
    answer_due: dt.date  # answer the citizen (configurable; see ivr.cases.rules)


class Standing(enum.StrEnum):
    DONE = "done"  # answered, closed or rejected
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    ON_TRACK = "on_track"


def office_schedule(routing: Routing, rules: Rules) -> Schedule:
    found = routing.schedules.get(rules.schedule)
    if found is None:
        raise RulesError(f"tệp định tuyến không có lịch '{rules.schedule}' để tính ngày làm việc")
    return found


def local_day(routing: Routing, at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(routing.hotline.timezone)).date()


def deadlines(routing: Routing, rules: Rules, received_at: dt.datetime) -> Deadlines:
    schedule, tz = office_schedule(routing, rules), routing.hotline.timezone
    day = local_day(routing, received_at)
    return Deadlines(
        forward_due=add_working_days(schedule, day, rules.forward_days, tz),
        answer_due=add_working_days(schedule, day, rules.answer_days, tz),
    )


def due_of(status: Status, d: Deadlines) -> dt.date | None:
    """The deadline that matters now: forwarding while received, answering while in hand."""
    if status is Status.RECEIVED:
        return d.forward_due
    return d.answer_due if status in OPEN else None


def standing(
    routing: Routing, rules: Rules, status: Status, d: Deadlines, today: dt.date
) -> Standing:
    due = due_of(status, d)
    if due is None:
        return Standing.DONE
    if today > due:
        return Standing.OVERDUE
    left = working_days_between(
        office_schedule(routing, rules), today, due, routing.hotline.timezone
    )
    return Standing.DUE_SOON if left <= rules.due_soon_days else Standing.ON_TRACK
