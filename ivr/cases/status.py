"""The case status machine. Pure: no clock, no database.

tiếp nhận → chuyển xử lý → đang xác minh → đã trả lời → đóng; từ chối (with a reason) from any
open status before an answer. Every change is a :class:`Change` (who, when, before, after).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    RECEIVED = "received"  # tiếp nhận
    FORWARDED = "forwarded"  # chuyển xử lý
    VERIFYING = "verifying"  # đang xác minh
    ANSWERED = "answered"  # đã trả lời
    CLOSED = "closed"  # đóng
    REJECTED = "rejected"  # từ chối

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    Status.RECEIVED: "tiếp nhận",
    Status.FORWARDED: "chuyển xử lý",
    Status.VERIFYING: "đang xác minh",
    Status.ANSWERED: "đã trả lời",
    Status.CLOSED: "đóng",
    Status.REJECTED: "từ chối",
}

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.FORWARDED, Status.REJECTED}),
    Status.FORWARDED: frozenset({Status.VERIFYING, Status.REJECTED}),
    Status.VERIFYING: frozenset({Status.ANSWERED, Status.REJECTED}),
    Status.ANSWERED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
    Status.REJECTED: frozenset(),
}

OPEN = frozenset({Status.RECEIVED, Status.FORWARDED, Status.VERIFYING})
FINISHED = frozenset({Status.ANSWERED, Status.CLOSED, Status.REJECTED})


class RefusedTransition(ValueError):
    """A status change the machine does not allow (message in Vietnamese, for the admin)."""


@dataclass(frozen=True, slots=True)
class Change:
    who: str
    at: dt.datetime
    before: Status | None  # None: the case was opened
    after: Status
    note: str = ""


def transition(
    current: Status, target: Status, who: str, at: dt.datetime, note: str = ""
) -> Change:
    """The change from ``current`` to ``target``, or RefusedTransition saying why not."""
    if not who.strip():
        raise RefusedTransition("cần ghi người thực hiện (--by)")
    if at.tzinfo is None:
        raise ValueError("naive datetime given to a status change")
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.label for s in ALLOWED[current])) or "không còn bước nào"
        raise RefusedTransition(
            f"không chuyển được từ «{current.label}» sang «{target.label}» (được: {allowed})"
        )
    if target is Status.REJECTED and not note.strip():
        raise RefusedTransition("từ chối cần ghi lý do (--reason)")
    return Change(who=who, at=at, before=current, after=target, note=note)


def opened(who: str, at: dt.datetime, note: str = "") -> Change:
    if not who.strip():
        raise RefusedTransition("cần ghi người tiếp nhận (--by)")
    return Change(who=who, at=at, before=None, after=Status.RECEIVED, note=note)
