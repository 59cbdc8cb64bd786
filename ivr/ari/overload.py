"""When to shed: the limits past which a new call goes straight to the dialplan's fallback.

Queuing calls the controller cannot serve strands callers; the dialplan's fallback (the
operators, or a static menu) degrades gracefully. Three signals, each off when its limit is 0:
calls in progress, the event loop's lag (how late a periodic tick wakes up) and ARI's latency
(the watchdog's periodic ``GET /applications/{app}``, smoothed).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_calls: int = 400  # calls in progress; 0: no limit
    max_loop_lag: float = 0.5  # seconds; 0: not watched
    max_ari_latency: float = 0.0  # seconds; 0: not watched
    watchdog_every: float = 5.0  # seconds between two listings of the app's channels


class LoopLag:
    """How late the event loop runs: a tick every ``every`` seconds, its delay smoothed."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.lag = 0.0
        self.ticked = asyncio.Event()  # set at each measure (for whoever waits for one)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.every)
            late = max(0.0, time.perf_counter() - started - self.every)
            # quick to rise (a burst shows at once), slow to fall (no flapping)
            self.lag = late if late > self.lag else 0.8 * self.lag + 0.2 * late
            self.ticked.set()


class Smoothed:
    """A latency figure from samples: the last sample weighs a third."""

    def __init__(self) -> None:
        self.value = 0.0

    def add(self, sample: float) -> None:
        self.value = sample if self.value == 0.0 else (2 * self.value + sample) / 3


def overloaded(limits: Limits, calls: int, lag: float, ari_latency: float) -> str | None:
    """Why a new call must be shed now (``calls``, ``loop_lag``, ``ari_latency``), or None."""
    if limits.max_calls and calls >= limits.max_calls:
        return "calls"
    if limits.max_loop_lag and lag > limits.max_loop_lag:
        return "loop_lag"
    if limits.max_ari_latency and ari_latency > limits.max_ari_latency:
        return "ari_latency"
    return None
