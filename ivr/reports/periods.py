"""The period a report covers: whole local days in the hotline's time zone.

``--from``/``--to`` (both days included), or ``--period`` as 2026-10, 2026-Q3, 2026, this-week,
last-week, this-month, last-month, today, yesterday. A call at 23:59 local time belongs to that
day, whatever UTC says.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

TZ = "Asia/Ho_Chi_Minh"


class PeriodError(ValueError):
    """A period that cannot be read; the message says what is expected, in Vietnamese."""


@dataclass(frozen=True, slots=True)
class Period:
    first: dt.date  # first local day, included
    last: dt.date  # last local day, included
    tz: str = TZ

    @property
    def start(self) -> dt.datetime:
        """The first instant of the period (aware, local midnight)."""
        return dt.datetime.combine(self.first, dt.time(), ZoneInfo(self.tz))

    @property
    def end(self) -> dt.datetime:
        """The first instant after the period."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), ZoneInfo(self.tz))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def label(self) -> str:
        return f"{self.first:%d/%m/%Y} – {self.last:%d/%m/%Y}"


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"ngày '{text}' không hợp lệ: cần dạng YYYY-MM-DD") from None


def period_of(
    since: str | None, until: str | None, named: str | None, today: dt.date, tz: str = TZ
) -> Period:
    """The period from the command's flags; ``today`` is the local date (for this-week...)."""
    if named is not None:
        if since is not None or until is not None:
            raise PeriodError("dùng --period hoặc --from/--to, không dùng cả hai")
        first, last = named_period(named, today)
        return Period(first, last, tz)
    if since is None or until is None:
        raise PeriodError("cần --from và --to (YYYY-MM-DD), hoặc --period (vd. 2026-10)")
    first, last = parse_day(since), parse_day(until)
    if last < first:
        raise PeriodError(f"--to ({last}) đứng trước --from ({first})")
    return Period(first, last, tz)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def named_period(text: str, today: dt.date) -> tuple[dt.date, dt.date]:
    t = text.strip().lower()
    monday = today - dt.timedelta(days=today.weekday())
    relative = {
        "today": (today, today),
        "yesterday": (today - dt.timedelta(days=1), today - dt.timedelta(days=1)),
        "this-week": (monday, monday + dt.timedelta(days=6)),
        "last-week": (monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)),
        "this-month": (today.replace(day=1), _month_end(today.year, today.month)),
    }
    if t in relative:
        return relative[t]
    if t == "last-month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})", t):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"tháng '{text}' không hợp lệ")
        return dt.date(year, month, 1), _month_end(year, month)
    if m := re.fullmatch(r"(\d{4})-q([1-4])", t):
        year, q = int(m[1]), int(m[2])
        return dt.date(year, 3 * q - 2, 1), _month_end(year, 3 * q)
    if m := re.fullmatch(r"(\d{4})", t):
        return dt.date(int(m[1]), 1, 1), dt.date(int(m[1]), 12, 31)
    raise PeriodError(
        f"kỳ '{text}' không hợp lệ: dùng 2026-10 (tháng), 2026-Q3 (quý), 2026 (năm), "
        "this-week, last-week, this-month, last-month, today, yesterday"
    )
