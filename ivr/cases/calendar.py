"""Working days over the hotline's own office calendar (a schedule of the routing file).

Nothing is re-implemented: a day is a working day when :func:`ivr.flow.hours.office_state`
finds the office open at the start of one of that day's opening ranges, so weekends, Vietnamese
public holidays (the `holidays` package) and the province's dated overrides (days off, make-up
working days) count exactly as they do for calls.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.flow.hours import OfficeState, office_state
from ivr.routing.model import WEEKDAYS, Schedule

ONE_DAY = dt.timedelta(days=1)
MAX_SCAN = 3660  # a schedule with no working day at all must not spin forever


class NoWorkingDays(ValueError):
    """The schedule has no working day within ten years."""


def is_working_day(schedule: Schedule, day: dt.date, tz: str) -> bool:
    zone = ZoneInfo(tz)
    starts = [r.start for o in schedule.overrides if o.date == day for r in o.hours]
    starts += [r.start for r in schedule.weekly.get(WEEKDAYS[day.weekday()], [])]
    return any(
        office_state(schedule, dt.datetime.combine(day, t, zone), tz).state is OfficeState.OPEN
        for t in starts
    )


def add_working_days(schedule: Schedule, start: dt.date, days: int, tz: str) -> dt.date:
    """The ``days``-th working day after ``start`` (the day of receipt does not count)."""
    day, left = start, days
    for _ in range(MAX_SCAN):
        if left <= 0:
            return day
        day += ONE_DAY
        if is_working_day(schedule, day, tz):
            left -= 1
    raise NoWorkingDays("lịch làm việc không có ngày làm việc nào trong mười năm")


def working_days_between(schedule: Schedule, start: dt.date, end: dt.date, tz: str) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
    count, day = 0, start
    while day < end:
        day += ONE_DAY
        count += is_working_day(schedule, day, tz)
    return count
