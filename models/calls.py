"""Calls, the steps each took, and the voicemails they left."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.flow.record import Disposition
from models.base import Base, UTCDateTime

DISPOSITIONS = tuple(d.value for d in Disposition)  # the flow's enum, stored as its value
VOICEMAIL_STATUSES = ("new", "heard", "handled")
KEY_LENGTH = 220  # a node (64), "/", a channel id (150)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Call(Base):
    __tablename__ = "calls"

    # the call's key, "<node>/<channel id>" (ivr.flow.record.call_key): unique across Asterisk
    # nodes and restarts, the idempotent key every write uses
    id: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(150))  # Asterisk's uniqueid of the caller
    node: Mapped[str] = mapped_column(String(64))  # the Asterisk's entity id ("" if unknown)
    controller: Mapped[str] = mapped_column(String(64))  # the controller instance that owns it
    linked_id: Mapped[str] = mapped_column(String(64))
    caller_number: Mapped[str] = mapped_column(String(64))
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    dialed: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    path: Mapped[str] = mapped_column(Text, default="")  # node names joined by ">"
    digits: Mapped[str] = mapped_column(String(64), default="")
    branch: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(String(128))
    disposition: Mapped[str] = mapped_column(String(16))
    wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    routing_version: Mapped[str] = mapped_column(String(32))
    hangup_by: Mapped[str | None] = mapped_column(String(16))
    # Q.850 cause of the caller's channel as AMI's Hangup event reported it (when AMI is watched)
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)

    steps: Mapped[list[CallStep]] = relationship(
        back_populates="call", order_by="CallStep.seq", cascade="all, delete-orphan"
    )
    voicemail: Mapped[Voicemail | None] = relationship(
        back_populates="call", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint(_in("disposition", DISPOSITIONS), name="disposition"),
        UniqueConstraint("node", "channel_id"),
        Index(None, "channel_id"),
        Index(None, "started_at"),
        Index(None, "branch", "started_at"),
        Index(None, "unit", "started_at"),
        Index(None, "disposition", "started_at"),
        Index(None, "caller_number", "started_at"),
        Index(None, "started_at", "id"),  # the call list's keyset pages (0008)
        Index(None, "endpoint", "started_at"),
    )


class CallStep(Base):
    __tablename__ = "call_steps"

    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    input: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    call: Mapped[Call] = relationship(back_populates="steps")


class Voicemail(Base):
    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(Text)
    duration_seconds: Mapped[float] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(16))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(8), default="new")
    status_by: Mapped[str | None] = mapped_column(String(64))
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    call: Mapped[Call] = relationship(back_populates="voicemail")

    __table_args__ = (
        CheckConstraint(_in("status", VOICEMAIL_STATUSES), name="status"),
        Index(None, "status", "recorded_at"),
        Index(None, "branch", "recorded_at"),
        Index(None, "unit", "recorded_at"),
    )


class Controller(Base):
    """A running controller instance (`ivr run`, `ivr agi`) and the lease it holds on its calls.

    A controller renews ``lease_until`` while it runs; once that time has passed it is presumed
    dead, and any other controller may close its calls still in progress as interrupted.
    """

    __tablename__ = "controllers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the instance id
    node: Mapped[str] = mapped_column(String(64), default="")
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
