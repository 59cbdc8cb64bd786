"""Call records as plain rows (dicts) for the tables, and their JSON form for the spool.

This is the edge where text from callers (and from Asterisk) meets the columns: every string is
cleaned of what no backend can store (NUL, lone surrogates: each becomes U+FFFD) and cut to its
column's length as declared in models/, and is otherwise stored exactly as received (control
characters and any Unicode included; escaping them is the job of whatever displays them). Keys
(a call's id) are cleaned but never cut: two calls must never merge into one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlalchemy import String, Table

from ivr.flow.record import CallRecord, Step
from ivr.flow.survey import survey_answer
from models import Call, CallStep, SurveyAnswer, Voicemail

Row = dict[str, Any]
Op = tuple[str, Row]  # ("call" | "step" | "voicemail" | "cause" | "survey", row)

KINDS = frozenset({"call", "step", "voicemail", "cause", "survey"})
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _limits(table: Any) -> dict[str, int | None]:
    """Each string column's length (None: unbounded text), keys left out."""
    assert isinstance(table, Table)
    return {
        c.name: c.type.length
        for c in table.columns
        if isinstance(c.type, String) and not c.primary_key and not c.foreign_keys
    }


_LIMITS = {
    "call": _limits(Call.__table__),
    "step": _limits(CallStep.__table__),
    "voicemail": _limits(Voicemail.__table__),
    "cause": _limits(Call.__table__),
    "survey": _limits(SurveyAnswer.__table__),
}


def clean(text: str, limit: int | None = None) -> str:
    """``text`` as any backend can store it, at most ``limit`` characters."""
    if not text.isascii() or "\x00" in text:  # most are plain ASCII: no regex for those
        text = _UNSTORABLE.sub(REPLACEMENT, text)
    return text if limit is None else text[:limit]


def bounded(kind: str, row: Row) -> Row:
    """The row with every string cleaned, and cut to its column where it has a length."""
    limits = _LIMITS[kind]
    return {k: clean(v, limits.get(k)) if isinstance(v, str) else v for k, v in row.items()}


def call_row(r: CallRecord) -> Row:
    return bounded("call", _call_row(r))


def _call_row(r: CallRecord) -> Row:
    return {
        "id": r.channel_id,
        "linked_id": r.linked_id,
        "caller_number": r.caller_number,
        "caller_name": r.caller_name,
        "dialed": r.dialed,
        "started_at": r.started_at,
        "answered_at": r.answered_at,
        "ended_at": r.ended_at,
        "path": ">".join(r.path),
        "digits": r.digits,
        "branch": r.branch,
        "unit": r.unit,
        "endpoint": r.endpoint,
        "disposition": r.disposition.value,
        "wait_seconds": r.wait_seconds,
        "talk_seconds": r.talk_seconds,
        "routing_version": r.routing_version,
        "hangup_by": r.hangup_by,
        "error": r.error,
    }


def step_row(call_id: str, seq: int, s: Step) -> Row:
    row = {
        "call_id": call_id,
        "seq": seq,
        "node": s.node,
        "kind": s.kind,
        "outcome": s.outcome,
        "input": s.input,
        "detail": s.detail,
        "at": s.at,
    }
    return bounded("step", row)


def cause_row(call_id: str, cause: int, text: str) -> Row:
    """The caller channel's hang-up cause, as AMI reported it."""
    return bounded("cause", {"id": call_id, "hangup_cause": cause, "hangup_cause_text": text})


def final_ops(r: CallRecord, steps_from: int = 0) -> list[Op]:
    """Everything a finished call writes: its row, its steps from ``steps_from`` on (those
    before were handed over one by one as they happened), its voicemail, its survey answer
    (the key pressed at a survey node, with the branch, unit and desk of the call)."""
    ops: list[Op] = [("call", call_row(r))]
    ops += [
        ("step", step_row(r.channel_id, i, s))
        for i, s in enumerate(r.steps[steps_from:], start=steps_from)
    ]
    if r.voicemail is not None:
        v = r.voicemail
        ops.append(
            (
                "voicemail",
                bounded(
                    "voicemail",
                    {
                        "call_id": r.channel_id,
                        "name": v.name,
                        "location": v.location,
                        "duration_seconds": v.duration_seconds,
                        "size_bytes": v.size_bytes,
                        "sha256": v.sha256,
                        "branch": v.branch,
                        "unit": v.unit,
                        "recorded_at": v.recorded_at,
                        "status": "new",
                    },
                ),
            )
        )
    answer = survey_answer(r.steps)
    if answer is not None:
        ops.append(("survey", survey_row(r, answer)))
    return ops


def survey_row(r: CallRecord, answer: Step) -> Row:
    row = {
        "call_id": r.channel_id,
        "source": "ivr",
        "answered_at": answer.at,
        "score": int(answer.input),
        "branch": r.branch,
        "unit": r.unit,
        "endpoint": r.endpoint,
    }
    return bounded("survey", row)


def _default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> object:
    if set(obj) == {"$dt"}:
        return dt.datetime.fromisoformat(obj["$dt"])
    return obj


def dumps(ops: list[Op]) -> str:
    return "".join(
        json.dumps([kind, row], default=_default, ensure_ascii=False) + "\n" for kind, row in ops
    )


def loads(text: str) -> list[Op]:
    """The records of a spool file; ValueError if any line is not one. Lines end at "\\n" only:
    JSON escapes it, but not U+2028 or U+0085, which callers can send."""
    return [parse_line(line) for line in text.split("\n") if line.strip()]


def parse_line(line: str) -> Op:
    """One spooled record, checked: a known kind and a row of that table's columns."""
    try:
        kind, row = json.loads(line, object_hook=_hook)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not a spooled record: {e}") from None
    if kind not in KINDS or not isinstance(row, dict) or not set(row) <= _COLUMNS[kind]:
        raise ValueError("not a spooled record: unknown kind or columns")
    return kind, row


def salvage(data: bytes) -> tuple[list[Op], int]:
    """The readable records of a damaged spool file, and how many lines could not be read."""
    ops: list[Op] = []
    bad = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            ops.append(parse_line(raw.decode("utf-8")))
        except ValueError:  # UnicodeDecodeError included
            bad += 1
    return ops, bad


_COLUMNS = {
    "call": {c.name for c in Call.__table__.columns},
    "step": {c.name for c in CallStep.__table__.columns},
    "voicemail": {c.name for c in Voicemail.__table__.columns} - {"id"},
    "cause": {"id", "hangup_cause", "hangup_cause_text"},
    "survey": {c.name for c in SurveyAnswer.__table__.columns} - {"id"},
}
