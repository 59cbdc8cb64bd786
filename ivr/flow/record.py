"""The call's record, built by pure code from the call's steps.

The flow appends :class:`Step` values to a :class:`CallTrace`; :func:`CallTrace.finish` derives the
final :class:`CallRecord` (disposition, branch, unit, times) from them. Writers persist records;
nothing here touches storage.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ivr.session import CallInfo


class Disposition(enum.StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"
    VOICEMAIL = "voicemail"
    ABANDONED = "abandoned"  # the caller left (or gave up) in the menus
    CLOSED = "closed"  # outside office hours or on a holiday, no message left
    DIALPLAN = "dialplan"  # handed back to the dialplan on purpose
    ERRORED = "errored"  # our bug: handed back to the dialplan's fallback
    INTERRUPTED = "interrupted"  # the controller stopped while the call ran
    FALLBACK = "fallback"  # no controller saw it: answered by the dialplan, known from Asterisk
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class Step:
    node: str
    kind: str  # the node's type
    outcome: str
    input: str = ""
    detail: str = ""
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True, slots=True)
class Voicemail:
    name: str
    location: str
    duration_seconds: float
    size_bytes: int
    sha256: str
    branch: str | None
    unit: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CallRecord:
    channel_id: str
    linked_id: str
    caller_number: str
    caller_name: str
    dialed: str
    routing_version: str
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    disposition: Disposition
    path: tuple[str, ...]
    digits: str
    branch: str | None
    unit: str | None
    endpoint: str | None
    wait_seconds: float
    talk_seconds: float
    steps: tuple[Step, ...]
    voicemail: Voicemail | None
    error: str | None
    hangup_by: str | None  # "caller", "callee", "system"
    node: str = ""  # the Asterisk that carried the call (its entity id), stamped by the adapter
    controller: str = ""  # the controller instance that ran it, stamped by the writer

    @property
    def key(self) -> str:
        """The call's key in the store, unique across Asterisk nodes and restarts."""
        return call_key(self.node, self.channel_id)


def call_key(node: str, channel_id: str) -> str:
    """``<node>/<channel id>``: a channel id (Asterisk's uniqueid) is unique only within its
    Asterisk, the node's entity id makes it unique everywhere. No node: the bare channel id."""
    return f"{node}/{channel_id}" if node else channel_id


_CLOSED_OUTCOMES = {"closed", "holiday"}
_KEY_KINDS = {"menu", "directory"}  # the nodes whose input is keys the caller pressed
_DIAL_DISPOSITIONS = {
    "busy": Disposition.BUSY,
    "no_answer": Disposition.NO_ANSWER,
    "unreachable": Disposition.UNREACHABLE,
}


@dataclass(slots=True)
class CallTrace:
    info: CallInfo
    routing_version: str
    started_at: dt.datetime
    answered_at: dt.datetime | None = None
    steps: list[Step] = field(default_factory=list)
    branch: str | None = None
    unit: str | None = None
    endpoint: str | None = None
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    voicemail: Voicemail | None = None
    error: str | None = None
    hangup_by: str | None = None
    handed_back: bool = False
    visited: list[str] = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def snapshot(self, ended_at: dt.datetime | None = None) -> CallRecord:
        """The record as it stands; ``ended_at`` set means the call is over."""
        return CallRecord(
            channel_id=self.info.channel_id,
            linked_id=self.info.linked_id or self.info.channel_id,
            caller_number=self.info.caller_number,
            caller_name=self.info.caller_name,
            dialed=self.info.dialed,
            routing_version=self.routing_version,
            started_at=self.started_at,
            answered_at=self.answered_at,
            ended_at=ended_at,
            disposition=disposition(self) if ended_at else Disposition.IN_PROGRESS,
            path=tuple(self.visited),
            digits=_digits(self.steps),
            branch=self.branch,
            unit=self.unit,
            endpoint=self.endpoint,
            wait_seconds=round(self.wait_seconds, 3),
            talk_seconds=round(self.talk_seconds, 3),
            steps=tuple(self.steps),
            voicemail=self.voicemail,
            error=self.error,
            hangup_by=self.hangup_by,
        )


