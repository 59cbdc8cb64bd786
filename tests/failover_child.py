"""One controller of a cluster, for the failover tests: `python -m tests.failover_child` with
the settings in its environment (FO_DB, FO_ARI_URL, FO_ARI_USER, FO_ARI_PASSWORD, FO_ID,
FO_SPOOL, FO_RECORDINGS). Prints READY once connected and holding its presence lock; the parent
kills it with SIGKILL. Its clock is a fixed working day (09:00 in Hà Nội), so the office is open.
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
from ivr.store.lease import Owner
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
    engine = make_engine(env["FO_DB"])
    writer = StoreWriter(engine, Path(env["FO_SPOOL"]), owner=Owner.here(me))
    client = AriClient(
        env["FO_ARI_URL"], env["FO_ARI_USER"], env["FO_ARI_PASSWORD"], APP_PREFIX + me
    )
    app = ClusterApp(
        client,
        lambda: routing,
        writer,
        clock=lambda: DAY,
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
