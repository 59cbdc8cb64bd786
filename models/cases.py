"""Complaint cases (phản ánh, kiến nghị), their timeline, and the per-year number counter."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime
from models.calls import KEY_LENGTH

CASE_STATUSES = ("received", "forwarded", "verifying", "answered", "closed", "rejected")
CHANNELS = ("hotline", "voicemail", "zalo", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # PAKN-2026-0013
    year: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(16))
    citizen_name: Mapped[str] = mapped_column(String(128), default="")
    citizen_phone: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(128))
    owner_unit: Mapped[str | None] = mapped_column(String(16))  # a directory unit's code
    owner_name: Mapped[str] = mapped_column(String(255), default="")
    branch: Mapped[str | None] = mapped_column(String(8))
    assignee: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    call_id: Mapped[str | None] = mapped_column(
        String(KEY_LENGTH), ForeignKey("calls.id", ondelete="SET NULL")
    )
    voicemail_id: Mapped[int | None] = mapped_column(
        ForeignKey("voicemails.id", ondelete="SET NULL")
    )
    forward_due: Mapped[dt.date] = mapped_column(Date)
    answer_due: Mapped[dt.date] = mapped_column(Date)
    forwarded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    answer: Mapped[str] = mapped_column(Text, default="")
    reject_reason: Mapped[str] = mapped_column(Text, default="")

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        Index(None, "status", "answer_due"),
        Index(None, "owner_unit"),
        Index(None, "received_at"),
    )


class CaseEvent(Base):
    """One line of a case's timeline: opened, a status change, an assignment (who, when, before,
    after)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    who: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # status, assign
    before: Mapped[str] = mapped_column(String(255), default="")
    after: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    case: Mapped[Case] = relationship(back_populates="events")

    __table_args__ = (Index(None, "case_id"),)


class CaseCounter(Base):
    """The last number given in a year: one row per year, its key unique, bumped in the same
    transaction that inserts the case."""

    __tablename__ = "case_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)
