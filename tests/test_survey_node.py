"""The survey node: where a routing may put it, what it does with the caller's key."""

from __future__ import annotations

import pytest

from ivr.flow.engine import run_call
from ivr.flow.record import MemoryObserver
from ivr.flow.survey import survey_answer
from ivr.routing.load import parse_routing
from ivr.routing.model import Routing, SurveyNode
from ivr.session import CallInfo
from ivr.sim.dry_run import HANGUP, FakeSession
from ivr.store.rows import final_ops

from .conftest import vn_time
from .test_routing_hardening import at
from .test_routing_load import GOOD, PROMPTS, problems

DAY = "2026-11-25 09:00"  # a Wednesday morning: the desks are open
SURVEY = "  rate: {type: survey, prompts: [main-menu], invalid_prompts: [goodbye], next: bye}\n"
ASKED = GOOD.replace(
    'b1: {type: dial, branch: "1", on: {busy: vm,',
    'b1: {type: dial, branch: "1", on: {answered: rate, busy: vm,',
)


def test_a_survey_after_a_conversation_loads() -> None:
    r = parse_routing((ASKED + SURVEY).encode(), "r.yaml", PROMPTS)
    node = r.nodes["rate"]
    assert isinstance(node, SurveyNode)
    assert (node.retries, node.timeout, node.next) == (2, 5.0, "bye")


def test_a_survey_reached_other_than_after_a_conversation_is_refused() -> None:
    text = ASKED.replace('{"1": b1, "0": dir}', '{"1": b1, "0": dir, "5": rate}') + SURVEY
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(f"r.yaml:{at(text, 'rate}')}: nodes.menu.choices.5: ")
    assert "chỉ được tới sau một cuộc nối máy" in found[0]


def test_a_survey_whose_next_never_ends_is_refused() -> None:
    text = (
        ASKED
        + SURVEY.replace("next: bye", "next: x")
        + (
            "  x: {type: prompt, prompts: [goodbye], next: y}\n"
            "  y: {type: prompt, prompts: [goodbye], next: x}\n"
        )
    )
    found = problems(text)
    assert found[0].startswith(f"r.yaml:{at(text, 'rate: ')}: nút 'rate' không dẫn tới kết thúc")


def test_a_survey_after_a_conversation_must_be_left() -> None:
    found = problems(ASKED + SURVEY.replace("next: bye", "next: rate"))
    assert any("nodes.rate.next: nút khảo sát 'rate' chỉ được tới sau" in p for p in found), found


def test_a_survey_prompt_must_exist_and_be_a_safe_word() -> None:
    unknown = problems(ASKED + SURVEY.replace("invalid_prompts: [goodbye]", "invalid_prompts: [x]"))
    assert any("nodes.rate.invalid_prompts: lời nhắc 'x' không có" in p for p in unknown), unknown
    unsafe = problems(ASKED + SURVEY.replace("prompts: [main-menu]", 'prompts: ["a;b"]', 1))
    assert any("chứa ký tự không được phép" in p for p in unsafe), unsafe


def test_a_survey_with_an_unknown_option_is_refused() -> None:
    found = problems(ASKED + SURVEY.replace("next: bye", "next: bye, colour: red"))
    assert any("nodes.rate.colour: khoá không được biết đến" in p for p in found), found


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ("scale: 10", "scale"),
        ("scale: 1", "scale"),
        ("sample: 1.5", "sample"),
        ("zalo_key: '12'", "zalo_key"),
        ("zalo_prompts: [nope]", "zalo_prompts"),
    ],
)
def test_survey_options_out_of_range_are_refused(option: str, field: str) -> None:
    found = problems(ASKED + SURVEY.replace("next: bye", f"next: bye, {option}"))
    assert any(f"nodes.rate.{field}" in p for p in found), found


@pytest.mark.parametrize(
    ("inputs", "score", "outcomes"),
    [
        (["4", "5"], 5, [("survey", "answered")]),
        (["4", "1"], 1, [("survey", "answered")]),
        (["4", "0", "3"], 3, [("survey", "invalid"), ("survey", "answered")]),
        (
            ["4", "#", "9"],
            None,
            [("survey", "invalid"), ("survey", "invalid"), ("survey", "no_answer")],
        ),
        (["4"], None, [("survey", "no_input"), ("survey", "no_input"), ("survey", "no_answer")]),
    ],
)
async def test_the_survey_keeps_a_key_from_1_to_5_and_nothing_else(
    routing: Routing, inputs: list[str], score: int | None, outcomes: list[tuple[str, str]]
) -> None:
    session = FakeSession(CallInfo("1795538127.7", "0912345678"), inputs=inputs)
    observer = MemoryObserver()
    record = await run_call(session, routing, observer, clock=lambda: vn_time(DAY))
    assert [(s.node, s.outcome) for s in record.steps if s.kind == "survey"] == outcomes
    answer = survey_answer(record.steps)
    assert (int(answer.input) if answer else None) == score
    assert record.path[-2:] == ("survey", "goodbye")
    assert session.played.count("survey-thanks") == (score is not None)
    surveys = [row for kind, row in final_ops(record) if kind == "survey"]
    if score is None:
        assert surveys == []
    else:
        assert [(r["score"], r["branch"], r["endpoint"]) for r in surveys] == [
            (score, "4", "PJSIP/cchc-4a")
        ]


