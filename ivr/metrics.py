"""What the controller measures about itself (Prometheus), and the latencies a caller feels.

The set-up latency is from StasisStart's arrival to the call's first ARI request (its answer);
the reaction time is from a DTMF event's arrival on the websocket to the next ARI request the
call sends: what a caller feels as the menu's responsiveness. Both are served on /metrics by
ivr.ops.http, with what is read from live objects when scraped (ARI reconnects, spool size).
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram

from ivr.flow.record import CallObserver, CallRecord, Step

_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)

CALLS_STARTED = Counter("ivr_calls_started_total", "Calls that entered the call flow")
CALLS_LIVE = Gauge("ivr_calls_live", "Calls being handled now")
CALLS_ENDED = Counter(
    "ivr_calls_ended_total", "Finished calls by disposition and branch", ["disposition", "branch"]
)
SETUP = Histogram(
    "ivr_call_setup_seconds",
    "From StasisStart received (FastAGI: the environment read) to the call's first ARI request "
    "(FastAGI: command)",
    buckets=_FAST,
)
DTMF_TO_REQUEST = Histogram(
    "ivr_dtmf_to_request_seconds",
    "From a DTMF event received (FastAGI: a reply carrying a key) to the call's next ARI request "
    "(FastAGI: command)",
    buckets=_FAST,
)
CALLS_SHED = Counter(
    "ivr_calls_shed_total",
    "New calls sent straight to the dialplan's fallback because of overload, by the limit hit",
    ["reason"],
)
CHANNELS_RECOVERED = Counter(
    "ivr_channels_recovered_total",
    "Channels in our app that no live call owned, handed back or hung up, by where found",
    ["found_by"],
)
RECONCILE_LAG = Gauge(
    "ivr_reconcile_lag_seconds",
    "Age of the newest Asterisk record (CEL/CDR) not yet reconciled into the store",
)


class CallMetrics:
    """A call observer that counts calls, then hands every record on (to the store)."""

    def __init__(self, inner: CallObserver) -> None:
        self.inner = inner

    def call_started(self, record: CallRecord) -> None:
        CALLS_STARTED.inc()
        CALLS_LIVE.inc()
        self.inner.call_started(record)

    def call_step(self, channel_id: str, step: Step) -> None:
        self.inner.call_step(channel_id, step)

    def call_ended(self, record: CallRecord) -> None:
        CALLS_LIVE.dec()
        CALLS_ENDED.labels(record.disposition.value, record.branch or "").inc()
        self.inner.call_ended(record)


class DtmfLatency:
    """Pairs each call's DTMF arrival with its next request; keeps recent samples."""

    def __init__(self, keep: int = 100_000) -> None:
        self._pending: dict[str, float] = {}
        self._setup: dict[str, float] = {}
        self.samples: deque[float] = deque(maxlen=keep)

    def call_started(self, channel_id: str) -> None:
        self._setup[channel_id] = time.perf_counter()

    def dtmf(self, channel_id: str) -> None:
        self._pending.setdefault(channel_id, time.perf_counter())

    def request(self, method: str, path: str) -> None:
        """An ARI request: its path names the channel (or the channel's playback)."""
        channel = _channel_of(path)
        if channel is not None:
            self.sent(channel)

    def sent(self, channel: str) -> None:
        """The call on ``channel`` acted (an ARI request, a FastAGI command): the set-up and
        key-press latencies end here."""
        setup = self._setup.pop(channel, None)
        if setup is not None:
            SETUP.observe(time.perf_counter() - setup)
        started = self._pending.pop(channel, None)
        if started is not None:
            elapsed = time.perf_counter() - started
            self.samples.append(elapsed)
            DTMF_TO_REQUEST.observe(elapsed)

    def forget(self, channel_id: str) -> None:
        self._pending.pop(channel_id, None)
        self._setup.pop(channel_id, None)


def _channel_of(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "channels":
        return parts[2]
    if len(parts) > 2 and parts[1] == "playbacks":
        return parts[2].rsplit("-pb", 1)[0]
    return None
