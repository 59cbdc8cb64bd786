"""The Zalo offer after the score, through ARI and FastAGI on the simulator, down to the outbox.

The routing is the shipped one as ``ivr run`` hands it to the calls when Zalo is configured
(ivr.survey.offer); the caller keys a score, then 1 (agrees) or 2 (declines). The call's steps
go through the real store writer; the outbox then holds an entry for the consenting call only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cli.serve import new_app
from ivr.config import Settings
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.live import LiveRouting
from ivr.routing.model import Routing
from ivr.sim.scripts import Press
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter
from ivr.survey.offer import calls_routing
from ivr.survey.zalo import outbox
from models import CallStep
from models.survey import ZaloOutbox

from .conftest import ROUTING_FILE
from .scenarios import ANSWER, MENU, SURVEYED, Expect, Scenario, on_menu
from .test_scenarios import check_record, run_agi_scenario, run_scenario

ZALO = Settings(zalo_app_id="1234", zalo_template_id="5678")


def row(key: str, outcome: str) -> Scenario:
    return Scenario(
        f"zalo: score 5, then {key} at the offer",
        (
            on_menu("4"),
            Press("5", on="prompt:survey-question", after=0.5),
            Press(key, on="prompt:survey-zalo-offer", after=0.3),
        ),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-4", *SURVEYED),
            "4",
            branch="4",
            endpoint="PJSIP/cchc-4a",
            outcomes=(("survey", "answered"), ("survey", outcome), ("goodbye", "hung_up")),
            survey=5,
        ),
        clerks={"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": ANSWER},
        heard=("survey-question", "survey-thanks", "survey-zalo-offer", "goodbye"),
    )


AGREES = row("1", "zalo_consent")
DECLINES = row("2", "zalo_declined")


@pytest.mark.parametrize("adapter", ["ari", "fastagi"])
async def test_only_the_consenting_caller_gets_an_outbox_entry(
    routing: Routing, adapter: str, tmp_path: Path
) -> None:
    offering = calls_routing(lambda: routing, ZALO)()
    await asyncio.to_thread(upgrade, sqlite_url(tmp_path))
    engine = make_engine(sqlite_url(tmp_path))
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    keys: dict[str, str] = {}
    try:
        for sc in (AGREES, DECLINES):
            if adapter == "ari":
                record, call, _ = await run_scenario(offering, sc, writer)
                heard = call.heard
            else:
                record, agi_call = await run_agi_scenario(offering, sc, tmp_path / "rec", writer)
                heard = agi_call.heard
            check_record(offering, sc, record, heard, [], adapter=adapter)
            keys[sc.name] = record.key
        assert await writer.sync()
        async with AsyncSession(engine) as s:
            stored = (
                await s.execute(
                    select(CallStep.call_id, CallStep.outcome, CallStep.input).where(
                        CallStep.kind == "survey"
                    )
                )
            ).all()
        # the consent is kept with the call, whichever adapter carried it
        assert (keys[AGREES.name], "zalo_consent", "1") in stored
        assert (keys[DECLINES.name], "zalo_declined", "2") in stored
        now = dt.datetime.now(dt.UTC)
        assert await outbox.enqueue(engine, now, now - dt.timedelta(days=3650)) == 1
        async with AsyncSession(engine) as s:
            rows = (await s.scalars(select(ZaloOutbox))).all()
        assert [(r.call_id, r.phone, r.status) for r in rows] == [
            (keys[AGREES.name], "84912345678", "pending")
        ]
        assert await outbox.enqueue(engine, now, now - dt.timedelta(days=3650)) == 0  # once
    finally:
        await writer.stop()
        await engine.dispose()


@pytest.mark.parametrize(("settings", "offered"), [(ZALO, True), (Settings(), False)])
async def test_ivr_run_hands_its_calls_the_routing_as_the_settings_say(
    prompt_ids: list[str], settings: Settings, offered: bool
) -> None:
    live = LiveRouting(ROUTING_FILE, lambda: prompt_ids)
    client, app = new_app(settings, live, MemoryObserver(), None)
    try:
        assert app.routing().zalo_survey is offered
        assert app.routing().version == live.current.version
    finally:
        await client.close()
