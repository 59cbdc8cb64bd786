"""Soak benchmark (issue 16, deliverable 4): calls at a steady rate for a long time through the
simulator or the real Asterisk; does the controller stay flat? Prints figures; asserts nothing.

    .venv/bin/python -m benchmarks.soak --minutes 60 --rate 20
    .venv/bin/python -m benchmarks.soak --real --minutes 10 --rate 4      # as root

The simulator runs in its own process (as in benchmarks.calls) and places calls at ``--rate``
per second for ``--minutes``; each caller hears the greeting and the menu, presses 4 half a
second into the menu, the branch phone rings 2 s, answers and talks 5 s. The controller
(StasisApp, with the SQLite writer of the store) runs in this process. Every ``--every`` seconds
one line: calls ended so far, calls live, the controller's resident memory, its asyncio tasks,
its open file descriptors, and the DTMF event → next ARI request p99 over that window. At the end:
whether memory stayed within 10 % of the first sample after the warm-up (the first tenth of the
run, at least one window: the calls' ramp-up, and the allocator and caches reaching their working
size), and whether tasks and descriptors grew beyond the live calls' own.

With ``--real`` the calls go through the benchmark's own real Asterisk 22 (benchmarks.pbx) with
SIPp callers and desks, as ``benchmarks.real_load`` places them (its ``run_step``, in a thread:
answered, greeting, 4 pressed in the menu as RFC 4733, branch 4's first desk answers after 1 s,
talk 2 s); the controller is the same StasisApp in this process on the benchmark's ARI app, so
the same series is sampled. At the end also real_load's figures: calls completed at the caller
and at the desk, callers stranded, key → desk INVITE p50/p99, bridges and channels left.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.calls import ROOT, _pct, _rss_bytes
from benchmarks.pbx import IVR_APP, IVR_SERVICE, OWN, Pbx
from benchmarks.real_load import MEDIA_PORTS, Options, run_step
from ivr import logs
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.overload import Limits
from ivr.flow.record import CallRecord, FanOut, Step
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.sim.http import AsteriskSim
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press
from ivr.sim.sipp import own_asterisk
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter

# The soak's own Asterisk (cache, state, ports) and SIPp media ports: a benchmarks.real_load run
# at the same time on the benchmark's Asterisk would otherwise take its ARI app (one websocket
# per app) and bring that Asterisk down when it ends.
SOAK_ASTERISK = own_asterisk("soak", 2)  # tests/test_multinode_real.py has offset 3
SOAK_MEDIA = {"callers": 17600, "desk-4a": 17700, "desk-4b": 17800}
MEMORY_SLACK = 0.10  # memory may vary this much around the first sample after the warm-up
WARM_UP = 0.10  # the first tenth of the run is warm-up
OFFICE = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # a Wednesday, 09:00 in Vietnam


# --- the simulator's process -----------------------------------------------------------------


def sim_process(conn: Connection, seconds: float, rate: float) -> None:
    asyncio.run(_sim_main(conn, seconds, rate))


async def _sim_main(conn: Connection, seconds: float, rate: float) -> None:
    clerks = Clerks(default=ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=5))
    sim = AsteriskSim(speed=1.0, clerks=clerks, prompt_seconds=lambda _m: 2.0)
    url = await sim.start()
    conn.send(url)
    await sim.wait_connected()
    script = CallerScript((Press("4", on="prompt:main-menu", after=0.5),))
    started = time.perf_counter()
    live: set[asyncio.Future[Any]] = set()
    placed = 0
    while time.perf_counter() - started < seconds:
        due = started + placed / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        call = sim.call(script)
        live.add(call.done)
        call.done.add_done_callback(live.discard)
        placed += 1
        if placed % 1000 == 0:
            sim.requests.clear()  # the simulator's own logs: not what is measured here
            sim.events.clear()
    await asyncio.gather(*live)
    conn.send({"placed": placed})
    await sim.stop()


# --- the controller, in this process --------------------------------------------------------


class Ended:
    """Counts the calls that ended (keeps no record: a soak must not grow by its own probe)."""

    def __init__(self) -> None:
        self.ended = 0

    def call_started(self, record: CallRecord) -> None:
        pass

    def call_step(self, channel_id: str, step: Step) -> None:
        pass

    def call_ended(self, record: CallRecord) -> None:
        self.ended += 1


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the first call
    ended: int
    live: int
    rss_mb: float
    tasks: int
    fds: int
    dtmf_p99_ms: float
    dtmf_n: int

    def line(self) -> str:
        return (
            f"{self.at:7.0f} s  ended {self.ended:7d}  live {self.live:4d}  "
            f"RSS {self.rss_mb:7.1f} MB  tasks {self.tasks:5d}  fds {self.fds:4d}  "
            f"DTMF→next p99 {self.dtmf_p99_ms:7.2f} ms ({self.dtmf_n} samples)"
        )


def _probe(app: StasisApp, writer: StoreWriter) -> str:
    """Diagnostics (IVR_SOAK_PROBE=1): Python's allocated blocks against RSS tells a Python-object
    leak from C-level memory (SQLite, fragmentation); the sizes of the per-call structures."""
    import ctypes
    import sys

    lib = ctypes.CDLL("libsqlite3.so.0")
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    trimmed = ""
    if os.environ.get("IVR_SOAK_PROBE") == "trim":  # give glibc's free pages back to the system
        before = _rss_bytes()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        trimmed = f"trim {before / 2**20:.1f}→{_rss_bytes() / 2**20:.1f} MB "
    return trimmed + (
        f"blocks {sys.getallocatedblocks()} sqlite {lib.sqlite3_memory_used() / 2**20:.1f} MB "
        f"seq {len(writer._seq)} routes {len(app.routes)} "
        f"pending {len(app.latency._pending)} setup {len(app.latency._setup)}"
    )


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def controller(
    client: AriClient,
    every: float,
    drive: Callable[[], Awaitable[Any]],
    recordings_dir: str = "/var/spool/asterisk/recording",
) -> tuple[list[Sample], Any]:
    """The controller on ``client``'s app; once it is connected ``drive()`` places the calls
    (its result is returned); one sample every ``every`` s, and one when the calls are over."""
    manifest = load_manifest(ROOT / "prompts" / "manifest.yaml")
    routing = load_routing(ROOT / "routing" / "hotline.yaml", manifest.keys())
    folder = Path(tempfile.mkdtemp(prefix="ivr-soak-"))
    await asyncio.to_thread(upgrade, sqlite_url(folder))
    writer = StoreWriter(make_engine(sqlite_url(folder)), folder / "spool")
    await writer.start()
    ended = Ended()
    app = StasisApp(
        client,
        lambda: routing,
        FanOut(ended, writer),
        clock=lambda: OFFICE,
        recordings_dir=recordings_dir,
        limits=Limits(max_calls=0),
    )
    task = asyncio.create_task(app.run())
    await app.stream.connected.wait()
    samples: list[Sample] = []
    load = asyncio.ensure_future(drive())
    t0 = time.perf_counter()
    try:
        while True:
            due = t0 + every * (len(samples) + 1)
            await asyncio.wait({load}, timeout=max(0.0, due - time.perf_counter()))
            finished = load.done()  # every call is over
            window = sorted(app.latency.samples)
            app.latency.samples.clear()
            s = Sample(
                time.perf_counter() - t0,
                ended.ended,
                len(app.calls),
                _rss_bytes() / 2**20,
                len(asyncio.all_tasks()),
                _fds(),
                1000 * _pct(window, 0.99),
                len(window),
            )
            samples.append(s)
            print(s.line(), flush=True)
            if os.environ.get("IVR_SOAK_PROBE"):
                print("   probe", _probe(app, writer), flush=True)
            if finished:
                break
        result = await load
    finally:
        load.cancel()
        await app.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        await writer.stop()
    return samples, result


def verdict(samples: list[Sample], seconds: float, ramp: float) -> list[str]:
    """The summary lines: memory, tasks and descriptors against the first sample after the
    warm-up (``WARM_UP`` of the run, at least ``ramp`` seconds), with the live calls' range so a
    reader sees whether the load was the same throughout."""
    warm = max(ramp, WARM_UP * seconds)
    steady = [s for s in samples if warm <= s.at <= seconds]
    if len(steady) < 2:
        return ["too short for a verdict: fewer than two samples after the warm-up"]
    first, rest = steady[0], steady[1:]
    high = max(s.rss_mb for s in rest)
    low = min(s.rss_mb for s in rest)
    flat = all(abs(s.rss_mb - first.rss_mb) <= MEMORY_SLACK * first.rss_mb for s in rest)
    # tasks and fds follow the live calls: compare what is left beyond them
    extra_tasks = [s.tasks - s.live for s in steady]
    extra_fds = [s.fds for s in steady]
    p99 = [s.dtmf_p99_ms for s in steady if s.dtmf_n]
    live = [s.live for s in steady]
    return [
        f"after the warm-up ({warm:.0f} s): live calls {min(live)}–{max(live)} per sample",
        f"memory: first steady sample {first.rss_mb:.1f} MB (at {first.at:.0f} s), then "
        f"{low:.1f}–{high:.1f} MB: {'within' if flat else 'NOT within'} 10 %",
        f"asyncio tasks beyond one per live call: {extra_tasks[0]} first, {extra_tasks[-1]} last, "
        f"max {max(extra_tasks)}: {'no growth' if extra_tasks[-1] <= extra_tasks[0] else 'GREW'}",
        f"open file descriptors: {extra_fds[0]} first, {extra_fds[-1]} last, max "
        f"{max(extra_fds)}: {'no growth' if extra_fds[-1] <= extra_fds[0] else 'GREW'}",
        f"DTMF→next request p99 per window: {min(p99):.2f}–{max(p99):.2f} ms" if p99 else "",
    ]


def _report(samples: list[Sample], seconds: float, every: float, where: str) -> None:
    print(
        f"=== soak: {where}; {samples[-1].ended if samples else 0} calls ended; "
        f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for line in verdict(samples, seconds, ramp=every):
        if line:
            print(line)


def run(minutes: float, rate: float, every: float) -> None:
    seconds = minutes * 60
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=sim_process, args=(child, seconds, rate))
    proc.start()
    try:
        url = parent.recv()
        client = AriClient(url, "ivr", "secret", "hotline")
        samples, _placed = asyncio.run(
            controller(client, every, lambda: asyncio.to_thread(parent.recv))
        )
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    _report(samples, seconds, every, f"{rate:g} calls/s for {minutes:g} min through the simulator")


def run_real(minutes: float, rate: float, every: float) -> None:
    """Through the benchmark's real Asterisk, with real_load's SIPp callers and desks."""
    seconds = minutes * 60
    opts = Options(rate, seconds, rfc4733=True, ami=False, ring_ms=1000, talk_ms=2000)
    folder = Path(tempfile.mkdtemp(prefix="ivr-soak-real-"))
    OWN.update(SOAK_ASTERISK)  # benchmarks.pbx's settings of its Asterisk, for this process
    MEDIA_PORTS.update(SOAK_MEDIA)
    pbx = Pbx.up()
    try:
        pbx.install_menu()  # the benchmark's number 18001028 → [hotline-inbound] on IVR_APP
        env = pbx.env
        client = AriClient(
            env["IVR_TEST_ARI_URL"], env["IVR_TEST_ARI_USER"], env["IVR_TEST_ARI_PASSWORD"], IVR_APP
        )

        def load() -> dict[str, Any]:
            return run_step(pbx, opts, "ivr", IVR_SERVICE, "09902", folder / "ivr", None)

        samples, figures = asyncio.run(
            controller(
                client, every, lambda: asyncio.to_thread(load), env["IVR_TEST_RECORDINGS_DIR"]
            )
        )
        version = pbx.version()
    finally:
        try:
            pbx.remove_menu()
        finally:
            pbx.down()
    _report(
        samples,
        seconds,
        every,
        f"{rate:g} calls/s for {minutes:g} min through Asterisk {version} with SIPp",
    )
    p = figures["key_to_invite_ms"]
    print(
        f"SIPp: {figures['attempted']} calls placed, completed {figures['completed_caller']} at "
        f"the caller and {figures['completed_desk']} at the desk, {figures['stranded']} stranded; "
        f"key → desk INVITE p50 {p['p50']} ms, p99 {p['p99']} ms; left over: "
        f"{figures['leaked_bridges']} bridges, {figures['leaked_channels']} channels"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=20.0, help="calls placed per second")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between two samples")
    ap.add_argument(
        "--real", action="store_true", help="through the real Asterisk with SIPp (as root)"
    )
    args = ap.parse_args()
    if args.real and os.geteuid() != 0:
        ap.error("--real needs root (scripts/asterisk, tcpdump)")
    if not 0 < args.rate <= (50 if args.real else 200) or args.minutes <= 0:
        ap.error("--rate must be in (0, 50] with --real, (0, 200] without; --minutes > 0")
    logs.configure(level="WARNING")
    (run_real if args.real else run)(args.minutes, args.rate, args.every)


if __name__ == "__main__":
    main()
