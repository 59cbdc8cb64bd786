"""An in-process :class:`CallSession` that plays a scripted caller and scripted clerks.

No sockets, no clocks: each ``read_digits`` takes the next scripted input. It records what the
flow did (prompts played, dials, recordings) so tests assert on behaviour, not on calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.session import (
    CallerHangup,
    CallInfo,
    DialRequest,
    DialResult,
    DialStatus,
    RecordRequest,
    RecordResult,
    overall_status,
)
from ivr.sim.scripts import ClerkKind

_STATUS = {
    ClerkKind.ANSWER: DialStatus.ANSWERED,
    ClerkKind.BUSY: DialStatus.BUSY,
    ClerkKind.NO_ANSWER: DialStatus.NO_ANSWER,
    ClerkKind.UNREACHABLE: DialStatus.UNREACHABLE,
}

SILENCE = ""  # a scripted input: the caller presses nothing until the timeout
HANGUP = "<hangup>"  # a scripted input: the caller hangs up instead of pressing


@dataclass
class FakeSession:
    info: CallInfo
    inputs: list[str] = field(default_factory=list)
    clerks: dict[str, ClerkKind] = field(default_factory=dict)  # endpoint → behaviour
    default_clerk: ClerkKind = ClerkKind.ANSWER
    talk_seconds: float = 30.0
    voicemail_seconds: float = 12.0
    hang_up_during_record: bool = False
    played: list[str] = field(default_factory=list)
    dialed: list[list[str]] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    _buffer: str = ""
    _gone: bool = False

    async def answer(self) -> None:
        self._check()
        self.events.append("answer")

    async def play(self, prompts: Sequence[str], *, interruptible: bool = True) -> None:
        self._check()
        if interruptible and self._buffer:
            return
        self.played.extend(prompts)

    async def read_digits(
        self,
        max_digits: int,
        first_timeout: float,
        inter_digit_timeout: float,
        terminators: str = "#",
    ) -> str:
        self._check()
        if not self._buffer:
            if not self.inputs:
                return ""
            nxt = self.inputs.pop(0)
            if nxt == HANGUP:
                self._gone = True
                raise CallerHangup()
            self._buffer = nxt
        got = ""
        while self._buffer and len(got) < max_digits:
            d, self._buffer = self._buffer[0], self._buffer[1:]
            if d in terminators:
                break
            got += d
        return got

    def flush_digits(self) -> None:
        self._buffer = ""

    async def dial(self, request: DialRequest) -> DialResult:
        self._check()
        self.played.extend(request.announce)  # what the caller hears while the desks ring
        self.dialed.append(list(request.endpoints))
        statuses = {e: _STATUS[self.clerks.get(e, self.default_clerk)] for e in request.endpoints}
        for endpoint, status in statuses.items():
            if status is DialStatus.ANSWERED:
                return DialResult(status, endpoint, 2.0, self.talk_seconds, "callee", statuses)
        status = overall_status(statuses)
        waited = request.ring_seconds if status is DialStatus.NO_ANSWER else 0.0
        return DialResult(status, None, waited, 0.0, None, statuses)

    async def record(self, request: RecordRequest) -> RecordResult:
        self._check()
        self.recorded.append(request.name)
        if self.hang_up_during_record:
            self._gone = True
        return RecordResult(
            name=request.name,
            duration_seconds=self.voicemail_seconds,
            size_bytes=int(44 + 16000 * self.voicemail_seconds),
            sha256="0" * 64,
            location=f"/var/spool/asterisk/recording/{request.name}.wav",
            caller_hung_up=self.hang_up_during_record,
        )

    async def set_variable(self, name: str, value: str) -> None:
        self._check()
        self.events.append(f"set {name}={value}")

    async def hangup(self, cause: str = "normal") -> None:
        if self._gone:
            return
        self.events.append("hangup")
        self._gone = True

    async def continue_in_dialplan(
        self, context: str | None = None, extension: str | None = None, priority: int | None = None
    ) -> None:
        self._check()
        self.events.append(f"continue {context},{extension},{priority}")
        self._gone = True

    def _check(self) -> None:
        if self._gone:
            raise CallerHangup()
