"""The desk phones' states as the controllers see them over AMI, for the console (another
process) to show: one row per controller and phone, rewritten when the state changes and
touched every few seconds while the controller lives (``seen_at``: a stale row is a stopped
controller, not a phone)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class PhoneStatus(Base):
    __tablename__ = "phones"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)  # the controller's id
    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)  # the AOR, e.g. cchc-6
    state: Mapped[str] = mapped_column(String(16))  # ivr.ami.watch.PhoneState
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # this state, as seen by the node
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the node's last word on it

    __table_args__ = (Index(None, "seen_at"),)
