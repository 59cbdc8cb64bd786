"""What the controller measures about itself (Prometheus), and the DTMF reaction time.

The reaction time is from a DTMF event's arrival on the websocket to the next ARI request the
call sends: what a caller feels as the menu's responsiveness.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram

CALLS_STARTED = Counter("ivr_calls_started_total", "Calls that entered the Stasis application")
CALLS_LIVE = Gauge("ivr_calls_live", "Calls being handled now")
DTMF_TO_REQUEST = Histogram(
    "ivr_dtmf_to_request_seconds",
    "From a DTMF event received to the call's next ARI request",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
)


class DtmfLatency:
    """Pairs each call's DTMF arrival with its next request; keeps recent samples."""

    def __init__(self, keep: int = 100_000) -> None:
        self._pending: dict[str, float] = {}
        self.samples: deque[float] = deque(maxlen=keep)

    def dtmf(self, channel_id: str) -> None:
        self._pending.setdefault(channel_id, time.perf_counter())

    def request(self, method: str, path: str) -> None:
        channel = _channel_of(path)
        if channel is None:
            return
        started = self._pending.pop(channel, None)
        if started is not None:
            elapsed = time.perf_counter() - started
            self.samples.append(elapsed)
            DTMF_TO_REQUEST.observe(elapsed)

    def forget(self, channel_id: str) -> None:
        self._pending.pop(channel_id, None)


def _channel_of(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "channels":
        return parts[2]
    if len(parts) > 2 and parts[1] == "playbacks":
        return parts[2].rsplit("-pb", 1)[0]
    return None
