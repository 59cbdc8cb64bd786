"""Typed views of the ARI objects the controller reads (a subset of the Asterisk 22 schema).

Each ``parse`` checks the shape of what it reads: a body of the wrong shape raises TypeError or
KeyError, which the client turns into :class:`ivr.ari.errors.MalformedResponse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _ident(d: Any, key: str) -> str:
    """A required string field (an id or a name)."""
    if not isinstance(d, dict):
        raise TypeError(f"expected a JSON object, got {type(d).__name__}")
    value = d[key]
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _part(d: dict[str, Any], key: str) -> dict[str, Any]:
    """An optional nested object ({} when absent)."""
    value = d.get(key) or {}
    if not isinstance(value, dict):
        raise TypeError(f"{key}: expected a JSON object, got {type(value).__name__}")
    return value


def _strings(d: dict[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key, ())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key}: expected a list of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    context: str
    exten: str
    app_name: str
    app_data: str

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Channel:
        ident = _ident(d, "id")
        caller = _part(d, "caller")
        plan = _part(d, "dialplan")
        return cls(
            id=ident,
            name=str(d.get("name", "")),
            state=str(d.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            context=str(plan.get("context", "")),
            exten=str(plan.get("exten", "")),
            app_name=str(plan.get("app_name", "")),
            app_data=str(plan.get("app_data", "")),
        )


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    state: str
    media_uri: str
    target_uri: str

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Playback:
        return cls(
            _ident(d, "id"),
            str(d.get("state", "")),
            str(d.get("media_uri", "")),
            str(d.get("target_uri", "")),
        )


@dataclass(frozen=True, slots=True)
class LiveRecording:
    name: str
    state: str
    format: str
    target_uri: str
    duration: float | None

    @classmethod
    def parse(cls, d: dict[str, Any]) -> LiveRecording:
        name = _ident(d, "name")
        dur = d.get("duration")
        return cls(
            name,
            str(d.get("state", "")),
            str(d.get("format", "")),
            str(d.get("target_uri", "")),
            float(dur) if dur is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    channel_ids: tuple[str, ...]

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Application:
        return cls(_ident(d, "name"), _strings(d, "channel_ids"))
