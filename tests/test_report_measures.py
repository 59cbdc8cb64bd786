"""Each measure of MEASURES.md computed by hand from fixture calls stored in a SQLite store.

The week of Monday 23 to Sunday 29 November 2026 (Asia/Ho_Chi_Minh). Figures are worked out in
the comments beside each call and in each test, never by the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.reports.facts import CallFact
from ivr.reports.grouping import Grouper
from ivr.reports.measures import Options
from ivr.reports.periods import Period
from ivr.reports.query import report_from_store
from ivr.reports.report import Report
from ivr.routing.model import Routing
from ivr.store.db import make_engine, sqlite_url, upgrade
from models import Call, CallStep, Voicemail
from tests.conftest import vn_time

WEEK = Period(dt.date(2026, 11, 23), dt.date(2026, 11, 29))


def _call(key: str, start: str, disposition: str, **kw: object) -> Call:
    at = vn_time(start)
    steps = kw.pop("steps", [])
    call = Call(
        id=f"node-a/{key}", channel_id=key, node="node-a", controller="c1", linked_id=key,
        caller_number="0912345678", started_at=at, ended_at=at + dt.timedelta(minutes=5),
        disposition=disposition, routing_version="v1", **kw,
    )  # fmt: skip
    for seq, (node, kind, outcome, inp, secs) in enumerate(steps):  # type: ignore[attr-defined]
        call.steps.append(
            CallStep(seq=seq, node=node, kind=kind, outcome=outcome, input=inp,
                     at=at + dt.timedelta(seconds=secs))
        )  # fmt: skip
    return call


def fixture_calls() -> list[Call]:
    open_ = ("start", "hours", "open", "", 0)
    return [
        # C1 Mon 09:00 branch 1 answered: chose at +10 s, dial step written at +120 s after 100 s
        # of talk, so the desk answered at +20 s: waiting 10 s; rang 6 s (within 20 s)
        _call(
            "c1",
            "2026-11-23 09:00",
            "answered",
            branch="1",
            digits="1",
            endpoint="PJSIP/cchc-1",
            wait_seconds=6,
            talk_seconds=100,
            steps=[
                open_,
                ("main-menu", "menu", "chosen", "1", 10),
                ("branch-1", "dial", "answered", "", 120),
            ],
        ),
        # C2 Mon 23:59:30 (16:59:30 UTC): closed, message left; belongs to Monday
        _call(
            "c2",
            "2026-11-23 23:59:30",
            "voicemail",
            steps=[
                ("start", "hours", "closed", "", 0),
                ("vm-closed", "voicemail", "recorded", "", 30),
            ],
        ),
        # C11 Mon 09:30 fallback row (no controller saw it), nobody talked: open by the schedule
        _call("c11", "2026-11-23 09:30", "fallback"),
        # C3 Tue 10:00 branch 4 answered after 25 s of ringing (outside 20 s); chose at +5 s,
        # step at +180 s after 120 s of talk: answered at +60 s, waiting 55 s
        _call(
            "c3",
            "2026-11-24 10:00",
            "answered",
            branch="4",
            digits="4",
            endpoint="PJSIP/cchc-4a",
            wait_seconds=25,
            talk_seconds=120,
            steps=[
                open_,
                ("main-menu", "menu", "chosen", "4", 5),
                ("branch-4", "dial", "answered", "", 180),
            ],
        ),
        # C4 Tue 10:30 left in the menu
        _call(
            "c4",
            "2026-11-24 10:30",
            "abandoned",
            steps=[open_, ("main-menu", "menu", "no_input", "", 8)],
        ),
        # C5 Tue 11:00 branch 2, hung up after 3 s of ringing: a short abandon
        _call(
            "c5",
            "2026-11-24 11:00",
            "abandoned",
            branch="2",
            digits="2",
            wait_seconds=3,
            steps=[open_, ("main-menu", "menu", "chosen", "2", 5)],
        ),
        # C6 Wed 14:00 branch 2, hung up after 12 s of ringing
        _call(
            "c6",
            "2026-11-25 14:00",
            "abandoned",
            branch="2",
            digits="2",
            wait_seconds=12,
            steps=[open_, ("main-menu", "menu", "chosen", "2", 5)],
        ),
        # C7 Wed 15:00 branch 9, nobody answered, no message (the recording had no speech)
        _call(
            "c7",
            "2026-11-25 15:00",
            "no_answer",
            branch="9",
            digits="9",
            wait_seconds=15,
            steps=[
                open_,
                ("main-menu", "menu", "chosen", "9", 5),
                ("branch-9", "dial", "no_answer", "", 25),
                ("vm-9", "voicemail", "no_message", "", 40),
            ],
        ),
        # C8 Thu 09:00 directory: old code 3104 → 3002, found at +20 s, rang 4 s, step at +120 s
        # after 60 s of talk: answered at +60 s, waiting 40 s
        _call(
            "c8",
            "2026-11-26 09:00",
            "answered",
            unit="3002",
            digits="03104",
            endpoint="PJSIP/dv-3002",
            wait_seconds=4,
            talk_seconds=60,
            steps=[
                open_,
                ("main-menu", "menu", "chosen", "0", 5),
                ("directory", "directory", "replaced", "3104", 20),
                ("directory", "directory", "answered", "", 120),
            ],
        ),
        # C9 Fri 09:00 on a holiday the routing declared: closed, no message
        _call("c9", "2026-11-27 09:00", "closed", steps=[("start", "hours", "holiday", "", 0)]),
        # C10 Sat 10:00 fallback row, an operator talked 30 s: answered, closed by the schedule
        _call("c10", "2026-11-28 10:00", "fallback", talk_seconds=30),
        # outside the week by a minute on each side (local time)
        _call("before", "2026-11-22 23:59", "answered", branch="1"),
        _call("after", "2026-11-30 00:00:30", "answered", branch="1"),
    ]


def store_with(tmp: Path, calls: list[Call]) -> str:
    url = sqlite_url(tmp)
    upgrade(url)

    async def fill() -> None:
        engine = make_engine(url)
        async with AsyncSession(engine) as s, s.begin():
            s.add_all(calls)
            s.add(Voicemail(call_id="node-a/c2", name="vm", location="/x", duration_seconds=20,
                            size_bytes=1, sha256="0" * 64, recorded_at=vn_time("2026-11-24 00:00")))  # fmt: skip
        await engine.dispose()

    asyncio.run(fill())
    return url


def week_report(url: str, routing: Routing, by: list[str], **opts: float) -> Report:
    async def go() -> Report:
        engine = make_engine(url, create=False)
        try:
            return await report_from_store(engine, WEEK, by, routing, Options(**opts))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def report(tmp_path: Path, routing: Routing) -> Report:
    return week_report(store_with(tmp_path, fixture_calls()), routing, ["branch", "day"])


def test_received_includes_fallback_and_splits_by_hours(report: Report) -> None:
    t = report.total
    assert t.received == 11  # c1–c11; "before" and "after" are outside the local week
    assert (t.received_open, t.received_closed, t.received_holiday) == (8, 2, 1)  # c2, c10; c9


def test_answered_rate_leaves_out_closed_and_holiday(report: Report) -> None:
    assert report.total.answered == 4  # c1, c3, c8, and the fallback c10 that talked
    assert report.total.answered_rate == 0.5  # 4 ÷ (11 − 2 − 1)


def test_abandons_voicemail_and_no_answer(report: Report) -> None:
    t = report.total
    assert (t.abandoned_menu, t.abandoned_ringing, t.abandoned_short) == (1, 2, 1)
    assert t.voicemail == 1  # c2
    assert t.no_answer_no_message == 1  # c7


def test_short_abandon_threshold_is_configurable(tmp_path: Path, routing: Routing) -> None:
    url = store_with(tmp_path, fixture_calls())
    assert week_report(url, routing, [], short_abandon_seconds=15).total.abandoned_short == 2


def test_service_level(tmp_path: Path, routing: Routing, report: Report) -> None:
    # routed: c1, c3, c7, c8 rang a desk, c5 and c6 hung up while it rang → 6
    assert report.total.routed == 6
    assert report.total.answered_in_time == 2  # c1 (6 s), c8 (4 s); c3 rang 25 s
    assert report.total.service_level == 0.3333
    url = store_with(tmp_path / "b", fixture_calls())
    assert week_report(url, routing, [], service_seconds=30).total.service_level == 0.5


def test_waiting_and_talk_times(report: Report) -> None:
    w, t = report.total.waiting, report.total.talk
    assert (w.count, w.mean, w.median, w.p90) == (3, 35.0, 40.0, 55.0)  # 10, 55, 40
    assert (t.count, t.mean, t.median, t.p90) == (4, 77.5, 80.0, 120.0)  # 100, 120, 60, 30


def test_days_are_local_and_busiest(report: Report) -> None:
    assert report.per_day == {
        "2026-11-23": 3, "2026-11-24": 3, "2026-11-25": 2, "2026-11-26": 1,
        "2026-11-27": 1, "2026-11-28": 1, "2026-11-29": 0,
    }  # fmt: skip
    assert report.busiest_hour == 9  # c1, c11, c8, c9
    assert report.busiest_weekday == 1  # Monday and Tuesday have 3 each: the earlier wins
    assert report.heatmap[0][23] == 1  # c2 at 23:59 Monday


def test_by_branch_keys_and_lookups(report: Report) -> None:
    rows = {r.key: r.figures for r in report.groups["branch"]}
    assert {k: f.received for k, f in rows.items()} == {
        "1": 1,
        "2": 2,
        "4": 1,
        "9": 1,
        "(không có)": 6,
    }
    assert rows["2"].abandoned_ringing == 2
    assert report.keys_per_branch == {"1": {"1": 1}, "2": {"2": 2}, "4": {"4": 1}, "9": {"9": 1}}
    assert report.lookups_per_unit == {"3104": 1}
    days = [(r.key, r.figures.received) for r in report.groups["day"]]
    assert days == [
        (f"2026-11-{d}", n) for d, n in ((23, 3), (24, 3), (25, 2), (26, 1), (27, 1), (28, 1))
    ]


def _fact(unit: str, when: str) -> CallFact:
    return CallFact(
        key="k", started_at=vn_time(when), disposition="answered", branch=None, unit=unit,
        endpoint=None, digits="", hours="open", routed=True, answered=True, ring_seconds=1,
        waiting_seconds=1, talk_seconds=1, abandoned=None, voicemail=False, lookups=(),
    )  # fmt: skip


def test_unit_as_of_groups_old_units_under_their_successor(routing: Routing) -> None:
    old = _fact("3104", "2025-06-20 09:00")  # Phường IV, merged into phường Vị Tân (3002)
    assert Grouper(routing, WEEK.tz).key("unit", old) == "3104"
    assert Grouper(routing, WEEK.tz, dt.date(2026, 1, 1)).key("unit", old) == "3002"
    assert (
        Grouper(routing, WEEK.tz).key("department", _fact("1001", "2026-01-05 09:00"))
        == "Sở Nội vụ"
    )
