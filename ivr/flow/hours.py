"""Is the office open? Weekly hours, public holidays, dated overrides. Pure functions."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from ivr.routing.model import WEEKDAYS, Schedule


class OfficeState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"


@dataclass(frozen=True, slots=True)
class HoursVerdict:
    state: OfficeState
    reason: str  # human-readable, Vietnamese


def office_state(schedule: Schedule, when: dt.datetime, tz: str) -> HoursVerdict:
    """The office's state at ``when`` (aware), read in the hotline's time zone."""
    local = when.astimezone(ZoneInfo(tz))
    day, now = local.date(), local.time()
    for override in schedule.overrides:
        if override.date == day:
            is_open = any(r.contains(now) for r in override.hours)
            state = OfficeState.OPEN if is_open else OfficeState.CLOSED
            return HoursVerdict(state, override.reason)
    if schedule.public_holidays:
        name = _holidays(schedule.public_holidays, day.year).get(day)
        if name:
            return HoursVerdict(OfficeState.HOLIDAY, str(name))
    ranges = schedule.weekly.get(WEEKDAYS[day.weekday()], [])
    if any(r.contains(now) for r in ranges):
        return HoursVerdict(OfficeState.OPEN, "trong giờ làm việc")
    return HoursVerdict(OfficeState.CLOSED, "ngoài giờ làm việc")


def warm_up(schedules: Iterable[Schedule], when: dt.datetime, tz: str) -> None:
    """Load the holiday tables ``office_state`` reads for this year and the next: the library
    builds one on first use (about 0.1 s of CPU here), which the first call of the day would
    otherwise wait for."""
    year = when.astimezone(ZoneInfo(tz)).year
    for schedule in schedules:
        if schedule.public_holidays:
            for y in (year, year + 1):
                _holidays(schedule.public_holidays, y)


@lru_cache(maxsize=32)
def _holidays(country: str, year: int) -> dict[dt.date, str]:
    table = holidays.country_holidays(country, years=year, language="vi")
    return {d: str(n) for d, n in table.items()}
