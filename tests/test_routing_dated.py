"""Dated changes: each rule of `ivr routing check` at file:line:col, successor() through chains,
branch owners and phones by date, and calls on either side of a change (a fixed clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shlex
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.cli import main
from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.prompts.manifest import unit_prompts
from ivr.routing.dated import Reach, resolve, successor
from ivr.routing.load import RoutingError, parse_routing
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import HANGUP, FakeSession

from .conftest import ROOT, ROUTING_FILE
from .test_routing_load import GOOD, PROMPTS

D = dt.date
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def with_units(*lines: str, base: str = GOOD) -> str:
    """GOOD with unit lines added after its one unit (Sở Nội vụ, 0101), from line 13 on."""
    return base.replace("nodes:\n", "".join(f"  - {{{line}}}\n" for line in lines) + "nodes:\n")


def load(text: str) -> Routing:
    return parse_routing(text.encode(), "r.yaml", PROMPTS)


def problems(text: str) -> list[str]:
    with pytest.raises(RoutingError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


# Phường IV (3104) and Phường V (3105) became phường Vị Tân (3002) on 1/7/2025.
MERGER = (
    'code: "3104", name: Phường IV, kind: commune, endpoint: PJSIP/dv-3104,'
    ' valid_until: "2025-06-30", replaced_by: "3002"',
    'code: "3105", name: Phường V, kind: commune, endpoint: PJSIP/dv-3105,'
    ' valid_until: "2025-06-30", replaced_by: "3002"',
    'code: "3002", name: phường Vị Tân, kind: commune, endpoint: PJSIP/dv-3002,'
    ' valid_from: "2025-07-01"',
)


def test_a_merger_loads_and_resolves_on_either_side_of_the_date() -> None:
    r = load(with_units(*MERGER))
    before = resolve(r, "3104", D(2025, 6, 30))
    assert (before.reach, before.reached and before.reached.code) == (Reach.CURRENT, "3104")
    after = resolve(r, "3104", D(2025, 7, 1))
    assert after.reach is Reach.REPLACED
    assert [u.code for u in after.chain] == ["3104"]
    assert after.reached is not None
    assert after.reached.name == "phường Vị Tân"
    assert after.dialled is not None
    assert after.dialled.name == "Phường IV"
    assert resolve(r, "3002", D(2025, 6, 30)).reach is Reach.NOT_YET
    assert resolve(r, "9999", D(2025, 7, 1)).reach is Reach.UNKNOWN


def test_successor_follows_a_chain_and_knows_when_nobody_took_over() -> None:
    # 3104 → 3002 on 1/7/2025, then (a made-up later change) 3002 → 3003 on 1/1/2027
    r = load(
        with_units(
            MERGER[0],
            'code: "3002", name: phường Vị Tân, kind: commune, endpoint: PJSIP/dv-3002,'
            ' valid_from: "2025-07-01", valid_until: "2026-12-31", replaced_by: "3003"',
            'code: "3003", name: phường Mới, kind: commune, endpoint: PJSIP/dv-3003,'
            ' valid_from: "2027-01-01"',
            'code: "2006", name: huyện Phụng Hiệp, kind: district, endpoint: PJSIP/dv-2006,'
            ' valid_until: "2025-06-30"',
        )
    )
    codes = {
        day: [(u.code if (u := successor(r, c, day)) else None) for c in ("3104", "3002", "2006")]
        for day in (D(2024, 5, 1), D(2025, 7, 1), D(2027, 1, 1))
    }
    assert codes == {
        D(2024, 5, 1): ["3104", None, "2006"],  # 3002 does not exist yet
        D(2025, 7, 1): ["3002", "3002", None],  # the district level has ended
        D(2027, 1, 1): ["3003", "3003", None],  # two hops
    }
    assert [u.code for u in resolve(r, "3104", D(2027, 1, 1)).chain] == ["3104", "3002"]
    assert successor(r, "0101", D(1990, 1, 1)) is not None  # an undated unit is always there
    ended = resolve(r, "2006", D(2026, 1, 1))
    assert ended.reach is Reach.ENDED
    assert ended.reached is None


def test_a_code_may_be_reused_once_its_first_unit_ended() -> None:
    r = load(
        with_units(
            'code: "3001", name: Phường III, kind: commune, endpoint: PJSIP/dv-3001,'
            ' valid_until: "2025-06-30"',
            'code: "3001", name: phường Vị Thanh, kind: commune, endpoint: PJSIP/dv-3001b,'
            ' valid_from: "2025-07-01"',
        )
    )
    assert [u.name for u in r.entries("3001")] == ["Phường III", "phường Vị Thanh"]
    old, new = r.entries("3001")
    assert successor(r, "3001", D(2025, 6, 30)) is old
    assert successor(r, "3001", D(2025, 7, 1)) is new
    # each entry has its own name prompt
    assert unit_prompts(r)["unit-3001"] == "Phường III"
    assert unit_prompts(r)["unit-3001-20250701"] == "phường Vị Thanh"


def test_generated_prompts_name_every_unit_and_each_replacement() -> None:
    r = load(with_units(*MERGER))
    assert unit_prompts(r) == {
        "unit-0101": "Sở Nội vụ",
        "unit-3104": "Phường IV",
        "moved-3104": "Phường IV nay là phường Vị Tân.",
        "unit-3105": "Phường V",
        "moved-3105": "Phường V nay là phường Vị Tân.",
        "unit-3002": "phường Vị Tân",
    }


def test_overlapping_periods_of_one_code() -> None:
    text = with_units(
        'code: "3001", name: Phường III, kind: commune, endpoint: PJSIP/dv-3001,'
        ' valid_until: "2025-07-01"',
        'code: "3001", name: phường Vị Thanh, kind: commune, endpoint: PJSIP/dv-3001,'
        ' valid_from: "2025-07-01"',
    )
    assert problems(text) == [
        "r.yaml:14:12: mã đơn vị '3001' bị trùng: thời kỳ 2025-07-01 – … chồng lên thời kỳ "
        "… – 2025-07-01 của Phường III (mỗi ngày một mã chỉ thuộc một đơn vị)"
    ]


def test_a_replacement_that_dangles() -> None:
    text = with_units(MERGER[0])
    assert problems(text) == [
        "r.yaml:13:117: đơn vị thay thế '3002' (của Phường IV) không có trong danh bạ"
    ]


def test_a_replacement_chain_that_loops() -> None:
    text = with_units(
        'code: "3104", name: Phường IV, kind: commune, endpoint: PJSIP/dv-3104,'
        ' valid_until: "2025-06-30", replaced_by: "3105"',
        'code: "3105", name: Phường V, kind: commune, endpoint: PJSIP/dv-3105,'
        ' valid_until: "2025-06-30", replaced_by: "3104"',
    )
    assert problems(text) == [
        "r.yaml:13:117: chuỗi thay thế đi vòng: 3104 → 3105 → 3104; người gọi mã cũ sẽ không "
        "tới được ai (đơn vị cuối chuỗi không được có 'replaced_by')"
    ]
    r_self = with_units(
        'code: "3104", name: Phường IV, kind: commune, endpoint: PJSIP/dv-3104,'
        ' valid_until: "2025-06-30", replaced_by: "3104"'
    )
    assert [p.split(": ", 1)[1][:30] for p in problems(r_self)] == [
        "chuỗi thay thế đi vòng: 3104 →"
    ]


def test_a_successor_not_in_force_when_its_predecessor_ends() -> None:
    late = MERGER[2].replace("2025-07-01", "2025-08-01")
    text = with_units(MERGER[0], late)
    assert problems(text) == [
        "r.yaml:13:117: đơn vị thay thế '3002' không hoạt động ngày 2025-07-01, ngày sau khi "
        "Phường IV thôi hoạt động (thời kỳ của nó: 2025-08-01 – …)"
    ]


def test_shape_rules_of_dates() -> None:
    no_end = with_units(
        'code: "3104", name: Phường IV, kind: commune, endpoint: PJSIP/dv-3104,'
        ' replaced_by: "3002"',
        MERGER[2],
    )
    assert problems(no_end) == [
        "r.yaml:13:5: units.1: 'replaced_by' cần 'valid_until': ngày cuối đơn vị này hoạt động"
    ]
    backwards = with_units(
        'code: "3104", name: Phường IV, kind: commune, endpoint: PJSIP/dv-3104,'
        ' valid_from: "2025-07-01", valid_until: "2025-06-30"'
    )
    assert problems(backwards) == [
        "r.yaml:13:5: units.1: valid_until (2025-06-30) đứng trước valid_from (2025-07-01)"
    ]
    not_a_date = with_units(
        'code: "3104", name: Phường IV, kind: commune, endpoint: PJSIP/dv-3104,'
        ' valid_until: "30/6/2025"'
    )
    assert problems(not_a_date) == [
        "r.yaml:13:90: units.1.valid_until: '30/6/2025' không phải ngày dạng YYYY-MM-DD"
    ]


BRANCH_7 = """\
  "1":
    name: Ứng dụng công nghệ thông tin
    owner: Sở Thông tin và Truyền thông
    endpoints: [PJSIP/cchc-1]
    changes:
      - {from: "2025-03-01", owner: Sở Khoa học và Công nghệ}
      - {from: "2025-09-01", endpoints: [PJSIP/cchc-1-khcn]}
