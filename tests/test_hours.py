from __future__ import annotations

import pytest

from ivr.flow.hours import OfficeState, office_state
from ivr.routing.model import Routing

from .conftest import vn_time


@pytest.mark.parametrize(
    ("when", "state", "reason_part"),
    [
        ("2026-11-25 09:00", OfficeState.OPEN, "trong giờ"),  # Wednesday morning
        ("2026-11-25 07:29", OfficeState.CLOSED, "ngoài giờ"),  # before opening
        ("2026-11-25 12:00", OfficeState.CLOSED, "ngoài giờ"),  # lunch break
        ("2026-11-25 17:00", OfficeState.CLOSED, "ngoài giờ"),  # closing time is exclusive
        ("2026-11-28 09:00", OfficeState.CLOSED, "ngoài giờ"),  # Saturday
        ("2027-02-06 09:00", OfficeState.HOLIDAY, "Tết Nguyên Đán"),  # first day of Tết 2027
        ("2027-02-08 10:00", OfficeState.HOLIDAY, "Mùng ba"),
        ("2026-04-26 09:00", OfficeState.HOLIDAY, "Hùng Vương"),  # Giỗ Tổ Hùng Vương 2026
        ("2027-02-03 09:00", OfficeState.CLOSED, "Nghỉ bù"),  # a Wednesday closed by override
        ("2027-02-20 09:00", OfficeState.OPEN, "Làm bù"),  # a Saturday opened by override
        ("2027-02-20 12:00", OfficeState.CLOSED, "Làm bù"),  # ...but not at lunch
    ],
)
def test_office_state(routing: Routing, when: str, state: OfficeState, reason_part: str) -> None:
    verdict = office_state(routing.schedules["office"], vn_time(when), "Asia/Ho_Chi_Minh")
    assert verdict.state is state
    assert reason_part in verdict.reason


def test_time_is_read_in_the_hotline_time_zone(routing: Routing) -> None:
    # 02:00 UTC is 09:00 in Hà Nội: open, although it is night in UTC.
    import datetime as dt

    utc = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
    assert (
        office_state(routing.schedules["office"], utc, "Asia/Ho_Chi_Minh").state is OfficeState.OPEN
    )


def test_warm_up_loads_the_holiday_tables_the_first_call_would_build(routing: Routing) -> None:
    """`ivr run` warms them before the first call: the year's and the next, read in the
    hotline's time zone (31/12 at 20:00 UTC is already 2027 in Việt Nam)."""
    import datetime as dt

    from ivr.flow import hours

    hours._holidays.cache_clear()
    new_year = dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.UTC)
    hours.warm_up(routing.schedules.values(), new_year, "Asia/Ho_Chi_Minh")
    assert hours._holidays.cache_info().misses == 2  # 2027 and 2028
    # the first call of 2027 (local time), a holiday of 2028: nothing left to build
    office = routing.schedules["office"]
    assert office_state(office, new_year, "Asia/Ho_Chi_Minh").state is OfficeState.HOLIDAY
    assert office_state(office, vn_time("2028-01-01 09:00"), "Asia/Ho_Chi_Minh").state is (
        OfficeState.HOLIDAY
    )
    assert hours._holidays.cache_info().misses == 2