def disposition(trace: CallTrace) -> Disposition:
    if trace.error is not None:
        return Disposition.ERRORED
    if trace.voicemail is not None and trace.voicemail.duration_seconds > 0:
        return Disposition.VOICEMAIL  # an empty recording (silence, no audio) is no message
    dials = [s for s in trace.steps if s.kind in {"dial", "directory"} and s.outcome != "not_found"]
    if any(s.outcome == "answered" for s in dials):
        return Disposition.ANSWERED
    if trace.handed_back:
        return Disposition.DIALPLAN
    if dials and dials[-1].outcome in _DIAL_DISPOSITIONS:
        return _DIAL_DISPOSITIONS[dials[-1].outcome]
    if any(s.kind == "hours" and s.outcome in _CLOSED_OUTCOMES for s in trace.steps):
        return Disposition.CLOSED
    return Disposition.ABANDONED


def interrupted(record: CallRecord, at: dt.datetime) -> CallRecord:
    """A record left in progress by a controller that stopped, closed with what is known."""
    return replace(record, ended_at=at, disposition=Disposition.INTERRUPTED)


def summary(steps: Sequence[Step]) -> tuple[tuple[str, ...], str]:
    """The path (nodes in order, a node's repeated steps once) and the keys pressed, from the
    steps alone: what an interrupted call's row keeps when its end was never written."""
    path: list[str] = []
    for s in steps:
        if not path or path[-1] != s.node:
            path.append(s.node)
    return tuple(path), _digits(steps)


def _digits(steps: Sequence[Step]) -> str:
    return "".join(s.input for s in steps if s.kind in _KEY_KINDS)


class CallObserver(Protocol):
    """Where records go: must return at once (a writer queues, it never awaits the database)."""

    def call_started(self, record: CallRecord) -> None: ...

    def call_step(self, channel_id: str, step: Step) -> None: ...

    def call_ended(self, record: CallRecord) -> None: ...


class Identified:
    """Stamps a call's records with the Asterisk node that carried it, and gives its steps the
    call's key: what the adapter (ARI or FastAGI) wraps round the observer for each call."""

    def __init__(self, inner: CallObserver, node: str) -> None:
        self.inner, self.node = inner, node

    def call_started(self, record: CallRecord) -> None:
        self.inner.call_started(replace(record, node=self.node))

    def call_step(self, channel_id: str, step: Step) -> None:
        self.inner.call_step(call_key(self.node, channel_id), step)

    def call_ended(self, record: CallRecord) -> None:
        self.inner.call_ended(replace(record, node=self.node))


class FanOut:
    """Hands every record to several observers, in order (e.g. the store and metrics)."""

    def __init__(self, *observers: CallObserver) -> None:
        self.observers = observers

    def call_started(self, record: CallRecord) -> None:
        for o in self.observers:
            o.call_started(record)

    def call_step(self, channel_id: str, step: Step) -> None:
        for o in self.observers:
            o.call_step(channel_id, step)

    def call_ended(self, record: CallRecord) -> None:
        for o in self.observers:
            o.call_ended(record)


class MemoryObserver:
    """Keeps finished records in memory (demo, tests, `ivr routing simulate`)."""

    def __init__(self) -> None:
        self.live: dict[str, CallRecord] = {}
        self.done: list[CallRecord] = []
        self.steps: dict[str, list[Step]] = {}

    def call_started(self, record: CallRecord) -> None:
        self.live[record.channel_id] = record

    def call_step(self, channel_id: str, step: Step) -> None:
        self.steps.setdefault(channel_id, []).append(step)

    def call_ended(self, record: CallRecord) -> None:
        self.live.pop(record.channel_id, None)
        self.done.append(record)
