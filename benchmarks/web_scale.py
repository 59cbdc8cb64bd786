"""Web console at scale (issue 11): the call list over 1 M call rows, and the wallboard's push
latency with 1,000 calls in progress and 20 open browsers.

    .venv/bin/python -m benchmarks.web_scale --rows 1000000

SQLite (WAL) loaded in bulk (benchmarks/scale_data.py), the console's aiohttp app on a loopback
port (`make_app`, as `ivr web` serves it), one signed-in supervisor. The call list: its first
page and a keyset page deep in the table (half-way, by `after_at`/`after_id`), unfiltered and by
branch, median and max of 7. The wallboard: 1,000 calls in progress with their steps (menu, then
ringing), 20 event streams open; a call's state changes in the database (a `talking` step
written on another connection) and each stream's receipt of a board showing it is timed; 25
changes, one after the other → 500 latencies, p50 / p99 / max. The 20 browsers and the writer of
the changes run in a process of their own (as browsers and controllers are not in the console's
process): the server's process does only the server's work.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import re
import shutil
import statistics
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.scale_data import DAYS, FIRST, VN, load_sqlite
from ivr import logs
from ivr.store.db import ROOT, make_engine, sqlite_url, upgrade
from ivr.web.app import make_app
from ivr.web.data import users
from ivr.web.keys import WebConfig
from ivr.web.passwords import hash_password
from ivr.web.roles import Role
from ivr.web.routing_desk import RoutingDesk
from models import Call, CallStep

PASSWORD = "mật-khẩu-đo-tải"
ROUTING = ROOT / "routing" / "hotline.yaml"
MANIFEST = ROOT / "prompts" / "manifest.yaml"
LIVE, BROWSERS, CHANGES, REPEAT = 1000, 20, 25, 7
Client = TestClient[web.Request, web.Application]


async def timed_get(c: Client, path: str) -> float:
    t0 = time.perf_counter()
    r = await c.get(path)
    await r.read()
    assert r.status == 200, r.status
    return time.perf_counter() - t0


async def call_list(c: Client) -> dict[str, tuple[float, float]]:
    middle = dt.datetime.combine(FIRST + dt.timedelta(days=DAYS // 2), dt.time(12), VN)
    deep = {"after_at": middle.isoformat(), "after_id": "bench/999999999"}
    paths = {
        "first page": "/calls",
        "deep keyset page": "/calls?" + urlencode(deep),
        "first page, branch 6": "/calls?branch=6",
        "deep page, branch 6": "/calls?" + urlencode({"branch": "6", **deep}),
    }
    out = {}
    for name, path in paths.items():
        await timed_get(c, path)  # warm
        times = [await timed_get(c, path) for _ in range(REPEAT)]
        out[name] = (statistics.median(times), max(times))
    return out


async def live_calls(engine: AsyncEngine) -> None:
    now = dt.datetime.now(dt.UTC)
    calls, steps = [], []
    for i in range(LIVE):
        key, branch = f"live/{i:05d}", str(i % 9 + 1)
        start = now - dt.timedelta(seconds=30 + i % 200)
        calls.append({
            "id": key, "channel_id": key, "node": "live", "controller": "bench", "linked_id": key,
            "caller_number": f"0800{i:06d}", "caller_name": "", "dialed": "1022",
            "started_at": start, "path": "", "digits": branch, "branch": branch,
            "disposition": "in_progress", "wait_seconds": 0.0, "talk_seconds": 0.0,
            "routing_version": "bench",
        })  # fmt: skip
        for seq, (node, kind, outcome, inp) in enumerate(
            (("entry", "hours", "open", ""), ("main-menu", "menu", "chosen", branch),
             (f"branch-{branch}", "state", "ringing", ""))
        ):  # fmt: skip
            at = start + dt.timedelta(seconds=5 * (seq + 1))
            steps.append({"call_id": key, "seq": seq, "node": node, "kind": kind,
                          "outcome": outcome, "input": inp, "detail": "", "at": at})  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(insert(Call), calls)
        await conn.execute(insert(CallStep), steps)


async def browser(
    session: ClientSession,
    url: str,
    wanted: dict[str, float],
    got: list[float],
    events: tuple[asyncio.Event, asyncio.Event],
) -> None:
    """One open wallboard: each board pushed is checked for the changes still awaited."""
    ready, progress = events
    async with session.get(url, timeout=None) as r:
        ready.set()
        data = b""
        async for line in r.content:
            if line.startswith(b"data: "):
                data = line[6:]
            elif line == b"\n" and data and wanted:
                board = json.loads(data)
                talking = {c["caller"] for c in board["calls"] if c["state"] == "talking"}
                for caller in [k for k in wanted if k in talking]:
                    got.append(time.perf_counter() - wanted[caller])
                    del wanted[caller]
                    progress.set()
                data = b""


async def changes(url: str, cookies: dict[str, str], db_url: str) -> list[float]:
    """The browsers and the calls' changes, run in their own process (`drive`)."""
    engine = make_engine(db_url, create=False)
    latencies: list[float] = []
    async with ClientSession(cookies=cookies) as session:
        pending: list[dict[str, float]] = [{} for _ in range(BROWSERS)]
        readies = [asyncio.Event() for _ in range(BROWSERS)]
        progress = asyncio.Event()
        tasks = [
            asyncio.create_task(
                browser(session, url, pending[i], latencies, (readies[i], progress))
            )
            for i in range(BROWSERS)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 60)
        for n in range(CHANGES):
            caller, key = f"0800{n * 37:06d}", f"live/{n * 37:05d}"
            before = len(latencies)
            t0 = time.perf_counter()
            for p in pending:
                p[caller] = t0
            async with engine.begin() as conn:
                await conn.execute(
                    insert(CallStep).values(
                        call_id=key, seq=3, node="branch-1", kind="state", outcome="talking",
                        input="", detail="", at=dt.datetime.now(dt.UTC),
                    )
                )  # fmt: skip
            deadline = time.perf_counter() + 30
            while len(latencies) < before + BROWSERS:  # every browser saw it, or 30 s
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), deadline - time.perf_counter())
                except TimeoutError:
                    break
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await engine.dispose()
    return latencies


