"""The Python runtime of a long-running controller: its garbage collector, tuned for thousands
of short-lived call objects.

With CPython's defaults (a young collection every 700 allocations, the whole heap scanned now
and then) a controller with 1,000 calls in progress spent about 0.6 s per 1,000 calls in the
collector, once 181 ms in one full collection: every event waiting behind it waits that long
(benchmarks.calls, README, issue 15).
"""

from __future__ import annotations

import gc

YOUNG = 50_000  # allocations (less deallocations) between two young collections; default 700


def settle_gc() -> None:
    """Call once everything is loaded (modules, settings, routing, prompts): what lives now is
    moved out of the collector's sight for good (``gc.freeze``), so a full collection scans
    only what calls made; and young collections come every ``YOUNG`` allocations. Cycles are
    still collected, only less often; the memory they hold meanwhile is a few megabytes."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
