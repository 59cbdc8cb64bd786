"""Satisfaction answers (1–5), from the IVR after a call or imported from Zalo."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
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
