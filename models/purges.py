"""What `ivr db purge` removed: one row per purge. The rollups keep the counts of purged calls;
`ivr db rollups rebuild` keeps their rows before the latest ``before`` instead of recounting
(and so losing) them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Purge(Base):
    __tablename__ = "purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    before: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # a local midnight: calls before it
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # when the purge ran
    calls: Mapped[int] = mapped_column(Integer)  # how many it removed
