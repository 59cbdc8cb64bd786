"""Report at scale (issue 10): a month's report by branch over N call rows, SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.report_scale --rows 1000000

Generates a year of realistic calls (benchmarks/scale_data.py: rows and their steps, bulk
loaded), runs `ivr db rollups rebuild` (ivr.store.rollups.rebuild, timed), then times the
report of October 2026 by branch as `ivr report` makes it (report_from_store: rollups),
median of 3, and once reading every call row of the month instead (the path without rollups).
PostgreSQL is a throwaway cluster on loopback (ivr.testing.pg); skipped where not installed.
Each figure is printed as soon as it is measured; `--keep DIR` leaves the SQLite file there.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks.scale_data import DAYS, load_postgres, load_sqlite
from ivr.reports.facts import read_facts
from ivr.reports.grouping import Grouper
from ivr.reports.periods import Period
from ivr.reports.query import classifier, report_from_store
from ivr.reports.report import build_report
from ivr.routing.load import load_routing
from ivr.routing.model import Routing
from ivr.store.db import ROOT, make_engine, sqlite_url, upgrade
from ivr.store.rollups import rebuild
from ivr.testing.pg import PgServer

MONTH = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
ROUTING = ROOT / "routing" / "hotline.yaml"


def note(name: str, what: str) -> None:
    print(f"  {name}: {what}  (load average {os.getloadavg()[0]:.1f})", flush=True)


async def measure(
    name: str, url: str, routing: Routing, repeat: int, raw_too: bool = True
) -> dict[str, float]:
    engine = make_engine(url, create=False)
    try:
        t0 = time.perf_counter()
        await rebuild(engine)
        figures = {"rebuild_s": time.perf_counter() - t0}
        note(name, f"rollups rebuilt in {figures['rebuild_s']:.1f} s")
        note(name, await _rollup_rows(engine))
        times, cpu, received = [], [], 0
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            report = await report_from_store(engine, MONTH, ["branch"], routing)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)  # this process: Python and SQLite's thread
            received = report.total.received
        figures["report_s"] = statistics.median(times)
        figures["month_calls"] = received
        shown = ", ".join(f"{t * 1000:.0f}" for t in times)
        spent = ", ".join(f"{t * 1000:.0f}" for t in cpu)
        note(
            name,
            f"report by branch (rollups): {shown} ms (median {figures['report_s'] * 1000:.0f}; "
            f"CPU of this process {spent} ms); {received:,} calls in the month",
        )
        if not raw_too:
            return {**figures, "raw_s": math.nan}
        t0 = time.perf_counter()
        grouper = Grouper(routing, MONTH.tz)
        facts = read_facts(engine, MONTH.start, MONTH.end, classifier(routing))
        raw = await build_report(facts, MONTH, ["branch"], grouper)
        figures["raw_s"] = time.perf_counter() - t0
        note(name, f"report reading every row: {figures['raw_s']:.1f} s")
        assert raw.total.received == received, "rollups and raw rows disagree"
        return figures
    finally:
        await engine.dispose()


async def sqlite_run(
    folder: Path, rows: int, routing: Routing, repeat: int, days: int = DAYS, raw: bool = True
) -> dict[str, float]:
    url = sqlite_url(folder)
    await asyncio.to_thread(upgrade, url)
    t0 = time.perf_counter()
    await asyncio.to_thread(load_sqlite, url, rows, days=days)
    load_s = time.perf_counter() - t0
    note("SQLite", f"loaded in {load_s:.1f} s, {_size(folder) / 1e9:.2f} GB")
    figures = {"load_s": load_s, **await measure("SQLite", url, routing, repeat, raw)}
    return {**figures, "size": _size(folder)}


async def postgres_run(
    folder: Path, rows: int, routing: Routing, repeat: int, days: int = DAYS, raw: bool = True
) -> dict[str, float] | None:
    server = PgServer.create(folder)
    if server is None:
        return None
    try:
        url = await server.create_database("report_scale")
        await asyncio.to_thread(upgrade, url)
        t0 = time.perf_counter()
        await load_postgres(url, rows, days=days)
        load_s = time.perf_counter() - t0
        note("PostgreSQL", f"loaded in {load_s:.1f} s, {await _pg_size(url) / 1e9:.2f} GB")
        figures = {"load_s": load_s, **await measure("PostgreSQL", url, routing, repeat, raw)}
        return {**figures, "size": await _pg_size(url)}
    finally:
        server.stop()


async def _rollup_rows(engine: AsyncEngine) -> str:
    """How many rows of each rollup table the month's report may read."""
    found = []
    async with engine.connect() as conn:
        for table, column in (
            ("call_days", "day"),
            ("call_hours", "slot"),
            ("call_rollups", "slot"),
        ):
            n = await conn.scalar(
                text(f"SELECT count(*) FROM {table} WHERE {column} >= :a AND {column} < :b"),
                {"a": _bound(conn, MONTH.start), "b": _bound(conn, MONTH.end)},
            )
            found.append(f"{table} {n:,}")
    return "rollup rows in the month: " + ", ".join(found)


def _bound(conn: AsyncConnection, at: dt.datetime) -> object:
    """A UTC instant as the column stores it (text on SQLite)."""
    utc = at.astimezone(dt.UTC)
    if conn.dialect.name == "sqlite":
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    return utc


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


async def _pg_size(url: str) -> int:
    engine = make_engine(url, create=False)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT pg_database_size(current_database())")))
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="call rows (a year of them)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--keep", type=Path, help="leave the SQLite database in this new folder")
    ap.add_argument(
        "--month-only",
        action="store_true",
        help="load only the month the report reads, as dense as in a year of --rows calls",
    )
    ap.add_argument("--no-raw", action="store_true", help="skip the report reading every row")
    args = ap.parse_args()
    days = MONTH.days if args.month_only else DAYS
    rows = args.rows * days // DAYS
    routing = load_routing(ROUTING)
    folder = Path(tempfile.mkdtemp(prefix="ivr-report-scale-"))
    folder.chmod(0o755)  # initdb runs as postgres when we are root
    span = f"only the last {days} days: {rows:,} rows" if args.month_only else "rows over a year"
    print(f"{args.rows:,} call {span}; report of {MONTH.label()} by branch")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    results: list[tuple[str, dict[str, float] | None]] = []
    try:
        if args.only != "postgresql":
            lite = args.keep or folder / "lite"
            results.append(
                (
                    "SQLite",
                    asyncio.run(
                        sqlite_run(lite, rows, routing, args.repeat, days, not args.no_raw)
                    ),
                )
            )
        if args.only != "sqlite":
            pg = postgres_run(folder / "pg", rows, routing, args.repeat, days, not args.no_raw)
            results.append(("PostgreSQL", asyncio.run(pg)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("| backend | size | load | rollups rebuild | month's calls | report (rollups), median of "
          f"{args.repeat} | report reading every row |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, figures in results:
        show(name, figures)


def show(name: str, f: dict[str, float] | None) -> None:
    if f is None:
        print(f"| {name} | not installed | | | | | |")
        return
    print(
        f"| {name} | {f['size'] / 1e9:.1f} GB | {f['load_s']:.0f} s | {f['rebuild_s']:.0f} s "
        f"| {int(f['month_calls']):,} | {f['report_s'] * 1000:.0f} ms | {f['raw_s']:.1f} s |",
        flush=True,
    )


if __name__ == "__main__":
    main()
