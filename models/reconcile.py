"""What reconciliation reads and remembers: Asterisk's CEL events and how far it has got.

``cel`` is the table Asterisk's ``cel_pgsql`` writes into on PostgreSQL (it fills the columns it
knows by name and leaves the others to their defaults); with SQLite, `ivr` copies the lines of
``cel_custom``'s CSV file into it. ``reconcile_state`` keeps, per source, where reading stopped.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class CelEvent(Base):
    __tablename__ = "cel"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    eventtype: Mapped[str] = mapped_column(String(30))
    eventtime: Mapped[float] = mapped_column(Float)  # Unix time (cel_pgsql: a float column)
    cid_name: Mapped[str] = mapped_column(String(128), server_default="")
    cid_num: Mapped[str] = mapped_column(String(64), server_default="")
    cid_dnid: Mapped[str] = mapped_column(String(64), server_default="")
    exten: Mapped[str] = mapped_column(String(64), server_default="")
    context: Mapped[str] = mapped_column(String(80), server_default="")
    channame: Mapped[str] = mapped_column(String(128), server_default="")
    appname: Mapped[str] = mapped_column(String(80), server_default="")
    appdata: Mapped[str] = mapped_column(Text, server_default="")
    uniqueid: Mapped[str] = mapped_column(String(150), server_default="")
    linkedid: Mapped[str] = mapped_column(String(150), server_default="")
    peer: Mapped[str] = mapped_column(String(128), server_default="")
    extra: Mapped[str] = mapped_column(Text, server_default="")
    eid: Mapped[str] = mapped_column(String(64), server_default="")  # cel_pgsql leaves it ""

    __table_args__ = (Index(None, "linkedid"), Index(None, "eventtype", "id"))


class ReconcileState(Base):
    __tablename__ = "reconcile_state"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger, default=0)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes read, or the last cel id
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
