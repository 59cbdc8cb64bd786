"""The owner unit of a case, from the routing file: a directory unit (followed to its successor
on the day of receipt, ivr.routing.dated) or a branch's owner on that day. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ivr.routing.dated import successor
from ivr.routing.model import Routing


class UnknownOwner(ValueError):
    """No such unit or branch in the routing file (message in Vietnamese)."""


@dataclass(frozen=True, slots=True)
class Owner:
    unit: str | None  # a directory code, when the owner is in the directory
    name: str
    branch: str | None = None
    note: str = ""  # e.g. "mã 1005 nay là 1006 (Sở Khoa học và Công nghệ)"

    @property
    def key(self) -> str:
        """What clerks and digests group by: the unit code, else ``branch:N``."""
        return self.unit or f"branch:{self.branch}"


def owner_of_unit(routing: Routing, code: str, day: dt.date) -> Owner:
    if not routing.entries(code):
        raise UnknownOwner(f"không có đơn vị mã {code} trong danh bạ")
    unit = successor(routing, code, day)
    if unit is None:
        raise UnknownOwner(
            f"đơn vị mã {code} không hoạt động ngày {day:%d/%m/%Y} và không có đơn vị tiếp nhận"
        )
    note = "" if unit.code == code else f"mã {code} nay là {unit.code} ({unit.name})"
    return Owner(unit=unit.code, name=unit.name, note=note)


def owner_of_branch(routing: Routing, branch: str, day: dt.date) -> Owner:
    """The branch's owner that day; its directory code when a unit in force has that name."""
    found = routing.branches.get(branch)
    if found is None:
        raise UnknownOwner(f"không có nhánh {branch} (có: {', '.join(routing.branches)})")
    name = found.on(day).owner
    for unit in routing.units:
        if unit.name.casefold() == name.casefold() and unit.valid_on(day):
            return Owner(unit=unit.code, name=unit.name, branch=branch)
    return Owner(unit=None, name=name, branch=branch)
