"""Call records as plain rows (dicts) for the tables, and their JSON form for the spool."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ivr.flow.record import CallRecord, Step

Row = dict[str, Any]
Op = tuple[str, Row]  # ("call" | "step" | "voicemail", row)


def call_row(r: CallRecord) -> Row:
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
        "digits": r.digits[:64],
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
    return {
        "call_id": call_id,
        "seq": seq,
        "node": s.node,
        "kind": s.kind,
        "outcome": s.outcome,
        "input": s.input[:64],
        "detail": s.detail,
        "at": s.at,
    }


def final_ops(r: CallRecord) -> list[Op]:
    """Everything a finished call writes: its row, all its steps, its voicemail."""
    ops: list[Op] = [("call", call_row(r))]
    ops += [("step", step_row(r.channel_id, i, s)) for i, s in enumerate(r.steps)]
    if r.voicemail is not None:
        v = r.voicemail
        ops.append(
            (
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
            )
        )
    return ops


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
    out: list[Op] = []
    for line in text.splitlines():
        if line.strip():
            kind, row = json.loads(line, object_hook=_hook)
            out.append((kind, row))
    return out
