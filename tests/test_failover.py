"""Failover without Asterisk: where a taken-over call goes on (pure), who is judged dead (the
presence locks on a real PostgreSQL, the holder killed with SIGKILL), what plays where."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ivr.ari.claim import Playbacks
from ivr.ari.event_types import AriEvent
from ivr.cluster.presence import PeerWatch, lock_key
from ivr.cluster.resume import resume_at
from ivr.flow.record import Step
from ivr.routing.model import Routing
from ivr.store.db import make_engine, upgrade
from ivr.store.lease import Owner, claim
from ivr.testing.pg import PgServer

ROOT = Path(__file__).resolve().parent.parent

OPEN = Step("start", "hours", "open")
GREETED = Step("greeting", "prompt", "played")


@pytest.mark.parametrize(
    ("steps", "node"),
    [
        ([], "start"),  # nothing written yet: from the top
        ([OPEN], "greeting"),
        ([OPEN, GREETED], "main-menu"),
        ([OPEN, GREETED, Step("main-menu", "menu", "no_input")], "main-menu"),
        ([OPEN, GREETED, Step("main-menu", "menu", "invalid", "*")], "main-menu"),
        ([OPEN, GREETED, Step("main-menu", "menu", "chosen", "4")], None),  # ringing: operators
        ([OPEN, GREETED, Step("main-menu", "menu", "exhausted")], "goodbye"),
        ([OPEN, Step("no-such-node", "prompt", "played")], None),
        ([OPEN, GREETED, Step("main-menu", "menu", "chosen", "0")], None),  # the directory
    ],
)
def test_resume_point(routing: Routing, steps: list[Step], node: str | None) -> None:
    assert resume_at(routing, steps) == node


def test_lock_key_is_stable_and_distinct() -> None:
    assert lock_key("a") == lock_key("a")
    assert lock_key("a") != lock_key("b")
    assert -(2**63) <= lock_key("a") < 2**63


def _ev(kind: str, playback: str, channel: str) -> AriEvent:
    return {"type": kind, "playback": {"id": playback, "target_uri": f"channel:{channel}"}}


class _Client:
    """The one request Playbacks makes, recorded."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    async def stop_playback(self, playback_id: str) -> None:
        self.stopped.append(playback_id)


async def test_playbacks_known_until_finished() -> None:
    seen, client = Playbacks(), _Client()
    seen.see(_ev("PlaybackStarted", "p1", "c1"))
    seen.see(_ev("PlaybackStarted", "p2", "c2"))
    seen.see(_ev("PlaybackFinished", "p2", "c2"))
    seen.see(_ev("PlaybackFinished", "p0", "c1"))  # an older one: p1 still plays
    assert await seen.stop(client, "c1")  # type: ignore[arg-type]
    assert not await seen.stop(client, "c2")  # type: ignore[arg-type]
    assert client.stopped == ["p1"]


_HOLDER = """
import asyncio, sys
from ivr.cluster.presence import Presence
from ivr.store.db import make_engine
async def main():
    p = Presence(make_engine(sys.argv[1]), sys.argv[2])
    await p.hold()
    print("HOLDING", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@pytest.fixture
async def pg_url(pg_server: PgServer | None) -> str:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed (cluster mode needs it)")
    url = await pg_server.create_database(f"ivr_presence_{os.getpid()}_{time.monotonic_ns()}")
    await asyncio.to_thread(upgrade, url)
    return url


async def test_a_killed_controller_is_taken_over_once(pg_url: str) -> None:
    engine = make_engine(pg_url)
    now = dt.datetime.now(dt.UTC)
    await claim(engine, Owner("dead", host="elsewhere"), now, 60)
    await claim(engine, Owner("never-clustered", host="elsewhere"), now, 60)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, pg_url, "dead", cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    taken: list[tuple[str, str]] = []
    watches = []
    for me in ("s1", "s2"):

        async def on_dead(peer: str, me: str = me) -> None:
            taken.append((me, peer))

        watches.append(PeerWatch(engine, me, on_dead))
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"HOLDING\n"
        for w in watches:
            assert await w.probe() == []
            assert w.armed == {"dead"}  # the one not holding a lock is never judged
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        async with asyncio.timeout(10):  # PostgreSQL frees the lock as the session ends
            while not taken:
                await asyncio.gather(*(w.probe() for w in watches))
        for _ in range(3):
            await asyncio.gather(*(w.probe() for w in watches))
        assert len(taken) == 1
        assert taken[0][1] == "dead"
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        for w in watches:
            await w.close()
        await engine.dispose()
