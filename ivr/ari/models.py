"""Typed views of the ARI objects the controller reads (a subset of the Asterisk 22 schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
        caller = d.get("caller") or {}
        plan = d.get("dialplan") or {}
        return cls(
            id=str(d["id"]),
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
            str(d["id"]),
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
        dur = d.get("duration")
        return cls(
            str(d["name"]),
            str(d.get("state", "")),
            str(d.get("format", "")),
            str(d.get("target_uri", "")),
            float(dur) if dur is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    channels: tuple[str, ...]

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Bridge:
        return cls(str(d["id"]), tuple(str(c) for c in d.get("channels", ())))


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    channel_ids: tuple[str, ...]

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Application:
        return cls(str(d["name"]), tuple(str(c) for c in d.get("channel_ids", ())))
