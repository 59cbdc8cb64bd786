"""Satisfaction answers (1–5), from the IVR after a call or from Zalo; the Zalo survey outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime
from models.calls import KEY_LENGTH

SOURCES = ("ivr", "zalo")


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str | None] = mapped_column(
        String(KEY_LENGTH), ForeignKey("calls.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(8))
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)  # Zalo tracking id
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    score: Mapped[int] = mapped_column(Integer)
    branch: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(String(128))  # the phone that answered the call

    __table_args__ = (
        CheckConstraint("score BETWEEN 1 AND 5", name="score"),
        CheckConstraint("source IN ('ivr', 'zalo')", name="source"),
        Index(None, "answered_at"),
    )


class ZaloOutbox(Base):
    """One Zalo survey per call whose caller agreed, sent at most once (tracking id: the call's
    key). ``sending`` is committed before the request leaves, with ``next_at`` the end of the claim;
    a row still ``sending`` past it was interrupted mid-request and becomes ``unsure``, never sent
    again."""

    __tablename__ = "zalo_outbox"

    tracking_id: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    call_id: Mapped[str | None] = mapped_column(
        String(KEY_LENGTH), ForeignKey("calls.id", ondelete="SET NULL")
    )
    phone: Mapped[str] = mapped_column(String(16))  # 84xxxxxxxxx ("" when not a mobile number)
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # not tried before this time
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    error_code: Mapped[int | None] = mapped_column(Integer)  # Zalo's, when it gave one
    error: Mapped[str | None] = mapped_column(Text)
    msg_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'unsure')", name="status"
        ),
        Index(None, "status", "next_at"),
    )
