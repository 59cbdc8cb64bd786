"""Every validation rule with a bad file of its own, reported as file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.routing.load import RoutingError, load_routing, parse_routing
from ivr.routing.model import DialNode, MenuNode

from .conftest import ROUTING_FILE

GOOD = """\
hotline:
  name: Thử
  number: "1022"
  entry: start
  fallback: {context: hotline-fallback}
schedules:
  office:
    weekly: {mon: ["07:30-11:30"]}
branches:
  "1": {name: Một, owner: Sở Nội vụ, endpoints: [PJSIP/cchc-1]}
units:
  - {code: "0101", name: Sở Nội vụ, kind: department, endpoint: PJSIP/dv-0101}
nodes:
  start: {type: hours, schedule: office, open: menu, closed: bye}
  menu:
    type: menu
    prompts: [main-menu]
    choices: {"1": b1, "0": dir}
    default: bye
  b1: {type: dial, branch: "1", on: {busy: vm, no_answer: vm, unreachable: vm}}
  vm: {type: voicemail, prompts: [voicemail-intro], next: bye}
  dir:
    type: directory
    prompts: [enter-unit-code]
    on: {busy: vm, no_answer: vm, unreachable: vm}
    fail: bye
  bye: {type: hangup, prompts: [goodbye]}
"""
PROMPTS = ["main-menu", "voicemail-intro", "enter-unit-code", "goodbye"]


def problems(text: str, prompts: list[str] | None = PROMPTS) -> list[str]:
    with pytest.raises(RoutingError) as info:
        parse_routing(text.encode(), "r.yaml", prompts)
    return [str(p) for p in info.value.problems]


def test_the_good_file_loads_with_strings_intact() -> None:
    r = parse_routing(GOOD.encode(), "r.yaml", PROMPTS)
    assert r.units[0].code == "0101"  # the leading 0 survives
    assert r.hotline.number == "1022"
    assert isinstance(r.nodes["menu"], MenuNode)
    assert isinstance(r.nodes["b1"], DialNode)
    assert len(r.version) == 12


def test_the_shipped_routing_is_valid(prompt_ids: list[str]) -> None:
    r = load_routing(ROUTING_FILE, prompt_ids)
    assert set(r.branches) == {str(k) for k in range(1, 10)}
    assert r.branches["4"].owner == "Văn phòng UBND tỉnh"
    assert r.branches["7"].name == "Ứng dụng công nghệ thông tin"
    assert {u.kind for u in r.units} >= {"department", "district", "commune"}


def test_version_follows_the_bytes() -> None:
    a = parse_routing(GOOD.encode(), "r.yaml", PROMPTS)
    b = parse_routing((GOOD + "# a comment\n").encode(), "r.yaml", PROMPTS)
    assert a.version != b.version


def test_unknown_key_is_pointed_at() -> None:
    text = GOOD.replace(
        "  bye: {type: hangup, prompts: [goodbye]}",
        "  bye: {type: hangup, prompts: [goodbye], colour: red}",
    )
    assert problems(text) == ["r.yaml:27:43: nodes.bye.colour: khoá không được biết đến"]


def test_missing_target() -> None:
    text = GOOD.replace('choices: {"1": b1, "0": dir}', 'choices: {"1": b2, "0": dir}')
    assert problems(text) == ["r.yaml:18:20: nodes.menu.choices.1: nút đích 'b2' không tồn tại"]


def test_missing_prompt() -> None:
    text = GOOD.replace("prompts: [goodbye]", "prompts: [tam-biet]")
    assert problems(text) == ["r.yaml:27:33: nodes.bye.prompts: lời nhắc 'tam-biet' không có"]


def test_unreachable_node() -> None:
    text = GOOD + "  lonely: {type: hangup}\n"
    assert problems(text) == ["r.yaml:28:3: nút 'lonely' không thể tới được từ 'start'"]


def test_duplicate_unit_code() -> None:
    text = GOOD.replace(
        "nodes:\n",
        '  - {code: "0101", name: Sở Tư pháp, kind: department, endpoint: PJSIP/dv-0102}\nnodes:\n',
    )
    assert problems(text) == ["r.yaml:13:12: mã đơn vị '0101' bị trùng (đã dùng cho Sở Nội vụ)"]


def test_code_that_is_a_prefix_of_another() -> None:
    text = GOOD.replace(
        "nodes:\n",
        '  - {code: "010", name: Sở Tư pháp, kind: department, endpoint: PJSIP/dv-0102}\nnodes:\n',
    )
    assert problems(text) == [
        "r.yaml:12:12: mã đơn vị '010' là phần đầu của mã '0101': người gọi không thể bấm '0101'"
    ]


def test_duplicate_yaml_key() -> None:
    text = GOOD.replace(
        "  bye: {type: hangup, prompts: [goodbye]}",
        "  bye: {type: hangup, prompts: [goodbye]}\n  bye: {type: hangup}",
    )
    (only,) = problems(text)
    assert only.startswith("r.yaml:28:3: khoá bị lặp")
    assert '"bye"' in only


def test_number_instead_of_string_keeps_its_zero_visible() -> None:
    text = GOOD.replace('{code: "0101"', "{code: 0101")
    assert problems(text) == [
        "r.yaml:12:12: units.0.code: giá trị 101 phải là chuỗi trong dấu nháy "
        '(vd. "0101" hay "101"), để số 0 ở đầu không bị mất'
    ]


def test_menu_key_as_number() -> None:
    text = GOOD.replace('choices: {"1": b1, "0": dir}', 'choices: {1: b1, "0": dir}')
    (only,) = problems(text)
    assert only.startswith("r.yaml:18:15: nodes.menu.choices.1: giá trị 1 phải là chuỗi")


def test_bad_endpoint_and_bad_hours_are_both_reported() -> None:
    text = GOOD.replace("[PJSIP/cchc-1]", "[cchc 1]").replace('["07:30-11:30"]', '["7h30-11h30"]')
    found = problems(text)
    assert len(found) == 2
    assert found[0].startswith("r.yaml:8:")
    assert "HH:MM-HH:MM" in found[0]
    assert found[1].startswith("r.yaml:10:")
    assert "PJSIP/" in found[1]


def test_a_holiday_country_the_library_does_not_know_is_refused_at_load() -> None:
    """Loaded, it made every call fail at the hours node; `null` (no public holidays) is fine."""
    text = GOOD.replace(
        'weekly: {mon: ["07:30-11:30"]}', 'weekly: {mon: ["07:30-11:30"]}\n    public_holidays: VNN'
    )
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("r.yaml:")
    assert "'VNN'" in found[0]
    assert "holidays" in found[0]
    for ok in ("VN", "null"):
        r = parse_routing(text.replace("VNN", ok).encode(), "r.yaml", PROMPTS)
        assert r.schedules["office"].public_holidays == (None if ok == "null" else ok)


def test_unknown_node_type() -> None:
    text = GOOD.replace("{type: hangup, prompts: [goodbye]}", "{type: goodbye}")
    (only,) = problems(text)
    assert only.startswith("r.yaml:27:8: nodes.bye: loại nút 'goodbye' không có")


def test_missing_required_key() -> None:
    text = GOOD.replace(
        "  vm: {type: voicemail, prompts: [voicemail-intro], next: bye}",
        "  vm: {type: voicemail, prompts: [voicemail-intro]}",
    )
    assert problems(text) == ["r.yaml:21:7: nodes.vm.next: thiếu khoá bắt buộc 'next'"]


def test_unknown_branch_and_schedule() -> None:
    text = GOOD.replace('branch: "1"', 'branch: "7"').replace("schedule: office", "schedule: night")
    found = problems(text)
    assert "r.yaml:14:34: nodes.start: lịch 'night' không có" in found
    assert "r.yaml:20:28: nodes.b1: nhánh '7' không có" in found


def test_yaml_syntax_error() -> None:
    (only,) = problems(GOOD.replace("  menu:\n", "  menu: [\n"))
    assert only.startswith("r.yaml:")
    assert "lỗi cú pháp YAML" in only


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    assert problems_bytes(b"hotline: \xff\n") == ["r.yaml:1:1: tệp không phải UTF-8 (byte 9)"]
    with pytest.raises(RoutingError) as info:
        load_routing(tmp_path / "nope.yaml", None)
    assert "không đọc được tệp" in str(info.value)


def problems_bytes(data: bytes) -> list[str]:
    with pytest.raises(RoutingError) as info:
        parse_routing(data, "r.yaml", PROMPTS)
    return [str(p) for p in info.value.problems]


def test_a_blank_key_is_quoted_so_the_admin_can_see_it() -> None:
    found = problems(GOOD.replace("schedules:\n", '" ": 1\nschedules:\n'))
    assert 'r.yaml:6:1: " ": khoá không được biết đến' in found


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ('number: "1022"', 'number: ""', "hotline.number: không được để trống"),
        ("b1: {type: dial,", "b1: {type: dial, ring_seconds: -5,", "nodes.b1.ring_seconds: phải"),
        ("  menu:\n    type: menu\n", "  menu:\n    type: menu\n    retries: x\n", "số"),
    ],
)
def test_bounds_and_types_are_explained_in_vietnamese(old: str, new: str, said: str) -> None:
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1))
    assert any(said in p for p in found), found
    assert not any("Input should" in p or "String should" in p for p in found), found
