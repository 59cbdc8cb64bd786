"""Writing survey answers: one at a time from the IVR, or a Zalo results file, once each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import Call, SurveyAnswer

VN = ZoneInfo("Asia/Ho_Chi_Minh")
COLUMNS = ("tracking_id", "call", "score", "answered_at")


class BadAnswers(ValueError):
    """A results file that cannot be imported; nothing of it is written (Vietnamese message)."""


@dataclass(frozen=True, slots=True)
class Answer:
    score: int
    answered_at: dt.datetime
    call_id: str | None = None
    external_id: str | None = None
    source: str = "ivr"


def check_score(value: object) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 5:
        raise BadAnswers(f"điểm '{value}' phải từ 1 đến 5")
    return int(text)


def parse_rows(rows: Sequence[Mapping[str, str | None]]) -> list[Answer]:
    """Every row checked before anything is written (line numbers count the header as 1)."""
    out: list[Answer] = []
    for n, row in enumerate(rows, start=2):
        missing = [c for c in ("tracking_id", "score", "answered_at") if not (row.get(c) or "")]
        if missing:
            raise BadAnswers(f"dòng {n}: thiếu {', '.join(missing)} (cột: {', '.join(COLUMNS)})")
        try:
            score = check_score(row["score"])
            at = dt.datetime.fromisoformat(str(row["answered_at"]).strip())
        except ValueError as e:
            raise BadAnswers(f"dòng {n}: {e}") from None
        at = at if at.tzinfo else at.replace(tzinfo=VN)
        call = (row.get("call") or "").strip() or None
        out.append(Answer(score, at, call, str(row["tracking_id"]).strip(), "zalo"))
    return out


async def import_rows(
    engine: AsyncEngine, rows: Sequence[Mapping[str, str | None]]
) -> tuple[int, int]:
    """(added, already there): a tracking id seen before is skipped, so a file can be re-run."""
    answers = parse_rows(rows)
    added = known = 0
    async with AsyncSession(engine) as s, s.begin():
        for a in answers:
            found = await s.scalar(
                select(SurveyAnswer.id).where(SurveyAnswer.external_id == a.external_id)
            )
            if found is not None:
                known += 1
                continue
            s.add(await _row(s, a))
            await s.flush()
            added += 1
    return added, known


async def record_answer(engine: AsyncEngine, answer: Answer) -> None:
    async with AsyncSession(engine) as s, s.begin():
        s.add(await _row(s, answer))


async def _row(s: AsyncSession, a: Answer) -> SurveyAnswer:
    call = await s.get(Call, a.call_id) if a.call_id else None
    return SurveyAnswer(
        call_id=call.id if call else None,
        source=a.source,
        external_id=a.external_id,
        answered_at=a.answered_at,
        score=a.score,
        branch=call.branch if call else None,
        unit=call.unit if call else None,
        endpoint=call.endpoint if call else None,
    )
