"""Scripted callers and clerks for the Asterisk simulator.

Times are nominal seconds (as on a real phone line); the simulator divides them by its speed.
A caller's script is a list of actions done in order; each may wait for something the caller
hears first (``on``) and then for a delay (``after``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Press:
    """Press keys, one every 0.4 s like SIPp's RFC 4733 DTMF."""

    digits: str
    on: str | None = None  # "answer", "prompt:<id>", "record", "bridged", "ringing"
    after: float = 0.5


@dataclass(frozen=True, slots=True)
class Speak:
    """Talk (audio that a recording keeps) for ``seconds``, then go quiet."""

    seconds: float
    on: str | None = "record"
    after: float = 0.3


@dataclass(frozen=True, slots=True)
class Hangup:
    on: str | None = None
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Wait:
    on: str | None = None
    after: float = 0.0


Action = Press | Speak | Hangup | Wait


@dataclass(frozen=True, slots=True)
class CallerScript:
    actions: tuple[Action, ...] = ()
    number: str = "0912345678"
    name: str = ""
    exten: str = "18001022"
    label: str = ""  # for reports
    rtp: bool = True  # False: a phone that sends no audio at all (recordings come out empty)


class ClerkKind(enum.StrEnum):
    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class ClerkScript:
    kind: ClerkKind = ClerkKind.ANSWER
    ring_seconds: float = 2.0  # before answering or refusing
    talk_seconds: float | None = 5.0  # then hang up; None: wait for the caller to hang up


@dataclass
class Clerks:
    """Behaviour of each desk phone; phones not named behave as ``default``."""

    by_endpoint: dict[str, ClerkScript] = field(default_factory=dict)
    default: ClerkScript = field(default_factory=ClerkScript)

    def for_endpoint(self, endpoint: str) -> ClerkScript:
        return self.by_endpoint.get(endpoint, self.default)
