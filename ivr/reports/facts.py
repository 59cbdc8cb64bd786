"""Call facts: what a report needs to know of one call, derived by pure code from its stored row
and steps (:func:`fact_of`), and read from the store as a stream (:func:`read_facts`).

Everything is taken from the call's own record: whether it came in office hours is the outcome
of its ``hours`` step, whether a desk picked up is its dial step's outcome. Only a call with no
``hours`` step (a ``fallback`` row reconciled from Asterisk, which no controller saw) is
classified from the office schedule, through the ``classify`` function given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.record import Disposition
from models import Call, CallStep

DIAL_KINDS = frozenset({"dial", "directory"})
RING_OUTCOMES = frozenset({"answered", "busy", "no_answer", "unreachable"})
NO_MESSAGE = frozenset({Disposition.NO_ANSWER, Disposition.BUSY, Disposition.UNREACHABLE})
STEP_KINDS = ("hours", "menu", "directory", "dial")  # the steps a report reads

Classify = Callable[[dt.datetime], str]  # instant → "open" | "closed" | "holiday"


@dataclass(frozen=True, slots=True)
class StepFact:
    kind: str
    outcome: str
    input: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class CallFact:
    key: str
    started_at: dt.datetime  # aware
    disposition: str
    branch: str | None
    unit: str | None
    endpoint: str | None
    digits: str
    hours: str  # "open", "closed" or "holiday"
    routed: bool  # a desk was rung
    answered: bool  # a desk (or, for a fallback row, the dialplan's operator) picked up
    ring_seconds: float  # how long the desks rang before the answer or the hang-up
    waiting_seconds: float | None  # menu end → answer (answered calls with steps)
    talk_seconds: float
    abandoned: str | None  # "menu" or "ringing"
    voicemail: bool
    lookups: tuple[str, ...]  # unit codes keyed in the directory


def fact_of(row: Any, steps: Sequence[StepFact], classify: Classify | None = None) -> CallFact:
    """The facts of one call. ``row`` has the columns of ``calls``; ``steps`` its steps of the
    kinds in STEP_KINDS, in order."""
    disposition = str(row.disposition)
    dials = [s for s in steps if s.kind in DIAL_KINDS and s.outcome in RING_OUTCOMES]
    fallback = disposition == Disposition.FALLBACK
    answered = any(s.outcome == "answered" for s in dials) or (fallback and row.talk_seconds > 0)
    abandoned = None
    if disposition == Disposition.ABANDONED:
        abandoned = "ringing" if row.wait_seconds > 0 else "menu"
    return CallFact(
        key=row.id,
        started_at=_aware(row.started_at),
        disposition=disposition,
        branch=row.branch,
        unit=row.unit,
        endpoint=row.endpoint,
        digits=row.digits or "",
        hours=_hours(steps, _aware(row.started_at), classify),
        routed=bool(dials) or abandoned == "ringing",
        answered=answered,
        ring_seconds=float(row.wait_seconds or 0.0),
        waiting_seconds=_waiting(steps, float(row.talk_seconds or 0.0)) if answered else None,
        talk_seconds=float(row.talk_seconds or 0.0) if answered else 0.0,
        abandoned=abandoned,
        voicemail=disposition == Disposition.VOICEMAIL,
        lookups=tuple(
            s.input for s in steps if s.kind == "directory" and s.outcome in ("found", "replaced")
        ),
    )


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _hours(steps: Sequence[StepFact], started: dt.datetime, classify: Classify | None) -> str:
    for s in steps:
        if s.kind == "hours":
            return s.outcome
    return classify(started) if classify is not None else "open"


def _waiting(steps: Sequence[StepFact], talk: float) -> float | None:
    """From the end of the menu (the choice, or the unit found) to the desk's answer. The dial
    step is written when the conversation ends, so the answer came ``talk`` seconds before it."""
    chosen: dt.datetime | None = None
    for s in steps:
        if (s.kind == "menu" and s.outcome == "chosen") or (
            s.kind == "directory" and s.outcome in ("found", "replaced")
        ):
            chosen = s.at
        elif s.kind in DIAL_KINDS and s.outcome == "answered" and chosen is not None:
            answer = s.at - dt.timedelta(seconds=talk)
            return max(0.0, (answer - chosen).total_seconds())
    return None


_CALL_COLUMNS = (
    Call.id,
    Call.started_at,
    Call.disposition,
    Call.branch,
    Call.unit,
    Call.endpoint,
    Call.digits,
    Call.wait_seconds,
    Call.talk_seconds,
)


async def read_facts(
    engine: AsyncEngine, start: dt.datetime, end: dt.datetime, classify: Classify | None = None
) -> AsyncIterator[CallFact]:
    """Every call that started in [start, end), streamed: the calls and their steps are read in
    key order on two connections and merged, so memory stays flat however many rows match. Both
    queries cover the same calls in the same order (the database's own), so the merge only ever
    compares keys for equality."""
    window = and_(Call.started_at >= start, Call.started_at < end)
    calls_q = select(*_CALL_COLUMNS).where(window).order_by(Call.id)
    steps_q = (
        select(CallStep.call_id, CallStep.kind, CallStep.outcome, CallStep.input, CallStep.at)
        .join(Call, Call.id == CallStep.call_id)
        .where(window, CallStep.kind.in_(STEP_KINDS))
        .order_by(CallStep.call_id, CallStep.seq)
    )
    async with engine.connect() as c1, engine.connect() as c2:
        calls = await c1.stream(calls_q.execution_options(yield_per=2000))
        steps = await c2.stream(steps_q.execution_options(yield_per=5000))
        pending = await anext(steps, None)
        async for row in calls:
            mine: list[StepFact] = []
            while pending is not None and pending.call_id == row.id:
                at = _aware(pending.at)
                mine.append(StepFact(pending.kind, pending.outcome, pending.input or "", at))
                pending = await anext(steps, None)
            yield fact_of(row, mine, classify)
