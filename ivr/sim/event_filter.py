"""An ARI application's event filter (``PUT /applications/{app}/eventFilter``), as Asterisk keeps
and applies it (ARI schema: applications.json, Asterisk 13.26+).

The body has an ``allowed`` and/or a ``disallowed`` list of ``{"type": <event type>}``. An empty
body empties both; a list given replaces that list, a list left out keeps its value; an empty
``allowed`` admits every type, an empty ``disallowed`` refuses none; a type in both is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.sim.objects import fail

_LISTS = ("allowed", "disallowed")


@dataclass(frozen=True, slots=True)
class EventFilter:
    allowed: tuple[str, ...] = ()
    disallowed: tuple[str, ...] = ()

    def admits(self, event_type: str) -> bool:
        """Whether Asterisk sends the app an event of this type."""
        if event_type in self.disallowed:
            return False
        return not self.allowed or event_type in self.allowed

    def updated(self, body: Any) -> EventFilter:
        """This filter after a PUT of ``body`` (decoded JSON; None for an empty body)."""
        if body is None:
            return EventFilter()
        if not isinstance(body, dict):
            raise fail(400, "Invalid format definition")
        lists = {key: _types(body[key]) for key in _LISTS if key in body}
        return EventFilter(
            lists.get("allowed", self.allowed), lists.get("disallowed", self.disallowed)
        )


def _types(value: Any) -> tuple[str, ...]:
    """The event types of one list: an array of objects each with a string ``type``."""
    if not isinstance(value, list):
        raise fail(400, "Invalid format definition")
    types = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise fail(400, "Invalid format definition")
        types.append(item["type"])
    return tuple(types)
