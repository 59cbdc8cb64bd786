"""The protocol-agnostic call-session interface the call flow talks to.

ARI (:mod:`ivr.ari.session`), FastAGI and the test double (:mod:`ivr.sim.dry_run`) implement
it. Nothing here knows about HTTP, sockets, YAML or SQL.

Hang-up is not a return value: once the caller is gone every operation raises
:class:`CallerHangup`, which the flow handles in one place at the top of the call.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class CallerHangup(Exception):
    """The caller hung up; raised into whatever the call was awaiting."""

    def __init__(self, cause: int | None = None) -> None:
        super().__init__(f"caller hung up (cause {cause})")
        self.cause = cause


class HangupWhileRinging(CallerHangup):
    """The caller hung up while the desks rang: how long they waited is part of the record."""

    def __init__(self, waited: float, cause: int | None = None) -> None:
        super().__init__(cause)
        self.waited = waited


class SessionError(Exception):
    """The telephony side refused or failed an operation the flow asked for."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the PBX told us about the call when it arrived."""

    channel_id: str
    caller_number: str
    caller_name: str = ""
    dialed: str = ""
    linked_id: str = ""


class DialStatus(enum.StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"


def overall_status(statuses: dict[str, DialStatus]) -> DialStatus:
    """What to tell of a dial nobody answered: someone rang > someone was busy > no phone."""
    values = set(statuses.values())
    for status in (DialStatus.NO_ANSWER, DialStatus.BUSY):
        if status in values:
            return status
    return DialStatus.UNREACHABLE


@dataclass(frozen=True, slots=True)
class DialRequest:
    endpoints: Sequence[str]
    ring_seconds: float
    caller_id_name: str
    caller_id_number: str
    music: str = "ringback"  # "ringback" or a music-on-hold class
    record_talk: bool = False
    # prompts the caller hears while the desks ring (the adapter dials first, then plays them;
    # a desk that answers stops them); FastAGI gives Dial their music-on-hold class
    announce: Sequence[str] = ()
    # called with the endpoint as soon as a desk answers (before the conversation), by the
    # adapters that learn it then (ARI); the flow records the call's live state with it
    on_answer: Callable[[str], None] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class DialResult:
    status: DialStatus
    endpoint: str | None = None  # the endpoint that answered
    wait_seconds: float = 0.0  # from the dial to the answer (or to the give-up)
    talk_seconds: float = 0.0  # from the answer to the end of the conversation
    ended_by: str | None = None  # "caller" or "callee" when answered
    per_endpoint: dict[str, DialStatus] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordRequest:
    name: str
    max_seconds: int
    max_silence_seconds: int
    terminate_on: str = "#"
    beep: bool = True


@dataclass(frozen=True, slots=True)
class RecordResult:
    name: str
    duration_seconds: float
    size_bytes: int
    sha256: str
    location: str  # where the PBX keeps it (a path or a URI)
    caller_hung_up: bool = False
    # The file's bytes when the adapter can read them (to tell speech from silence), else None
    audio: bytes | None = field(default=None, repr=False, compare=False)


class CallSession(Protocol):
    """One call, as the flow sees it. One coroutine uses a session at a time."""

    @property
    def info(self) -> CallInfo: ...

    async def answer(self) -> None: ...

    async def play(self, prompts: Sequence[str], *, interruptible: bool = True) -> None:
        """Play prompt ids in order; a digit pressed while interruptible stops playback.

        The digit is kept (type-ahead) for the next :meth:`read_digits`.
        """

    async def read_digits(
        self,
        max_digits: int,
        first_timeout: float,
        inter_digit_timeout: float,
        terminators: str = "#",
    ) -> str:
        """Collect up to ``max_digits`` digits, starting with those already typed.

        Returns ``""`` when nothing is pressed before ``first_timeout``. A terminator ends
        the input and is not returned; ``*`` is returned as typed so the flow can act on it.
        """

    def flush_digits(self) -> None: ...

    async def dial(self, request: DialRequest) -> DialResult:
        """Ring the endpoints at once; bridge the first that answers until one side hangs up.

        After a conversation the desk ended, the caller stays on the line (the flow decides what
        follows); a caller who hangs up while the desks ring raises :class:`HangupWhileRinging`.
        """

    async def record(self, request: RecordRequest) -> RecordResult:
        """Record a message; a recording the PBX could not make raises :class:`SessionError`."""

    async def set_variable(self, name: str, value: str) -> None: ...

    async def hangup(self, cause: str = "normal") -> None: ...

    async def continue_in_dialplan(
        self, context: str | None = None, extension: str | None = None, priority: int | None = None
    ) -> None: ...
