"""Cases, pure parts: the status machine, working-day deadlines over the office calendar,
owners from the routing file, masking, rules files, and the figures the reports read."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from ivr.cases.access import Viewer, citizen, may_act, may_see
from ivr.cases.calendar import add_working_days, is_working_day
from ivr.cases.deadlines import Deadlines, Standing, deadlines, standing
from ivr.cases.figures import CaseFact, ScoreFact, period_figures
from ivr.cases.numbering import format_number, parse_number
from ivr.cases.owners import UnknownOwner, owner_of_branch, owner_of_unit
from ivr.cases.rules import DEFAULT_CATEGORIES, Rules, RulesError, load_rules
from ivr.cases.status import RefusedTransition, Status, opened, transition
from ivr.routing.model import Routing

from .conftest import vn_time

S = Status
ALLOWED = {
    (S.RECEIVED, S.FORWARDED),
    (S.RECEIVED, S.REJECTED),
    (S.FORWARDED, S.VERIFYING),
    (S.FORWARDED, S.REJECTED),
    (S.VERIFYING, S.ANSWERED),
    (S.VERIFYING, S.REJECTED),
    (S.ANSWERED, S.CLOSED),
}
AT = vn_time("2026-11-25 09:00")


@pytest.mark.parametrize(("before", "after"), list(itertools.product(Status, Status)))
def test_every_transition_is_allowed_or_refused(before: Status, after: Status) -> None:
    note = "ngoài phạm vi" if after is S.REJECTED else ""
    if (before, after) in ALLOWED:
        change = transition(before, after, "lan", AT, note)
        assert (change.before, change.after, change.who, change.at) == (before, after, "lan", AT)
    else:
        with pytest.raises(RefusedTransition, match="không chuyển được"):
            transition(before, after, "lan", AT, note)


def test_rejection_needs_a_reason_and_every_change_a_person() -> None:
    with pytest.raises(RefusedTransition, match="lý do"):
        transition(S.RECEIVED, S.REJECTED, "lan", AT, "  ")
    with pytest.raises(RefusedTransition, match="--by"):
        transition(S.RECEIVED, S.FORWARDED, " ", AT)
    with pytest.raises(ValueError, match="naive"):
        transition(S.RECEIVED, S.FORWARDED, "lan", AT.replace(tzinfo=None))
    first = opened("lan", AT)
    assert (first.before, first.after) == (None, S.RECEIVED)


def test_numbers() -> None:
    assert format_number(2026, 13) == "PAKN-2026-0013"
    assert format_number(2026, 12345) == "PAKN-2026-12345"
    assert parse_number("pakn-2026-0013") == (2026, 13)
    assert parse_number("PAKN-26-13") is None


# Friday 29/01/2027, 10:00. Working days after it in the routing file's office calendar:
# Mon 1/2 (1), Tue 2/2 (2); Wed 3/2 is the province's extra day off; Tết (the `holidays`
# package) closes 4/2–10/2; Thu 11/2 (3), Fri 12/2 (4), weekend, Mon 15/2 (5) ... Fri 19/2 (9),
# and Sat 20/2 is the make-up working day (10).
RECEIVED = vn_time("2027-01-29 10:00")


def test_deadlines_across_tet_a_weekend_and_a_make_up_day(routing: Routing) -> None:
    d = deadlines(routing, Rules(), RECEIVED)
    assert d == Deadlines(forward_due=dt.date(2027, 2, 15), answer_due=dt.date(2027, 2, 20))
    office, tz = routing.schedules["office"], routing.hotline.timezone
    assert not is_working_day(office, dt.date(2027, 2, 3), tz)  # the province's day off
    assert not is_working_day(office, dt.date(2027, 2, 8), tz)  # Tết, a Monday
    assert is_working_day(office, dt.date(2027, 2, 20), tz)  # a Saturday made a working day
    without = office.model_copy(update={"overrides": []})
    assert add_working_days(without, RECEIVED.date(), 10, tz) == dt.date(2027, 2, 19)


def test_received_on_a_sunday_evening_counts_from_monday(routing: Routing) -> None:
    d = deadlines(routing, Rules(forward_days=1, answer_days=3), vn_time("2026-11-29 21:00"))
    assert d == Deadlines(dt.date(2026, 11, 30), dt.date(2026, 12, 2))


def test_standing_overdue_and_due_soon(routing: Routing) -> None:
    d = Deadlines(forward_due=dt.date(2027, 2, 15), answer_due=dt.date(2027, 2, 20))
    rules = Rules(due_soon_days=2)

    def at(status: Status, day: str) -> Standing:
        return standing(routing, rules, status, d, dt.date.fromisoformat(day))

    assert at(S.RECEIVED, "2027-02-16") is Standing.OVERDUE  # not forwarded in time
    assert at(S.FORWARDED, "2027-02-16") is Standing.ON_TRACK  # 4 working days left
    assert at(S.VERIFYING, "2027-02-18") is Standing.DUE_SOON  # 19/2 and 20/2 left
    assert at(S.VERIFYING, "2027-02-20") is Standing.DUE_SOON  # the last day
    assert at(S.VERIFYING, "2027-02-21") is Standing.OVERDUE
    assert at(S.ANSWERED, "2027-03-30") is Standing.DONE


def test_owner_from_directory_follows_mergers(routing: Routing) -> None:
    old = owner_of_unit(routing, "1005", dt.date(2026, 1, 5))  # Sở TT&TT → Sở KH&CN
    assert (old.unit, old.name) == ("1006", "Sở Khoa học và Công nghệ")
    assert "1005" in old.note
    assert owner_of_unit(routing, "1005", dt.date(2025, 2, 1)).unit == "1005"
    with pytest.raises(UnknownOwner, match="không hoạt động"):
        owner_of_unit(routing, "2001", dt.date(2026, 1, 5))  # districts ended 30/6/2025
    with pytest.raises(UnknownOwner, match="9999"):
        owner_of_unit(routing, "9999", dt.date(2026, 1, 5))


def test_owner_from_branch(routing: Routing) -> None:
    b4 = owner_of_branch(routing, "4", dt.date(2026, 1, 5))
    assert (b4.unit, b4.branch, b4.key) == ("1009", "4", "1009")
    b7 = owner_of_branch(routing, "7", dt.date(2026, 1, 5))  # owner changed on 1/3/2025
    assert b7.unit == "1006"
    b9 = owner_of_branch(routing, "9", dt.date(2026, 1, 5))  # not a directory unit
    assert (b9.unit, b9.name, b9.key) == (None, "Tổ vận hành tổng đài", "branch:9")
    with pytest.raises(UnknownOwner):
        owner_of_branch(routing, "0", dt.date(2026, 1, 5))


def test_who_sees_what() -> None:
    admin, sup = Viewer("an"), Viewer("bình", "supervisor")
    clerk, other = Viewer("chi", "clerk", unit="1009"), Viewer("dũng", "clerk", unit="1003")
    branch_clerk = Viewer("hà", "clerk", branch="9")
    assert may_see(sup, "1009", "4")
    assert not may_act(sup, "1009", "4")
    assert may_act(clerk, "1009", None)
    assert not may_see(other, "1009", "4")
    assert may_act(branch_clerk, None, "9")
    assert not may_see(branch_clerk, "1009", "4")
    full = ("Nguyễn Văn An", "0912345678")
    assert citizen(admin, *full) == full
    assert citizen(clerk, *full) == full
    assert citizen(sup, *full) == ("N. V. A.", "0912***678")
    assert citizen(admin, *full, force_mask=True) == ("N. V. A.", "0912***678")


def test_rules_file(tmp_path: Path) -> None:
    assert load_rules(None, {}).categories == DEFAULT_CATEGORIES
    f = tmp_path / "cases.toml"
    f.write_text(
        'answer_days = 15\ncategories = ["thủ tục", "khác"]\n'
        '[smtp]\naddress = "127.0.0.1:2525"\nsender = "td@example.vn"\n'
        '[recipients]\n"1009" = ["vp@example.vn"]\n'
    )
    rules = load_rules(None, {"IVR_CASES_RULES": str(f), "IVR_SMTP_PASSWORD": "s"})
    assert (rules.answer_days, rules.forward_days) == (15, 5)
    assert rules.smtp is not None
    assert (rules.smtp.port, rules.smtp.password) == (2525, "s")
    assert rules.category("THỦ TỤC") == "thủ tục"
    with pytest.raises(RulesError, match="không có trong danh sách"):
        rules.category("khiếu nại")
    for bad, what in (
        ("answer_days = 0", "answer_days"),
        ("answer_days = true", "answer_days"),
        ("categories = []", "categories"),
        ("deadline = 3", "khoá không được biết"),
        ('[smtp]\naddress = "nowhere"\nsender = "a@b"', "HOST:CỔNG"),
    ):
        f.write_text(bad + "\n")
        with pytest.raises(RulesError, match=what):
            load_rules(f, {})


def test_period_figures() -> None:
    start, end = vn_time("2027-02-01 00:00"), vn_time("2027-03-01 00:00")
    due = dt.date(2027, 2, 20)
    cases = [
        CaseFact(
            vn_time("2027-02-01 08:00"),
            "closed",
            "thủ tục",
            "1009",
            "VP",
            due,
            answered_at=vn_time("2027-02-20 16:00"),
        ),  # on time: the last day
        CaseFact(
            vn_time("2027-02-01 09:00"),
            "answered",
            "thủ tục",
            "1009",
            "VP",
            due,
            answered_at=vn_time("2027-02-22 08:00"),
        ),  # late
        CaseFact(vn_time("2027-02-02 09:00"), "verifying", "khác", "branch:9", "Tổ", due),
        CaseFact(
            vn_time("2027-01-10 09:00"),
            "rejected",
            "khác",
            "1009",
            "VP",
            due,
            rejected_at=vn_time("2027-02-03 09:00"),
        ),  # received before the period
        CaseFact(vn_time("2027-03-02 09:00"), "received", "khác", "1009", "VP", due),  # after
    ]
    scores = [
        ScoreFact(vn_time("2027-02-05 10:00"), 5, "ivr", "4", "1009", "PJSIP/cchc-4a"),
        ScoreFact(vn_time("2027-02-06 10:00"), 2, "ivr", "4", "1009", "PJSIP/cchc-4b"),
        ScoreFact(vn_time("2027-02-07 10:00"), 4, "zalo", "9", None, None),
        ScoreFact(vn_time("2027-03-01 00:00"), 1, "ivr", "4", None, None),  # after the end
    ]
    f = period_figures(cases, scores, start, end)
    c = f.cases
    assert (c.received, c.resolved, c.on_time, c.rejected, c.overdue) == (3, 2, 1, 1, 1)
    assert f.by_category["thủ tục"].received == 2
    assert f.by_category["khác"].overdue == 1
    assert f.by_owner["branch:9"].overdue == 1
    assert f.by_owner["1009"].resolved == 2
    assert (f.satisfaction.answers, f.satisfaction.mean) == (3, 3.67)
    assert f.satisfaction.csat_percent == 66.7
    assert f.satisfaction_by_branch["4"].csat_percent == 50.0
    assert f.satisfaction_by_source["zalo"].answers == 1
    assert period_figures([], [], start, end).satisfaction.mean is None
