"""`--by`: the key (and its label) a call falls under for each grouping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from ivr.reports.facts import CallFact
from ivr.routing.dated import successor
from ivr.routing.model import Routing

GROUPINGS = (
    "branch",
    "unit",
    "department",
    "phone",
    "day",
    "week",
    "month",
    "hour",
    "weekday",
    "disposition",
)
WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
NONE = "(không có)"

KeyOf = Callable[[CallFact], str]


class Grouper:
    """Keys and labels for every grouping, from the routing file (names, owners, successors).

    ``as_of``: group units under the unit that answers for them on that day (`--as-of`), else
    under the unit recorded on the call."""

    def __init__(self, routing: Routing | None, tz: str, as_of: dt.date | None = None) -> None:
        self.routing, self.zone, self.as_of = routing, ZoneInfo(tz), as_of

    def key(self, by: str, f: CallFact) -> str:
        local = f.started_at.astimezone(self.zone)
        match by:
            case "branch":
                return f.branch or NONE
            case "unit":
                return self._unit(f.unit)
            case "department":
                return self._department(f, local.date())
            case "phone":
                return f.endpoint or NONE
            case "day":
                return local.date().isoformat()
            case "week":
                year, week, _ = local.isocalendar()
                return f"{year}-W{week:02d}"
            case "month":
                return f"{local:%Y-%m}"
            case "hour":
                return f"{local.hour:02d}"
            case "weekday":
                return str(local.isoweekday())
            case "disposition":
                return f.disposition
        raise ValueError(f"không nhóm được theo '{by}'")

    def label(self, by: str, key: str) -> str:
        r = self.routing
        if key == NONE:
            return key
        if by == "branch" and r is not None and key in r.branches:
            return f"{key}. {r.branches[key].name}"
        if by == "unit" and r is not None and r.entries(key):
            return f"{key} {r.entries(key)[-1].name}"
        if by == "weekday":
            return WEEKDAYS[int(key) - 1]
        if by == "hour":
            return f"{key}:00–{key}:59"
        return key

    def _unit(self, code: str | None) -> str:
        if code is None:
            return NONE
        if self.as_of is None or self.routing is None:
            return code
        now = successor(self.routing, code, self.as_of)
        return now.code if now is not None else code

    def _department(self, f: CallFact, day: dt.date) -> str:
        """The agency that answered for the call: the branch's owner on the call's day, or the
        unit reached through the directory."""
        r = self.routing
        if r is not None and f.branch is not None and f.branch in r.branches:
            return r.branches[f.branch].on(day).owner
        if f.unit is not None:
            unit = r.unit_on(f.unit, day) if r is not None else None
            return unit.name if unit is not None else f.unit
        return NONE
