"""Why a write failed: the database is away (retry later) or the record itself is at fault.

An outage is anything about reaching or running the database: refused or reset connections,
timeouts, a server shutting down, a locked or read-only database, a missing table, a serialisation
failure. A data error is about the rows: a value the column refuses (SQLSTATE class 22), a broken
constraint (class 23: a step whose call is gone), or a value the driver cannot even send. Anything
the writer does not recognise counts as an outage: the batch waits in the spool, nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exc

_DATA_SQLSTATE_CLASSES = ("22", "23")


class NotReady(Exception):
    """The store cannot be used as it is; the message is one line saying what to do."""


def is_data_error(e: BaseException) -> bool:
    """True when the rows are at fault, so retrying the same rows can never succeed."""
    for link in _chain(e):
        if isinstance(link, OSError):
            return False  # the network or the disk, whatever wraps it
    for link in _chain(e):
        if isinstance(link, (exc.DataError, exc.IntegrityError)):
            return True
        sqlstate = getattr(link, "sqlstate", None) or getattr(link, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_DATA_SQLSTATE_CLASSES):
            return True
        if isinstance(link, (ValueError, TypeError, KeyError, exc.CompileError)):
            return True  # the driver or SQLAlchemy could not turn a value into SQL
        if isinstance(link, exc.StatementError) and link.orig is None:
            return True  # e.g. a bind parameter the row lacks
    return False


_CONFLICT_SQLSTATES = ("40001", "40P01")  # serialization_failure, deadlock_detected


class ConcurrentWrite(Exception):
    """Another transaction stored a call this batch found absent when it read its facts (a
    reconciler's fallback row, committed in between): the batch is run again, and reads it."""


def is_conflict(e: BaseException) -> bool:
    """True when the database failed the transaction to let another one go on (a deadlock it
    broke, a serialisation failure), or the batch found a call stored meanwhile
    (ConcurrentWrite): nothing is wrong with the rows or the database, and running the same
    transaction again is what it takes."""
    for link in _chain(e):
        if isinstance(link, ConcurrentWrite):
            return True
        sqlstate = getattr(link, "sqlstate", None) or getattr(link, "pgcode", None)
        if sqlstate in _CONFLICT_SQLSTATES:
            return True
    return False


def _chain(e: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped, and their causes (bounded: chains can loop)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo and len(seen) < 16:
        link = todo.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        orig = getattr(link, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, link.__cause__]
