"""ARI events as the app reads them, and which channel each one is about."""

from __future__ import annotations

from typing import Any


def event_target(event: dict[str, Any]) -> str | None:
    """The channel an event is about: its channel (or peer), or the channel a playback or
    recording was started on; None for events about no channel of ours."""
    for key in ("channel", "peer"):
        obj = event.get(key)
        if isinstance(obj, dict) and "id" in obj:
            return str(obj["id"])
    for key in ("playback", "recording"):
        obj = event.get(key)
        if isinstance(obj, dict):
            uri = str(obj.get("target_uri", ""))
            return uri.removeprefix("channel:") if uri.startswith("channel:") else None
    return None
