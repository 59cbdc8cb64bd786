"""Reading the facts ivr.cases.figures counts, from the store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.cases.figures import CaseFact, PeriodFigures, ScoreFact, period_figures
from ivr.flow.survey import DEFAULT_SCALE, SURVEY_KIND, answer_scale
from models import CallStep, Case, SurveyAnswer


async def read_facts(
    engine: AsyncEngine, start: dt.datetime, end: dt.datetime
) -> tuple[list[CaseFact], list[ScoreFact]]:
    """Every case received before ``end`` that was still open at ``start`` or later (the others
    cannot count in the period), and every answer given in the period."""
    cq = select(Case).where(
        Case.received_at < end,
        or_(Case.closed_at.is_(None), Case.closed_at >= start, Case.answered_at >= start),
    )
    sq = select(SurveyAnswer).where(
        SurveyAnswer.answered_at >= start, SurveyAnswer.answered_at < end
    )
    async with AsyncSession(engine) as s:
        cases = list((await s.scalars(cq)).all())
        answers = list((await s.scalars(sq)).all())
        scales = await _scales(s, {a.call_id for a in answers if a.source == "ivr" and a.call_id})
    return [_case_fact(c) for c in cases], [
        ScoreFact(
            a.answered_at,
            a.score,
            a.source,
            a.branch,
            a.unit,
            a.endpoint,
            scales.get(a.call_id or "", DEFAULT_SCALE),
        )
        for a in answers
    ]


async def _scales(s: AsyncSession, call_ids: set[str]) -> dict[str, int]:
    """Each call's answer scale, from its answered survey step (ivr.flow.survey): an IVR answer
    is kept with the call, and the step says which scale the key was pressed on."""
    found: dict[str, int] = {}
    ids = sorted(call_ids)
    for i in range(0, len(ids), 500):  # bounded IN lists
        q = (
            select(CallStep.call_id, CallStep.detail)
            .where(
                CallStep.call_id.in_(ids[i : i + 500]),
                CallStep.kind == SURVEY_KIND,
                CallStep.outcome == "answered",
            )
            .order_by(CallStep.call_id, CallStep.seq)
        )
        for call_id, detail in (await s.execute(q)).all():
            found[call_id] = answer_scale(detail)  # the last answer wins, as in the store
    return found


def _case_fact(c: Case) -> CaseFact:
    return CaseFact(
        received_at=c.received_at,
        status=c.status,
        category=c.category,
        owner=c.owner_unit or f"branch:{c.branch}",
        owner_name=c.owner_name,
        answer_due=c.answer_due,
        answered_at=c.answered_at,
        rejected_at=c.closed_at if c.status == "rejected" else None,
    )


async def figures_from_store(
    engine: AsyncEngine, start: dt.datetime, end: dt.datetime, tz: str = "Asia/Ho_Chi_Minh"
) -> PeriodFigures:
    cases, scores = await read_facts(engine, start, end)
    return period_figures(cases, scores, start, end, tz)
