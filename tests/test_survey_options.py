"""The survey node's options: its scale, which calls are asked, and the Zalo consent key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.flow.survey import ZALO_CONSENT, survey_answer, surveyed
from ivr.routing.load import parse_routing
from ivr.routing.model import Routing, SurveyNode
from ivr.session import CallInfo
from ivr.sim.dry_run import FakeSession
from ivr.store.rows import final_ops

from .conftest import ROUTING_FILE, vn_time

DAY = "2026-11-25 09:00"  # a Wednesday morning: the desks are open
BASE = "    invalid_prompts: [survey-invalid]\n"


def with_survey(prompt_ids: list[str], extra: str) -> Routing:
    text = Path(ROUTING_FILE).read_text(encoding="utf-8")
    assert BASE in text
    return parse_routing(text.replace(BASE, BASE + extra).encode(), "r.yaml", prompt_ids)


async def call(routing: Routing, inputs: list[str], call_id: str = "1795538127.7") -> CallRecord:
    session = FakeSession(CallInfo(call_id, "0912345678"), inputs=inputs)
    return await run_call(session, routing, MemoryObserver(), clock=lambda: vn_time(DAY))


def outcomes(record: CallRecord) -> list[str]:
    return [s.outcome for s in record.steps if s.kind == "survey"]


async def test_a_three_point_scale_refuses_4_and_keeps_3(prompt_ids: list[str]) -> None:
    r = with_survey(prompt_ids, "    scale: 3\n")
    record = await call(r, ["4", "4", "3"])  # branch 4, then 4 (off the scale), then 3
    assert outcomes(record) == ["invalid", "answered"]
    answer = survey_answer(record.steps)
    assert answer is not None
    assert answer.input == "3"
    assert [row["score"] for kind, row in final_ops(record) if kind == "survey"] == [3]


async def test_a_call_outside_the_branches_listed_is_not_asked(prompt_ids: list[str]) -> None:
    only_1 = with_survey(prompt_ids, '    branches: ["1"]\n')
    record = await call(only_1, ["4", "5"])
    assert outcomes(record) == ["skipped"]
    assert record.path[-2:] == ("survey", "goodbye")
    assert [kind for kind, _ in final_ops(record) if kind == "survey"] == []
    asked = await call(with_survey(prompt_ids, '    branches: ["4"]\n'), ["4", "5"])
    assert outcomes(asked) == ["answered"]


def test_sampling_is_decided_by_the_call_and_keeps_about_the_share() -> None:
    node = SurveyNode(type="survey", prompts=["p"], sample=0.3, next="n")
    ids = [f"1795538{n}.{n % 7}" for n in range(2000)]
    chosen = [i for i in ids if surveyed(node, i, "1")]
    assert 480 < len(chosen) < 720  # 30 % of 2000 is 600
    assert chosen == [i for i in ids if surveyed(node, i, "1")]  # the same calls each time
    none = SurveyNode(type="survey", prompts=["p"], sample=0.0, next="n")
    assert not any(surveyed(none, i, "1") for i in ids)


@pytest.mark.parametrize(
    ("zalo_key_pressed", "expected"), [("1", ZALO_CONSENT), ("2", "zalo_declined")]
)
async def test_the_zalo_consent_is_a_step_after_the_question(
    prompt_ids: list[str], zalo_key_pressed: str, expected: str
) -> None:
    r = with_survey(prompt_ids, "    zalo_prompts: [survey-question]\n")
    record = await call(r, ["4", "5", zalo_key_pressed])
    assert outcomes(record) == ["answered", expected]
    assert record.path[-2:] == ("survey", "goodbye")
    consent = [s for s in record.steps if s.outcome == expected]
    assert consent[0].input == zalo_key_pressed
    # the step reaches the store like any other (ivr.survey.zalo.outbox reads it from there)
    steps = [row for kind, row in final_ops(record) if kind == "step"]
    assert any(row["outcome"] == expected for row in steps)
