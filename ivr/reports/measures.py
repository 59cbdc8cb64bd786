"""Each measure, defined once (see MEASURES.md): a pure function of call facts.

:class:`Tally` adds facts one at a time (a report streams its calls) and gives
:class:`Figures`, the measures of one group of calls.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.flow.record import Disposition
from ivr.reports.facts import NO_MESSAGE, CallFact

SHORT_ABANDON_SECONDS = 5.0
SERVICE_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Options:
    short_abandon_seconds: float = SHORT_ABANDON_SECONDS
    service_seconds: float = SERVICE_SECONDS


def is_short_abandon(f: CallFact, o: Options) -> bool:
    """Abandoned while ringing after less than ``short_abandon_seconds`` of ringing."""
    return f.abandoned == "ringing" and f.ring_seconds < o.short_abandon_seconds


def within_service(f: CallFact, o: Options) -> bool:
    """Answered by a desk within ``service_seconds`` of the desks starting to ring."""
    return f.answered and f.routed and f.ring_seconds <= o.service_seconds


def no_answer_no_message(f: CallFact) -> bool:
    """Rung desks that did not pick up (busy, no answer, unreachable) and no message left."""
    return f.disposition in NO_MESSAGE


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    mean: float | None
    median: float | None
    p90: float | None


def durations(values: Iterable[float]) -> Durations:
    """Mean, median and 90th percentile (nearest rank) in seconds."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Durations(0, None, None, None)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    p90 = ordered[max(0, math.ceil(0.9 * n) - 1)]
    return Durations(n, round(sum(ordered) / n, 3), round(median, 3), round(p90, 3))


@dataclass(frozen=True, slots=True)
class Figures:
    """The measures of one group of calls (the whole period, a branch, a day...)."""

    received: int
    received_open: int
    received_closed: int
    received_holiday: int
    answered: int
    answered_rate: float | None  # answered ÷ (received − closed − holiday)
    abandoned_menu: int
    abandoned_ringing: int
    abandoned_short: int  # part of abandoned_ringing
    voicemail: int
    no_answer_no_message: int
    routed: int
    answered_in_time: int
    service_level: float | None  # answered_in_time ÷ routed
    waiting: Durations
    talk: Durations


COUNTS = (
    "received",
    "received_open",
    "received_closed",
    "received_holiday",
    "answered",
    "abandoned_menu",
    "abandoned_ringing",
    "abandoned_short",
    "voicemail",
    "no_answer_no_message",
    "routed",
    "answered_in_time",
)


@dataclass(slots=True)
class Tally:
    options: Options = field(default_factory=Options)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    waits: array[float] = field(default_factory=lambda: array("d"))
    talks: array[float] = field(default_factory=lambda: array("d"))

    def add(self, f: CallFact) -> None:
        c, o = self.counts, self.options
        c["received"] += 1
        c[f"received_{f.hours}" if f.hours in ("closed", "holiday") else "received_open"] += 1
        c["answered"] += f.answered
        c["abandoned_menu"] += f.abandoned == "menu"
        c["abandoned_ringing"] += f.abandoned == "ringing"
        c["abandoned_short"] += is_short_abandon(f, o)
        c["voicemail"] += f.disposition == Disposition.VOICEMAIL
        c["no_answer_no_message"] += no_answer_no_message(f)
        c["routed"] += f.routed
        c["answered_in_time"] += within_service(f, o)
        if f.waiting_seconds is not None:
            self.waits.append(f.waiting_seconds)
        if f.answered:
            self.talks.append(f.talk_seconds)

    def figures(self) -> Figures:
        c = self.counts
        open_calls = c["received"] - c["received_closed"] - c["received_holiday"]
        return Figures(
            **c,
            answered_rate=ratio(c["answered"], open_calls),
            service_level=ratio(c["answered_in_time"], c["routed"]),
            waiting=durations(self.waits),
            talk=durations(self.talks),
        )
