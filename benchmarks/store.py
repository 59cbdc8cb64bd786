"""Store benchmark: calls with their steps written per second, and what the writer costs a call.

    .venv/bin/python -m benchmarks.store --calls 5000

Each synthetic call is what a voicemail call writes: its row twice (in progress, then final),
eight steps and a voicemail. Runs on SQLite (WAL) and, where PostgreSQL is installed, on a
throwaway PostgreSQL cluster on loopback. The per-call cost is the time the call's own coroutine
spends handing records to the writer (the writes themselves happen in the background).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from ivr import logs
from ivr.flow.record import CallTrace, Step, Voicemail
from ivr.session import CallInfo
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter
from ivr.testing.pg import PgServer

STEPS = ("start", "greeting", "main-menu", "branch-6", "vm-6", "goodbye", "x", "y")


async def bench(url: str, calls: int, spool: Path) -> tuple[float, float, int]:
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, spool, batch_size=1000)
    await writer.start()
    now = dt.datetime.now(dt.UTC)
    handing: list[float] = []
    rows = 0
    t0 = time.perf_counter()
    for i in range(calls):
        trace = CallTrace(CallInfo(f"b.{i}", f"09{i:08d}"), "v1", now)
        h0 = time.perf_counter()
        writer.call_started(trace.snapshot())
        for node in STEPS:
            step = trace.add(Step(node, "prompt", "played", at=now))
            writer.call_step(trace.info.channel_id, step)
        trace.voicemail = Voicemail(
            f"vm-{i}", f"/x/vm-{i}.wav", 5.0, 80044, "0" * 64, "6", None, now
        )
        writer.call_ended(trace.snapshot(now))
        handing.append(time.perf_counter() - h0)
        rows += 2 + 2 * len(STEPS) + 1
        if i % 200 == 199:
            await asyncio.sleep(0)  # calls arrive over time; let the writer run
    await writer.drain()
    elapsed = time.perf_counter() - t0
    await writer.stop()
    await engine.dispose()
    handing.sort()
    return rows / elapsed, handing[int(0.99 * len(handing))] * 1e6, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    logs.configure(level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        per_s, p99, rows = asyncio.run(bench(sqlite_url(Path(tmp)), args.calls, Path(tmp) / "s"))
        print(
            f"SQLite:     {per_s:,.0f} rows/s ({rows} rows, {args.calls} calls); "
            f"handing one call's records to the writer: p99 {p99:.0f} µs"
        )
    folder = Path(tempfile.mkdtemp(prefix="ivr-pg-bench-"))
    server = PgServer.create(folder)
    if server is None:
        print("PostgreSQL: not installed, skipped")
        return
    try:
        asyncio.run(server.create_database("bench"))
        per_s, p99, rows = asyncio.run(bench(server.url("bench"), args.calls, folder / "s"))
        print(
            f"PostgreSQL: {per_s:,.0f} rows/s ({rows} rows, {args.calls} calls); "
            f"handing one call's records to the writer: p99 {p99:.0f} µs"
        )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
