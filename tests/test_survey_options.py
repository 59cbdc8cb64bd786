"""The survey node's options: its scale, which calls are asked, and the Zalo consent key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.flow.survey import ZALO_CONSENT, survey_answer, surveyed
from ivr.routing.load import parse_routing
from ivr.routing.model import Routing, SurveyNode
from ivr.session import CallInfo
from ivr.sim.dry_run import FakeSession
from ivr.store.rows import final_ops
from ivr.survey.offer import calls_routing

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


async def call_from(routing: Routing, number: str, inputs: list[str]) -> tuple[CallRecord, bool]:
    """The record, and whether the caller heard the Zalo offer."""
    session = FakeSession(CallInfo("1795538127.9", number), inputs=inputs)
    record = await run_call(session, routing, MemoryObserver(), clock=lambda: vn_time(DAY))
    return record, "survey-zalo-offer" in session.played


@pytest.mark.parametrize(
    ("zalo_key_pressed", "expected"), [("1", ZALO_CONSENT), ("2", "zalo_declined")]
)
async def test_the_zalo_consent_is_a_step_after_the_score(
    routing: Routing, zalo_key_pressed: str, expected: str
) -> None:
    record = await call(routing.offering_zalo(), ["4", "5", zalo_key_pressed])
    assert outcomes(record) == ["answered", expected]
    assert record.path[-2:] == ("survey", "goodbye")
    consent = [s for s in record.steps if s.outcome == expected]
    assert consent[0].input == zalo_key_pressed
    # the step reaches the store like any other (ivr.survey.zalo.outbox reads it from there)
    steps = [row for kind, row in final_ops(record) if kind == "step"]
    assert any(row["outcome"] == expected for row in steps)


async def test_without_zalo_configured_the_offer_is_never_played(routing: Routing) -> None:
    """The shipped routing names the offer; a routing not marked by the settings never plays it."""
    node = routing.nodes["survey"]
    assert isinstance(node, SurveyNode)
    assert node.zalo_prompts == ["survey-zalo-offer"]
    session = FakeSession(CallInfo("1795538127.7", "0912345678"), inputs=["4", "5", "1"])
    record = await run_call(session, routing, MemoryObserver(), clock=lambda: vn_time(DAY))
    assert outcomes(record) == ["answered"]
    assert "survey-zalo-offer" not in session.played
    assert session.played[-1] == "goodbye"


@pytest.mark.parametrize("number", ["", "02933878787", "+6591234567"])
async def test_a_number_zalo_cannot_reach_is_not_offered_it(routing: Routing, number: str) -> None:
    record, offered = await call_from(routing.offering_zalo(), number, ["4", "5", "1"])
    assert outcomes(record) == ["answered"]
    assert not offered


async def test_a_caller_who_gave_no_score_is_not_offered_zalo(routing: Routing) -> None:
    record, offered = await call_from(routing.offering_zalo(), "0912345678", ["4"])
    assert outcomes(record) == ["no_input", "no_input", "no_answer"]
    assert not offered


async def test_no_key_at_the_offer_is_a_refusal(routing: Routing) -> None:
    record, offered = await call_from(routing.offering_zalo(), "0912345678", ["4", "3"])
    assert outcomes(record) == ["answered", "zalo_declined"]
    assert offered
    assert record.steps[-2].input == ""  # the offer's step: no key


def test_the_offer_follows_the_settings_and_each_routing_version(routing: Routing) -> None:
    """ivr run / ivr agi take the calls' routing through calls_routing: marked only with Zalo."""
    current = [routing]
    off = calls_routing(lambda: current[0], Settings())
    assert off() is routing
    assert not off().zalo_survey
    on = calls_routing(lambda: current[0], Settings(zalo_app_id="1", zalo_template_id="2"))
    first = on()
    assert first.zalo_survey
    assert first.version == routing.version
    assert on() is first  # one copy per version, not one per call
    current[0] = routing.model_copy(update={"version": "next"})
    assert on().version == "next"
    assert on().zalo_survey
    assert not routing.zalo_survey  # the live routing itself is never changed