def drive(url: str, cookies: dict[str, str], db_url: str, out: Queue[list[float]]) -> None:
    out.put(asyncio.run(changes(url, cookies, db_url)))


async def wallboard(c: Client, engine: AsyncEngine, db_url: str) -> list[float]:
    """The browsers and the writer of changes run in a process of their own: in the server's
    process their JSON parsing (20 boards of 1,000 calls per change) took the server's CPU and
    counted against the push it was timing."""
    await live_calls(engine)
    url = str(c.make_url("/wallboard/events"))
    cookies = {
        m.key: m.value for m in c.session.cookie_jar.filter_cookies(c.make_url("/")).values()
    }
    spawn = multiprocessing.get_context("spawn")
    out: Queue[list[float]] = spawn.Queue()
    child = spawn.Process(target=drive, args=(url, cookies, db_url, out), name="web-scale-browsers")
    child.start()
    try:
        latencies: list[float] = await asyncio.to_thread(out.get, True, 30 * CHANGES + 120)
    finally:
        await asyncio.to_thread(child.join, 30)
    missed = CHANGES * BROWSERS - len(latencies)
    if missed:
        print(f"{missed} of {CHANGES * BROWSERS} changes never reached their browser in 30 s")
    return latencies


async def run(folder: Path, rows: int) -> None:
    logs.configure(level="WARNING")
    url = sqlite_url(folder)
    await asyncio.to_thread(upgrade, url)
    t0 = time.perf_counter()
    await asyncio.to_thread(load_sqlite, url, rows)
    print(f"{rows:,} call rows loaded in {time.perf_counter() - t0:.1f} s (SQLite, WAL)")
    engine = make_engine(url, create=False)
    await users.add_user(engine, "giamsat", Role.SUPERVISOR, hash_password(PASSWORD))
    desk = RoutingDesk(ROUTING, MANIFEST)
    desk.reload()
    config = WebConfig(folder, b"k" * 32, routing=ROUTING, prompts=MANIFEST)  # as `ivr web`
    try:
        async with TestClient(TestServer(make_app(engine, config, desk))) as c:
            page = await (await c.get("/login")).text()
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            form = {"name": "giamsat", "password": PASSWORD, "csrf": token.group(1)}
            r = await c.post("/login", data=form, allow_redirects=False)
            assert r.status == 302, r.status
            print("| call list | median | max |\n|---|---|---|")
            for name, (med, top) in (await call_list(c)).items():
                print(f"| {name} | {med * 1000:.0f} ms | {top * 1000:.0f} ms |")
            lat = sorted(await wallboard(c, engine, url))
            if lat:
                p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                print(
                    f"wallboard, {LIVE} calls in progress, {BROWSERS} streams, {len(lat)} "
                    f"receipts: push latency p50 {statistics.median(lat) * 1000:.0f} ms, "
                    f"p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
                )
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ivr-web-scale-"))
    try:
        asyncio.run(run(folder, args.rows))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
