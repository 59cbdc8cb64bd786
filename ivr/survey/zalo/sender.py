"""The task ``ivr run`` starts when Zalo is configured: the outbox, sent row by row.

Each round: claims past their lease become ``unsure``, new consents become rows, due rows are
claimed and sent. A retry waits (``BACKOFF``) and gives up after its last step; the daily quota
stops every send until the next day (Vietnam time); a token nobody can refresh pauses sending
until an admin puts a new pair in the token file. Nothing here touches a call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.survey.zalo import outbox
from ivr.survey.zalo.client import Outcome, ZnsClient
from ivr.survey.zalo.codes import Verdict
from ivr.survey.zalo.outbox import Pending
from ivr.survey.zalo.tokens import TokenError

log = structlog.get_logger("ivr.zalo")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
BACKOFF = tuple(dt.timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 3 * 3600))
LEASE = dt.timedelta(minutes=2)  # longer than one send with its refresh takes
TOKEN_PAUSE = dt.timedelta(minutes=10)
LOOKBACK = dt.timedelta(days=2)  # consents older than this are not sent any more
Clock = Callable[[], dt.datetime]


def next_day(now: dt.datetime) -> dt.datetime:
    """Midnight after ``now`` in Vietnam, when ZNS's daily quota starts again."""
    local = now.astimezone(VN)
    return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), VN)


def template_data(row: Pending) -> dict[str, str]:
    """The ZNS template's parameters (the template is registered with these names)."""
    at = row.started_at.astimezone(VN) if row.started_at else None
    return {
        "call_time": at.strftime("%H:%M %d/%m/%Y") if at else "",
        "tracking_code": row.tracking_id[-12:],
    }


class Sender:
    def __init__(
        self, engine: AsyncEngine, client: ZnsClient, clock: Clock, batch: int = 20
    ) -> None:
        self._engine, self._client, self._clock, self._batch = engine, client, clock, batch
        self.paused_until: dt.datetime | None = None

    async def run(self, every: float = 15.0) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a database outage must not end the task
                log.exception("zalo_round_failed", message="vòng gửi khảo sát Zalo lỗi")
            await asyncio.sleep(every)

    async def round(self) -> int:
        """One pass over the outbox; how many requests were made."""
        now = self._clock()
        if self.paused_until is not None and now < self.paused_until:
            return 0
        self.paused_until = None
        await outbox.expire_claims(self._engine, now)
        await outbox.enqueue(self._engine, now, now - LOOKBACK)
        made = 0
        for row in await outbox.due(self._engine, now, self._batch):
            if not await outbox.claim(self._engine, row.tracking_id, now + LEASE):
                continue  # another controller has it
            made += 1
            if not await self._send(row):
                break
        return made

    async def _send(self, row: Pending) -> bool:
        """Send one claimed row and record what came of it; False: stop this round."""
        try:
            out = await self._client.send(row.phone, template_data(row), row.tracking_id)
        except TokenError as e:
            log.error("zalo_token", message=f"không gửi được khảo sát Zalo: {e}")
            self.paused_until = self._clock() + TOKEN_PAUSE
            await outbox.finish(self._engine, row.tracking_id, status="pending")
            return False
        return await self._record(row, out)

    async def _record(self, row: Pending, out: Outcome) -> bool:
        now, tid = self._clock(), row.tracking_id
        match out.verdict:
            case Verdict.SENT:
                await outbox.finish(
                    self._engine, tid, status="sent", sent_at=now, msg_id=out.msg_id, error=None
                )
            case Verdict.QUOTA:
                self.paused_until = next_day(now)
                log.warning("zalo_quota", message=f"{out.reason}: tạm dừng đến {self.paused_until}")
                await outbox.finish(self._engine, tid, status="pending")  # keeps its turn
                return False
            case Verdict.RETRY if row.attempts < len(BACKOFF):
                await outbox.finish(
                    self._engine,
                    tid,
                    status="pending",
                    attempts=row.attempts + 1,
                    next_at=now + BACKOFF[row.attempts],
                    error=out.reason,
                )
            case _:
                await outbox.finish(
                    self._engine,
                    tid,
                    status="failed",
                    attempts=row.attempts + 1,
                    error_code=out.code,
                    error=out.reason,
                )
        return True
