"""One controller of a cluster, for the failover tests: `python -m tests.failover_child` with
the settings in its environment (FO_DB, FO_ARI_URL, FO_ARI_USER, FO_ARI_PASSWORD, FO_ID,
FO_SPOOL, FO_RECORDINGS, FO_BASE). Prints READY once connected and holding its presence lock; the
parent kills it with SIGKILL. Its clock is a working day from 09:00 in Hà Nội (the office is open)
running at the wall clock's pace from FO_BASE, a moment every controller of the test shares, so
the talk time one controller starts and another ends is real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

from ivr import logs
from ivr.ari.client import AriClient
from ivr.cluster.app import APP_PREFIX, ClusterApp
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.store.db import make_engine
from ivr.store.lease import Owner, utc_now
from ivr.store.writer import StoreWriter

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


async def main() -> None:
    env = os.environ
    logs.configure(json=True, level="INFO")
    routing = load_routing(
        ROOT / "routing" / "hotline.yaml", load_manifest(ROOT / "prompts" / "manifest.yaml").keys()
    )
    me = env["FO_ID"]
    base = dt.datetime.fromisoformat(env["FO_BASE"]) if "FO_BASE" in env else utc_now()
    engine = make_engine(env["FO_DB"])
    writer = StoreWriter(engine, Path(env["FO_SPOOL"]), owner=Owner.here(me))
    client = AriClient(
        env["FO_ARI_URL"], env["FO_ARI_USER"], env["FO_ARI_PASSWORD"], APP_PREFIX + me
    )
    app = ClusterApp(
        client,
        lambda: routing,
        writer,
        clock=lambda: DAY + (utc_now() - base),
        recordings_dir=env.get("FO_RECORDINGS", "/var/spool/asterisk/recording"),
        engine=engine,
        controller=me,
    )
    await writer.start()
    task = asyncio.create_task(app.run())
    await app.stream.connected.wait()
    await app.holding.wait()
    print("READY", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main())
