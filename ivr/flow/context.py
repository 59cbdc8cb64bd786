"""The call context a node handler works with; the engine builds it, the nodes use it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from ivr.flow.record import CallObserver, CallTrace, Step
from ivr.routing.model import Routing
from ivr.session import CallSession

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class CallContext:
    """What a node handler may use: the session, the routing it began on, the trace, a clock."""

    session: CallSession
    routing: Routing
    trace: CallTrace
    clock: Clock
    observer: CallObserver

    def step(self, node: str, kind: str, outcome: str, inp: str = "", detail: str = "") -> None:
        step = self.trace.add(Step(node, kind, outcome, inp, detail, self.clock()))
        self.observer.call_step(self.trace.info.channel_id, step)
