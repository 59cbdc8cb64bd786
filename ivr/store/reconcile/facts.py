"""What one call's CEL events say about it (pure): who called, when, who answered, how it ended.

A call is the events sharing a linkedid; its caller is the channel that began it (uniqueid ==
linkedid). It is a hotline call when that channel went through one of the hotline's contexts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.store.reconcile.cel import CelEvent

HOTLINE_CONTEXTS = frozenset({"hotline-inbound", "hotline-agi", "hotline-fallback"})
CONTROLLER_APPS = frozenset({"Stasis", "AGI"})
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;\d)?$")


@dataclass(frozen=True, slots=True)
class CallFacts:
    node: str
    channel_id: str
    linked_id: str
    caller_number: str
    caller_name: str
    dialed: str
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime
    contexts: tuple[str, ...]  # the dialplan contexts the caller went through, in order
    endpoint: str | None  # the phone that answered ("PJSIP/cchc-9a")
    wait_seconds: float  # while the phones rang
    talk_seconds: float
    hangup_by: str | None  # "caller", "callee", "system"
    hangup_cause: int | None
    controller_saw: bool  # it ran in Stasis or AGI: a controller should have its row


def endpoint_of(channel: str) -> str:
    """``PJSIP/cchc-9a-00000026`` → ``PJSIP/cchc-9a``."""
    return _CHANNEL_SUFFIX.sub("", channel)


def _at(event: CelEvent) -> dt.datetime:
    return dt.datetime.fromtimestamp(event.eventtime, dt.UTC)


def _extra(event: CelEvent) -> dict[str, object]:
    try:
        value = json.loads(event.extra) if event.extra else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def fold(events: Iterable[CelEvent], node: str = "") -> CallFacts | None:
    """The call's facts once it has ended (LINKEDID_END), if it is a hotline call; else None.
    ``node``: the Asterisk's entity id when the events do not carry it (cel_pgsql)."""
    evs = sorted(events, key=lambda e: e.eventtime)
    if not _ended(evs):
        return None
    linked = evs[0].linkedid
    mine = [e for e in evs if e.uniqueid == linked]
    contexts = _contexts(mine)
    if not mine or not HOTLINE_CONTEXTS & set(contexts):
        return None
    first = next((e for e in mine if e.eventtype == "CHAN_START"), mine[0])
    answered = next((e for e in mine if e.eventtype == "ANSWER"), None)
    hangup = next((e for e in mine if e.eventtype == "HANGUP"), None)
    ended = hangup or next((e for e in mine if e.eventtype == "CHAN_END"), evs[-1])
    desk = _desk(evs, linked)
    return CallFacts(
        node=next((e.eid for e in evs if e.eid), node),
        channel_id=linked,
        linked_id=linked,
        caller_number=first.cid_num,
        caller_name=first.cid_name,
        dialed=first.exten if first.exten != "s" else first.cid_dnid,
        started_at=_at(first),
        answered_at=_at(answered) if answered else None,
        ended_at=_at(ended),
        contexts=contexts,
        endpoint=endpoint_of(desk.channame) if desk else None,
        wait_seconds=_wait(mine, desk),
        talk_seconds=_talk(mine, ended),
        hangup_by=_hangup_by(hangup, first.channame, desk),
        hangup_cause=_cause(hangup),
        controller_saw=any(
            e.appname in CONTROLLER_APPS and e.eventtype not in {"APP_START", "APP_END"}
            for e in mine
        ),
    )


def _ended(evs: list[CelEvent]) -> bool:
    return any(e.eventtype == "LINKEDID_END" for e in evs)


def _contexts(mine: list[CelEvent]) -> tuple[str, ...]:
    out: list[str] = []
    for e in mine:
        if e.context and (not out or out[-1] != e.context):
            out.append(e.context)
    return tuple(out)


def _desk(evs: list[CelEvent], linked: str) -> CelEvent | None:
    """The answer of the phone the caller talked to: the peer of the caller's bridge, else the
    first other channel that answered."""
    peers = {
        e.peer for e in evs if e.uniqueid == linked and e.eventtype == "BRIDGE_ENTER" and e.peer
    }
    answers = [e for e in evs if e.eventtype == "ANSWER" and e.uniqueid != linked]
    return next((e for e in answers if e.channame in peers), answers[0] if answers else None)


def _wait(mine: list[CelEvent], desk: CelEvent | None) -> float:
    dial = next((e for e in mine if e.eventtype == "APP_START" and e.appname == "Dial"), None)
    if dial is None:
        return 0.0
    until = desk or next(
        (e for e in mine if e.eventtype in {"APP_END", "HANGUP"} and e.eventtime >= dial.eventtime),
        None,
    )
    return round(max(until.eventtime - dial.eventtime, 0.0), 3) if until else 0.0


def _talk(mine: list[CelEvent], ended: CelEvent) -> float:
    total, entered = 0.0, None
    for e in mine:
        if e.eventtype == "BRIDGE_ENTER":
            entered = e.eventtime
        elif e.eventtype == "BRIDGE_EXIT" and entered is not None:
            total, entered = total + e.eventtime - entered, None
    if entered is not None:
        total += max(ended.eventtime - entered, 0.0)
    return round(total, 3)


def _hangup_by(hangup: CelEvent | None, caller: str, desk: CelEvent | None) -> str | None:
    if hangup is None:
        return None
    source = str(_extra(hangup).get("hangupsource", ""))
    if not source:
        return "system"
    if source == caller:
        return "caller"
    return "callee" if desk is not None and source == desk.channame else "system"


def _cause(hangup: CelEvent | None) -> int | None:
    cause = _extra(hangup).get("hangupcause") if hangup else None
    return cause if isinstance(cause, int) and not isinstance(cause, bool) and cause > 0 else None
