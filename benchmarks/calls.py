"""Load benchmark: the simulator in its own process drives concurrent calls through the menu to a
dial; one controller process handles them. Prints figures; asserts nothing.

    .venv/bin/python -m benchmarks.calls --calls 1000 --rate 300 [--runs 3]

Each run starts a fresh simulator process and a fresh controller; the figures printed last are
the median of the runs, with the machine (cores, CPU model), Python's version and the load
average, since the machine may be shared. The controller's CPU is counted from the websocket's
connection to the last call's end: imports and loading the routing are not a call's cost.

Each scripted caller hears the greeting and the menu, presses 4 half a second into the menu, the
branch phone rings 2 s, answers and talks 5 s. Reported: peak concurrent calls, call set-ups per
second (StasisStart handled to answer sent), the DTMF-to-next-request latency, memory per live
call (resident set growth at the peak / live calls), and where the controller's CPU time went.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing as mp
import os
import pstats
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.real_load import DEFAULT_LOOP, machine
from ivr import logs
from ivr.ari.app import StasisApp
from ivr.ari.client import AriClient
from ivr.ari.event_types import AriEvent
from ivr.ari.overload import Limits
from ivr.cli import loop
from ivr.config import EVENT_LOOPS
from ivr.flow.hours import warm_up
from ivr.flow.record import Disposition, FanOut, MemoryObserver
from ivr.metrics import CALLS_SHED
from ivr.ops.runtime import settle_gc
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.sim.http import AsteriskSim
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter

ROOT = Path(__file__).resolve().parent.parent
STALL_SECONDS = 60.0  # no call ended for this long: the run is stuck, say so instead of hanging


class Stalled(RuntimeError):
    pass


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- the simulator's process -----------------------------------------------------------------


def sim_process(conn: Connection, calls: int, rate: float) -> None:
    asyncio.run(_sim_main(conn, calls, rate))


async def _sim_main(conn: Connection, calls: int, rate: float) -> None:
    clerks = Clerks(default=ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=5))
    sim = AsteriskSim(speed=1.0, clerks=clerks, prompt_seconds=lambda _m: 2.0)
    url = await sim.start()
    conn.send(url)
    await sim.wait_connected()
    script = CallerScript((Press("4", on="prompt:main-menu", after=0.5),))
    started = time.perf_counter()
    placed = []
    for i in range(calls):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        placed.append(sim.call(script))
    placing = time.perf_counter() - started
    await asyncio.gather(*(c.done for c in placed))
    conn.send(
        {
            "placing_seconds": placing,
            "requests": len(sim.requests),
            "events": len(sim.events),
            "events_sent": sim.sent_events,
        }
    )
    await sim.stop()


# --- the controller's process ----------------------------------------------------------------


async def controller(
    url: str, calls: int, conn: Connection, store: bool, profiler: cProfile.Profile | None
) -> dict[str, Any]:
    manifest = load_manifest(ROOT / "prompts" / "manifest.yaml")
    routing = load_routing(ROOT / "routing" / "hotline.yaml", manifest.keys())
    memory = MemoryObserver()
    observer: Any = memory
    writer = None
    if store:  # the SQLite writer in the loop too: what it adds to the calls' latency
        folder = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
        await asyncio.to_thread(upgrade, sqlite_url(folder))
        writer = StoreWriter(make_engine(sqlite_url(folder)), folder / "spool")
        await writer.start()
        observer = FanOut(memory, writer)
    day = __import__("datetime").datetime(2026, 11, 25, 2, 0, tzinfo=__import__("datetime").UTC)
    client = AriClient(url, "ivr", "secret", "hotline")
    limits = Limits(max_calls=calls)  # all of them at once; a loop lagging still sheds
    app = StasisApp(client, lambda: routing, observer, clock=lambda: day, limits=limits)
    setup_times: list[float] = []
    first_seen: dict[str, float] = {}
    original_on_event = app.on_event
    original_request = client.on_request

    def on_event(event: AriEvent) -> None:
        if event["type"] == "StasisStart" and not event.get("args"):
            first_seen[event["channel"]["id"]] = time.perf_counter()
        original_on_event(event)

    def on_request(method: str, path: str) -> None:
        if path.endswith("/answer"):
            cid = path.split("/")[2]
            if cid in first_seen:
                setup_times.append(time.perf_counter() - first_seen.pop(cid))
        if original_request is not None:
            original_request(method, path)

    app.stream.on_event = on_event
    client.on_request = on_request
    warm_up(routing.schedules.values(), day, routing.hotline.timezone)  # as `ivr run` does
    settle_gc()  # as `ivr run` does once loaded
    task = asyncio.create_task(app.run())
    await app.stream.connected.wait()
    base_rss = _rss_bytes()
    peak_live, peak_rss = 0, base_rss
    if profiler:
        profiler.enable()
    cpu0, times0 = time.process_time(), os.times()
    t0 = last_end = time.perf_counter()
    ended = 0.0
    shed0 = _shed_total()
    while len(memory.done) + _shed_total() - shed0 < calls:
        await asyncio.sleep(0.05)
        live = len(app.calls)
        if live > peak_live:
            peak_live, peak_rss = live, max(peak_rss, _rss_bytes())
        now = time.perf_counter()
        if len(memory.done) + _shed_total() - shed0 != ended:
            ended, last_end = len(memory.done) + _shed_total() - shed0, now
        elif now - last_end > STALL_SECONDS:
            raise Stalled(
                f"{calls - ended} calls never ended in the controller "
                f"({live} still live, e.g. {sorted(app.calls)[:5]})"
            )
    cpu, times = time.process_time() - cpu0, os.times()
    shed = _shed_total() - shed0
    wall = time.perf_counter() - t0
    if profiler:
        profiler.disable()
    sim_stats = conn.recv()
    await app.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    lat = sorted(app.latency.samples)
    dispositions: dict[str, int] = {}
    if writer is not None:
        await writer.stop()
    for r in memory.done:
        dispositions[r.disposition.value] = dispositions.get(r.disposition.value, 0) + 1
    return {
        "calls": calls,
        "answered": dispositions.get(Disposition.ANSWERED.value, 0),
        "dispositions": dispositions,
        "shed": shed,
        "peak_live": peak_live,
        "setup_per_second": calls / sim_stats["placing_seconds"],
        "setup_p50_ms": 1000 * statistics.median(setup_times),
        "setup_p99_ms": 1000 * _pct(sorted(setup_times), 0.99),
        "dtmf_samples": len(lat),
        "dtmf_p50_ms": 1000 * _pct(lat, 0.50),
        "dtmf_p99_ms": 1000 * _pct(lat, 0.99),
        "dtmf_max_ms": 1000 * lat[-1],
        "rss_per_live_call_kb": (peak_rss - base_rss) / max(peak_live, 1) / 1024,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_ms_per_call": 1000 * cpu / calls,
        "user_ms_per_call": 1000 * (times.user - times0.user) / calls,
        "system_ms_per_call": 1000 * (times.system - times0.system) / calls,
        "requests": sim_stats["requests"],
        "events": sim_stats["events"],
        "events_sent": sim_stats["events_sent"],
    }


def _shed_total() -> float:
    """New calls sent to the fallback because of overload, so far (they end in the dialplan)."""
    return sum(
        s.value for m in CALLS_SHED.collect() for s in m.samples if s.name.endswith("_total")
    )


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def run_once(
    calls: int,
    rate: float,
    store: bool,
    profiler: cProfile.Profile | None,
    event_loop: str = DEFAULT_LOOP,
) -> Any:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=sim_process, args=(child, calls, rate))
    proc.start()
    try:
        url = parent.recv()
        return loop.run(controller(url, calls, parent, store, profiler), event_loop)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs. Outcomes and memory: the first run's (a later run
    reuses the memory the first one left to the process, so its growth says nothing)."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if key != "rss_per_live_call_kb" and isinstance(value, int | float):
            out[key] = statistics.median(r[key] for r in runs)
    return out


def report(r: dict[str, Any]) -> None:
    print(f"calls: {r['calls']:.0f}  answered: {r['answered']:.0f}  outcomes: {r['dispositions']}")
    print(f"shed to the fallback (overload): {r['shed']:.0f}")
    print(f"peak concurrent calls in one controller: {r['peak_live']:.0f}")
    print(
        f"call set-ups offered: {r['setup_per_second']:.0f}/s; StasisStart→answer "
        f"p50 {r['setup_p50_ms']:.2f} ms, p99 {r['setup_p99_ms']:.2f} ms"
    )
    print(
        f"DTMF event → next ARI request: p50 {r['dtmf_p50_ms']:.2f} ms, "
        f"p99 {r['dtmf_p99_ms']:.2f} ms, max {r['dtmf_max_ms']:.2f} ms "
        f"({r['dtmf_samples']:.0f} samples)"
    )
    print(
        f"memory: {r['rss_per_live_call_kb']:.1f} KB resident per live call at the peak "
        "(the process's first run)"
    )
    print(
        f"controller CPU: {r['cpu_seconds']:.2f} s for {r['wall_seconds']:.1f} s of wall time "
        f"({r['cpu_ms_per_call']:.2f} ms per call: user {r['user_ms_per_call']:.2f}, kernel "
        f"{r['system_ms_per_call']:.2f}); simulator: {r['requests']:.0f} "
        f"requests, {r['events']:.0f} events ({r['events_sent']:.0f} sent to the controller, "
        "the others filtered as it asked)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=300.0, help="calls placed per second")
    ap.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    ap.add_argument("--profile", action="store_true", help="print where the controller's time went")
    ap.add_argument("--store", action="store_true", help="write every call to SQLite as well")
    ap.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=DEFAULT_LOOP,
        help=f"the controller's loop (default: as `ivr run` ships, {DEFAULT_LOOP})",
    )
    args = ap.parse_args()
    logs.configure(level="WARNING")
    # CPU time, not wall time: on a shared machine a wait for the CPU is not our cost
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    runs = []
    for n in range(1, args.runs + 1):
        try:
            runs.append(run_once(args.calls, args.rate, args.store, profiler, args.event_loop))
        except Stalled as e:
            raise SystemExit(f"run {n}: stuck: {e}") from None
        print(f"--- run {n} of {args.runs}")
        report(runs[-1])
    m = machine()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"=== median of {len(runs)} runs ({m['cores']} cores, {m['cpu']}; Python {m['python']}; "
        f"event loop {args.event_loop};"
    )
    print(f"    load average after the runs: {load})")
    report(median_of(runs))
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats("ivr/", 40)


if __name__ == "__main__":
    main()
