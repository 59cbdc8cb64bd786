"""The routing as the calls see it: its survey nodes offer the Zalo survey only when Zalo is on.

Whether Zalo is configured is the settings' to say (an app id and a template id), not the routing
file's; ``ivr run`` and ``ivr agi`` hand their call handlers :func:`calls_routing` of the live
routing, so a file reloaded keeps the offer and a controller without Zalo never plays it.
"""

from __future__ import annotations

from collections.abc import Callable

from ivr.config import Settings
from ivr.routing.model import Routing

Source = Callable[[], Routing]


class ZaloOffered:
    """``source()``'s routing marked as offering Zalo; one copy per version taken up."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._seen: Routing | None = None
        self._marked: Routing | None = None

    def __call__(self) -> Routing:
        current = self._source()
        if current is not self._seen or self._marked is None:
            self._seen, self._marked = current, current.offering_zalo()
        return self._marked


def calls_routing(source: Source, settings: Settings) -> Source:
    """What the call handlers take the routing from: ``source`` itself without Zalo."""
    return ZaloOffered(source) if settings.zalo_enabled else source
