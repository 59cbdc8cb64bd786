"""A controller process for the crash test: three calls in conversation, then it waits to die.

Run as `python -m tests.crash_child DB_URL SPOOL_DIR`; prints IN-CALL once the calls' rows are
in the database, then blocks until the parent kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path

from ivr import logs
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.sim.harness import Harness
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press
from ivr.store.db import make_engine
from ivr.store.writer import StoreWriter

ROOT = Path(__file__).resolve().parent.parent


async def main(url: str, spool: Path) -> None:
    logs.configure(level="ERROR")
    routing = load_routing(
        ROOT / "routing" / "hotline.yaml", load_manifest(ROOT / "prompts" / "manifest.yaml").keys()
    )
    engine = make_engine(url)
    writer = StoreWriter(engine, spool)
    await writer.start()
    day = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
    forever = Clerks(default=ClerkScript(ClerkKind.ANSWER, ring_seconds=1, talk_seconds=None))
    async with Harness(routing, writer, speed=10, clerks=forever, clock=lambda: day) as h:
        calls = [
            h.sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number=f"0900{i}"))
            for i in range(3)
        ]
        for call in calls:
            await call.reached("bridged")
        await writer.sync()
        print("IN-CALL", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