"""


def with_branch(changes: str = BRANCH_7) -> str:
    one = '  "1": {name: Một, owner: Sở Nội vụ, endpoints: [PJSIP/cchc-1]}\n'
    return GOOD.replace(one, changes)


def test_a_branch_owner_and_phones_change_on_their_dates() -> None:
    branch = load(with_branch()).branches["1"]
    states = [branch.on(D(2025, 2, 28)), branch.on(D(2025, 3, 1)), branch.on(D(2025, 9, 1))]
    assert [(s.owner, s.endpoints) for s in states] == [
        ("Sở Thông tin và Truyền thông", ("PJSIP/cchc-1",)),
        ("Sở Khoa học và Công nghệ", ("PJSIP/cchc-1",)),
        ("Sở Khoa học và Công nghệ", ("PJSIP/cchc-1-khcn",)),
    ]
    assert branch.all_endpoints == ["PJSIP/cchc-1", "PJSIP/cchc-1-khcn"]


def test_branch_changes_out_of_order_or_empty() -> None:
    swapped = BRANCH_7.replace("2025-09-01", "2025-02-01")
    assert problems(with_branch(swapped)) == [
        "r.yaml:16:16: nhánh 1: thay đổi ngày 2025-02-01 phải đứng sau thay đổi ngày 2025-03-01 "
        "(liệt kê theo thứ tự ngày, mỗi ngày một lần)"
    ]
    empty = BRANCH_7.replace(", endpoints: [PJSIP/cchc-1-khcn]", "")
    assert problems(with_branch(empty)) == [
        "r.yaml:16:9: branches.1.changes.1: một thay đổi cần 'owner' hoặc 'endpoints' (hoặc cả hai)"
    ]


def call(r: Routing, digits: list[str], when: str) -> tuple[CallRecord, FakeSession]:
    at = dt.datetime.fromisoformat(when).replace(tzinfo=TZ)  # a fixed clock, never the wall's
    session = FakeSession(CallInfo("t.1", "0912345678"), inputs=[*digits, HANGUP])
    record = asyncio.run(run_call(session, r, MemoryObserver(), clock=lambda: at))
    return record, session


def test_a_branch_call_rings_the_phones_of_its_day() -> None:
    r = load(with_branch())
    # GOOD's office is open on Mondays 07:30-11:30: 2025-08-25 and 2025-09-08 are Mondays
    before, s1 = call(r, ["1"], "2025-08-25 09:00")
    after, s2 = call(r, ["1"], "2025-09-08 09:00")
    assert (before.endpoint, after.endpoint) == ("PJSIP/cchc-1", "PJSIP/cchc-1-khcn")
    assert (s1.dialed, s2.dialed) == ([["PJSIP/cchc-1"]], [["PJSIP/cchc-1-khcn"]])


def test_a_directory_call_with_an_old_code_before_and_after_the_merger() -> None:
    r = load(with_units(*MERGER))
    # 2025-06-30 is a Monday; so is 2025-07-07
    before, _ = call(r, ["0", "3104#"], "2025-06-30 09:00")
    after, _ = call(r, ["0", "3104#"], "2025-07-07 09:00")
    assert (before.unit, before.endpoint, before.digits) == ("3104", "PJSIP/dv-3104", "03104")
    assert (after.unit, after.endpoint, after.digits) == ("3002", "PJSIP/dv-3002", "03104")
    found = [(s.outcome, s.input, s.detail) for s in after.steps if s.outcome == "replaced"]
    assert found == [("replaced", "3104", "3104 Phường IV → 3002 phường Vị Tân")]


def test_routing_check_names_a_broken_chain_in_the_shipped_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shipped = ROUTING_FILE.read_text(encoding="utf-8")
    line = next(i for i, text in enumerate(shipped.splitlines(), 1) if 'code: "3104"' in text)
    col = shipped.splitlines()[line - 1].index('"3002"') + 1
    bad = tmp_path / "routing" / "hotline.yaml"
    bad.parent.mkdir()
    bad.write_text(shipped.replace('"3002"}  # 31324,', '"3999"}  # 31324,'))
    manifest = str(ROOT / "prompts" / "manifest.yaml")
    code = main(["routing", "check", str(bad), "--prompts", manifest])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"{bad}:{line}:{col}: đơn vị thay thế '3999' (của UBND Phường IV) không có" in err
    assert main(["routing", "check", str(ROUTING_FILE), "--prompts", manifest]) == 0
    out, _ = capsys.readouterr()
    # 7 departments merged, 8 district-level units and 30 communes ended; branch 7's new owner
    assert "thay đổi theo ngày: 45 đơn vị có ngày thôi hoạt động (37 có đơn vị thay thế)" in out
    assert "1 thay đổi của nhánh" in out


def test_the_readme_routing_commands_run(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        shlex.split(line)[1:]
        for line in readme.splitlines()
        if line.startswith(".venv/bin/ivr routing ")
    ]
    assert len(commands) >= 5
    outputs = []
    for args in commands:
        args = [str(ROOT / a) if a == "routing/hotline.yaml" else a for a in args]
        assert main(args) == 0, args
        outputs.append(capsys.readouterr().out)
    # the old code of Phường IV, before and after the merger the README describes
    assert "found [3104] — UBND Phường IV" in "".join(outputs)
    assert "replaced [3104] — 3104 UBND Phường IV → 3002 UBND phường Vị Tân" in "".join(outputs)