async def test_a_caller_who_leaves_during_the_question_gives_no_answer(routing: Routing) -> None:
    session = FakeSession(CallInfo("1795538127.8", "0912345678"), inputs=["6", HANGUP])
    record = await run_call(session, routing, MemoryObserver(), clock=lambda: vn_time(DAY))
    assert record.path[-1] == "survey"
    assert survey_answer(record.steps) is None
    assert "goodbye" not in session.played


def test_a_survey_branch_that_does_not_exist_is_refused_where_it_is_written() -> None:
    text = ASKED + SURVEY.replace("next: bye", "next: bye, branches: ['1', '42']")
    found = problems(text)
    where = at(text, "'42'")
    assert found == [f"r.yaml:{where}: nodes.rate.branches: nhánh '42' không có (các nhánh: 1)"]


def test_a_survey_branch_listed_twice_is_refused() -> None:
    text = ASKED + SURVEY.replace("next: bye", "next: bye, branches: ['1', '1']")
    where = at(text, "'1'", 1)
    assert problems(text) == [f"r.yaml:{where}: nodes.rate.branches: nhánh '1' ghi hai lần"]


def test_a_survey_branch_whose_desks_never_lead_to_it_is_refused() -> None:
    """Branch 2 exists, but its dial node goes to goodbye when answered: nobody would be asked."""
    two = (
        ASKED.replace(
            '  "1": {name: Một,',
            '  "2": {name: Hai, owner: Sở Tư pháp, endpoints: [PJSIP/cchc-2]}\n  "1": {name: Một,',
        )
        .replace(
            '    choices: {"1": b1, "0": dir}',
            '    choices: {"1": b1, "2": b2, "0": dir}',
        )
        .replace(
            "  vm: {type: voicemail",
            '  b2: {type: dial, branch: "2", on: {busy: vm, no_answer: vm, unreachable: vm}}\n'
            "  vm: {type: voicemail",
        )
    )
    fine = two + SURVEY.replace("next: bye", "next: bye, branches: ['1']")
    assert isinstance(parse_routing(fine.encode(), "r.yaml", PROMPTS).nodes["rate"], SurveyNode)
    text = two + SURVEY.replace("next: bye", "next: bye, branches: ['1', '2']")
    where = at(text, "'2'")
    assert problems(text) == [
        f"r.yaml:{where}: nodes.rate.branches: không nút quay số nào của nhánh '2' "
        "dẫn tới 'rate' khi cán bộ nghe máy: không cuộc gọi nào của nhánh này được hỏi"
    ]


@pytest.mark.parametrize(("option", "said"), [
    ("scale: 10", "thang điểm 10 không dùng được: phải từ 2 đến 5 điểm"),
    ("scale: 1", "thang điểm 1 không dùng được"),
    ("sample: 1.5", "tỷ lệ khảo sát 1.5 phải từ 0 đến 1"),
    ("sample: -0.1", "tỷ lệ khảo sát -0.1 phải từ 0 đến 1"),
    ("timeout: 0", "thời gian chờ phím 0.0 giây phải lớn hơn 0 và không quá 60"),
    ("retries: 11", "số lần hỏi 11 phải từ 1 đến 10"),
])  # fmt: skip
def test_nonsense_scales_and_sample_rates_are_refused_in_vietnamese(option: str, said: str) -> None:
    text = ASKED + SURVEY.replace("next: bye", f"next: bye, {option}")
    (found,) = problems(text)
    line, col = at(text, option).split(":")
    value_at = f"{line}:{int(col) + option.index(' ') + 1}"  # the value, after "key: "
    assert found.startswith(f"r.yaml:{value_at}: nodes.rate.{option.split(':')[0]}: {said}")


@pytest.mark.parametrize(
    "option",
    ["scale: 2", "scale: 3", "scale: 4", "sample: 0", "sample: 1", "timeout: 7", "retries: 1"],
)
def test_sensible_scales_and_sample_rates_load(option: str) -> None:
    r = parse_routing((ASKED + SURVEY.replace("next: bye", f"next: bye, {option}")).encode(),
                      "r.yaml", PROMPTS)  # fmt: skip
    node = r.nodes["rate"]
    assert isinstance(node, SurveyNode)
    field, value = option.split(": ")
    assert float(getattr(node, field)) == float(value)
