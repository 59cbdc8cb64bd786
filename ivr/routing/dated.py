"""Units through time: which unit a code reaches on a given day, following replacements.

Pure functions over a checked :class:`Routing`. The directory uses :func:`resolve` to route a
call; reports use :func:`successor` to group old units under today's ones; the prompt builder
uses :func:`unit_prompt` and :func:`moved_prompt` to name each entry's generated prompts.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ivr.routing.model import Routing, Unit

ONE_DAY = dt.timedelta(days=1)


class Reach(enum.StrEnum):
    CURRENT = "current"  # the code's own unit is in force that day
    REPLACED = "replaced"  # the code's unit ended; its successor (perhaps after several) is
    ENDED = "ended"  # the code's unit ended and nobody took it over (yet)
    NOT_YET = "not_yet"  # the code's unit starts later
    UNKNOWN = "unknown"  # no unit ever had this code


@dataclass(frozen=True, slots=True)
class Resolution:
    """What dialling ``code`` on a day does. ``chain``: the ended units passed through, in order
    (empty unless REPLACED or ENDED); ``reached``: the unit the call goes to, if any."""

    code: str
    reach: Reach
    chain: tuple[Unit, ...] = ()
    reached: Unit | None = None

    @property
    def dialled(self) -> Unit | None:
        """The unit the dialled code named (its last entry before the day, or the one in force)."""
        return self.chain[0] if self.chain else self.reached


def local_date(routing: Routing, at: dt.datetime) -> dt.date:
    """The hotline's calendar day at instant ``at`` (validity dates are local days)."""
    return at.astimezone(ZoneInfo(routing.hotline.timezone)).date()


def resolve(routing: Routing, code: str, day: dt.date) -> Resolution:
    """Where ``code`` leads on ``day``, following ``replaced_by`` from every unit that ended."""
    chain: list[Unit] = []
    seen: set[str] = set()
    while code not in seen:  # a loop is refused by `routing check`; never spin on one anyway
        seen.add(code)
        entries = routing.entries(code)
        if not entries:
            return Resolution(code, Reach.ENDED if chain else Reach.UNKNOWN, tuple(chain))
        current = routing.unit_on(code, day)
        if current is not None:
            reach = Reach.REPLACED if chain else Reach.CURRENT
            return Resolution(chain[0].code if chain else code, reach, tuple(chain), current)
        ended = [u for u in entries if u.valid_until is not None and u.valid_until < day]
        if not ended:
            return Resolution(code, Reach.ENDED if chain else Reach.NOT_YET, tuple(chain))
        last = max(ended, key=lambda u: u.valid_until or dt.date.min)
        chain.append(last)
        if last.replaced_by is None:
            break
        code = last.replaced_by
    return Resolution(chain[0].code, Reach.ENDED, tuple(chain))


def successor(routing: Routing, code: str, day: dt.date) -> Unit | None:
    """The unit that answers for ``code`` on ``day``: itself while in force, else the end of its
    chain of replacements; None when the unit does not exist that day and nobody took it over."""
    return resolve(routing, code, day).reached


def _suffix(routing: Routing, unit: Unit) -> str:
    entries = routing.entries(unit.code)
    if not entries or entries[0] is unit:
        return unit.code
    when = unit.valid_from.strftime("%Y%m%d") if unit.valid_from else str(entries.index(unit))
    return f"{unit.code}-{when}"


def unit_prompt(routing: Routing, unit: Unit) -> str:
    """The id of the prompt saying the unit's name: unit-<code> (plus -<start date> for a later
    entry under a reused code)."""
    return f"unit-{_suffix(routing, unit)}"


def moved_prompt(routing: Routing, unit: Unit) -> str:
    """The id of the prompt "<unit> nay là <its successor>", for a unit with ``replaced_by``."""
    return f"moved-{_suffix(routing, unit)}"


def next_unit(routing: Routing, unit: Unit) -> Unit | None:
    """The unit that took ``unit`` over, on the day after it ended (None if nobody did)."""
    if unit.replaced_by is None or unit.valid_until is None:
        return None
    return routing.unit_on(unit.replaced_by, unit.valid_until + ONE_DAY)
