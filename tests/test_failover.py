"""Failover without Asterisk: where a taken-over call goes on (pure), who is judged dead (the
presence locks on a real PostgreSQL, the holder killed with SIGKILL), what plays where, and a
dead controller's conversation adopted by a survivor (the real ARI client and store, a fake ARI
on loopback that records the requests; the test sends the events)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.ari.claim import Playbacks
from ivr.ari.client import AriClient
from ivr.ari.event_types import AriEvent
from ivr.ari.models import Application, Channel
from ivr.cluster.app import ClusterApp
from ivr.cluster.presence import PeerWatch, lock_key, session_name
from ivr.cluster.resume import resume_at
from ivr.cluster.takeover import Conversation, _dialled, conversations, take_over
from ivr.flow.record import CallTrace, Identified, Step
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.store.db import make_engine
from ivr.store.lease import Owner, claim, release, sweep
from ivr.store.writer import StoreWriter
from ivr.testing.pg import PgServer
from models import Call, CallStep
from tests.conftest import pg_database

ROOT = Path(__file__).resolve().parent.parent

OPEN = Step("start", "hours", "open")
GREETED = Step("greeting", "prompt", "played")
T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
CHOSE_4 = Step("main-menu", "menu", "chosen", "4")
RINGING = Step("branch-4", "state", "ringing", detail="PJSIP/cchc-4a,PJSIP/cchc-4b", at=T0)
TALKING = Step("branch-4", "state", "talking", detail="PJSIP/cchc-4a", at=T0)


@pytest.mark.parametrize(
    ("steps", "node"),
    [
        ([], "start"),  # nothing written yet: from the top
        ([OPEN], "greeting"),
        ([OPEN, GREETED], "main-menu"),
        ([OPEN, GREETED, Step("main-menu", "menu", "no_input")], "main-menu"),
        ([OPEN, GREETED, Step("main-menu", "menu", "invalid", "*")], "main-menu"),
        # the choice made, the desks not dialled yet: the dial node from its start
        ([OPEN, GREETED, Step("main-menu", "menu", "chosen", "4")], "branch-4"),
        ([OPEN, GREETED, CHOSE_4, RINGING], "branch-4"),  # ringing: the same desks again
        ([OPEN, GREETED, CHOSE_4, RINGING, TALKING], None),  # not bridged after all: operators
        # a second death: the first survivor's mark is no node
        ([OPEN, GREETED, Step("takeover", "takeover", "resumed"), CHOSE_4, RINGING], "branch-4"),
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
    return await pg_database(pg_server, "ivr_presence")  # cluster mode needs PostgreSQL


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


_KEEPER = _HOLDER.replace(
    'print("HOLDING", flush=True)\n    await asyncio.Event().wait()',
    'print("HOLDING", flush=True)\n    await p.keep(every=0.2)',
)


async def _sessions(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"), {"n": name}
        )
    return int(found or 0)


@contextlib.asynccontextmanager
async def _peer_held(
    pg_url: str,
) -> AsyncIterator[tuple[AsyncEngine, asyncio.subprocess.Process, PeerWatch, list[str]]]:
    """A peer controller ("peer", in its own process) holding its presence, with a lease on
    record, and our watch of it ("me"); ``taken``: the peers the watch declared dead."""
    engine = make_engine(pg_url)
    await claim(engine, Owner("peer", host="elsewhere"), dt.datetime.now(dt.UTC), 60)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KEEPER, pg_url, "peer", cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    taken: list[str] = []

    async def on_dead(peer: str) -> None:
        taken.append(peer)

    watch = PeerWatch(engine, "me", on_dead)
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"HOLDING\n"
        yield engine, holder, watch, taken
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await watch.close()
        await engine.dispose()


async def test_a_database_that_drops_every_session_makes_nobody_dead(pg_url: str) -> None:
    """PostgreSQL restarted (every session ends, the live peers' too): the watch forgets who was
    alive, the live peer takes its session again, and nobody takes its calls over."""
    async with _peer_held(pg_url) as (engine, _holder, watch, taken):
        assert await watch.probe() == []
        assert watch.armed == {"peer"}
        async with engine.connect() as admin:  # as a restart does: every other session ends
            await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            await admin.commit()
        running = asyncio.create_task(watch.run())  # probes, meets the cut, reconnects
        try:
            async with asyncio.timeout(20):  # the peer holds its session again, is seen again
                while await _sessions(engine, session_name("peer")) == 0 or not watch.armed:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:  # stopped before probing here: two probes at once would share one connection
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        for _ in range(3):
            assert await watch.probe() == []
        assert watch.armed == {"peer"}
        assert taken == []


async def _pids(engine: AsyncEngine, name: str) -> tuple[set[int], set[int]]:
    """The pids of a controller's presence sessions, and of those holding an advisory lock."""
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT a.pid, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid"
                " AND l.locktype = 'advisory' AND l.granted)"
                " FROM pg_stat_activity a WHERE a.application_name = :n"
            ),
            {"n": name},
        )
        rows = list(found)
    return {pid for pid, _ in rows}, {pid for pid, locked in rows if locked}


async def _end_session(engine: AsyncEngine, name: str, *, locked: bool) -> None:
    """End one of a controller's presence sessions: the one holding its lock, or the other."""
    holds = "EXISTS" if locked else "NOT EXISTS"
    async with engine.connect() as admin:
        ended = await admin.scalar(
            text(
                "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a "
                f"WHERE a.application_name = :n AND {holds} (SELECT 1 FROM pg_locks l "
                "WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)"
            ),
            {"n": name},
        )
        await admin.commit()
    assert ended == 1


async def test_a_live_peer_that_loses_one_presence_session_is_not_taken_over(pg_url: str) -> None:
    """Its lock's session ended (then its other one): it keeps serving, takes the session
    again, and no survivor moves its calls; killed, it is taken over."""
    name = session_name("peer")
    async with _peer_held(pg_url) as (engine, holder, watch, taken):
        assert await _sessions(engine, name) == 2  # the lock's and the witness
        assert await watch.probe() == []
        for locked in (True, False):
            before, _ = await _pids(engine, name)
            await _end_session(engine, name, locked=locked)
            async with asyncio.timeout(20):  # probed all along until it holds both again
                # a session taken again is named before it takes the lock: both, lock included
                while True:
                    now, holding = await _pids(engine, name)
                    if len(now) == 2 and now != before and len(holding) == 1:
                        break
                    assert await watch.probe() == []
                assert len(now & before) == 1  # the other session lived on
            assert await watch.probe() == []
        assert (taken, watch.armed) == ([], {"peer"})
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        async with asyncio.timeout(10):
            while not taken:
                await watch.probe()
        assert taken == ["peer"]


def test_conversations_are_the_dead_apps_bridges_of_a_caller_and_its_leg() -> None:
    bridges = [
        {"id": "br-1", "channels": ["c1-leg3", "c1"]},
        {"id": "br-2", "channels": ["c2"]},  # a caller alone: not a conversation
        {"id": "br-3", "channels": ["x9", "x9-leg1"]},  # another app's
    ]
    found = conversations(bridges, {"c1", "c1-leg3", "c2"})
    assert found == [Conversation("br-1", "c1", "c1-leg3")]
    assert conversations(None, {"c1"}) == []


# --- a dead controller's conversation, adopted ---------------------------------------------------

CALLER, LEG, BRIDGE, NODE = "1764043200.5", "1764043200.5-leg2", "1764043200.5-br3", "ast-1"


class FakeAri:
    """The requests ARI gets, recorded; every channel exists until it is hung up."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.gone: set[str] = set()
        self.failing: set[tuple[str, str]] = set()  # (method, path) answered 500
        self.apps: dict[str, list[str]] = {}  # app name → its channels (GET /applications/…)
        self.seen = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/ari")
        async with self.seen:
            self.requests.append((request.method, path, dict(request.query)))
            self.seen.notify_all()
        parts = path.strip("/").split("/")
        if (request.method, path) in self.failing:
            return web.json_response({"message": "Internal Server Error"}, status=500)
        if parts == ["events", "claim"]:  # StasisBroadcast's offer: a peer always wins it
            return web.json_response({"message": "Channel not found"}, status=404)
        if parts[0] == "applications" and len(parts) == 2 and parts[1] in self.apps:
            return web.json_response({"name": parts[1], "channel_ids": self.apps[parts[1]]})
        if parts == ["bridges"]:
            return web.json_response([])
        if parts == ["channels"] and request.method == "POST":  # originate
            return web.json_response(_channel(request.query["channelId"]))
        if parts[0] == "channels" and parts[1] in self.gone:
            return web.json_response({"message": "Channel not found"}, status=404)
        if parts[0] == "channels" and len(parts) == 2:
            if parts[1] in self.gone:
                return web.json_response({"message": "Channel not found"}, status=404)
            if request.method == "DELETE":
                self.gone.add(parts[1])
                return web.Response(status=204)
            return web.json_response(_channel(parts[1]))
        if parts[0] == "channels" and parts[2:3] == ["play"]:
            pb = {"id": parts[3], "state": "queued", "target_uri": f"channel:{parts[1]}"}
            return web.json_response({**pb, "media_uri": request.query["media"]}, status=201)
        return web.Response(status=204)

    async def wait_for(self, method: str, path: str) -> None:
        await self.wait_until(lambda: (method, path) in self.made)

    async def wait_until(self, made: Callable[[], bool]) -> None:
        async with asyncio.timeout(10), self.seen:
            await self.seen.wait_for(made)

    @property
    def made(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _q in self.requests]


def _channel(channel_id: str) -> dict[str, object]:
    return {
        "id": channel_id,
        "name": f"PJSIP/trunk-{channel_id}",
        "state": "Up",
        "caller": {"name": "", "number": "0912345678"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "hotline-cluster", "exten": "18001022", "priority": 3},
        "creationtime": "2026-11-25T09:00:00.000+0700",
        "language": "vi",
        "linkedid": CALLER,
    }


@pytest.fixture
async def fake_ari() -> AsyncIterator[tuple[FakeAri, str]]:
    fake = FakeAri()
    server = web.Server(fake.handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}/ari"
    finally:
        await runner.cleanup()


async def _dead_controllers_call(
    url: str, folder: Path, last: tuple[Step, ...] = (RINGING, TALKING)
) -> None:
    """What the dead controller had written: the menu, then ``last`` (after the choice of
    branch 4 unless ``last`` starts with its own choice): by default 4's desks rang, 4a answered."""
    engine = make_engine(url)
    dead = StoreWriter(engine, folder / "dead", owner=Owner("dead", host="elsewhere"))
    await dead.start()
    observer = Identified(dead, NODE)
    trace = CallTrace(CallInfo(CALLER, "0912345678"), "v1", T0 - dt.timedelta(seconds=30))
    trace.answered_at = T0 - dt.timedelta(seconds=30)
    observer.call_started(trace.snapshot())
    for step in (OPEN, GREETED, *(last if last[0].kind == "menu" else (CHOSE_4, *last))):
        observer.call_step(CALLER, trace.add(step))
    assert await dead.sync()
    await dead.drain()
    for task in (dead._task, dead._lease_task):  # it dies: no clean stop
        assert task is not None
        task.cancel()
    await asyncio.gather(dead._task, dead._lease_task, return_exceptions=True)
    await engine.dispose()


async def _survivor(
    routing: Routing, url: str, ari: str, folder: Path
) -> tuple[ClusterApp, StoreWriter]:
    engine = make_engine(url)
    writer = StoreWriter(engine, folder / "survivor", owner=Owner("survivor", host="h"))
    await writer.start()
    app = ClusterApp(
        AriClient(ari, "ivr", "pw", "hotline-survivor"),
        lambda: routing,
        writer,
        clock=lambda: T0 + dt.timedelta(seconds=42),  # the desk answered at T0: 42 s of talk
        engine=engine,
        controller="survivor",
    )
    app.node = NODE
    return app, writer


Adoption = tuple[FakeAri, ClusterApp, StoreWriter]


@pytest.fixture
async def after_death(
    routing: Routing, db_url: str, tmp_path: Path, fake_ari: tuple[FakeAri, str]
) -> AsyncIterator[Callable[..., Awaitable[Adoption]]]:
    """``await after_death(last=...)``: the dead controller's call written (its last steps
    ``last``), then a survivor on the fake ARI; closed after the test."""
    made: list[tuple[ClusterApp, StoreWriter]] = []

    async def make(last: tuple[Step, ...] = (RINGING, TALKING)) -> Adoption:
        fake, ari = fake_ari
        await _dead_controllers_call(db_url, tmp_path, last)
        app, writer = await _survivor(routing, db_url, ari, tmp_path)
        made.append((app, writer))
        return fake, app, writer

    yield make
    for app, writer in made:
        await app.client.close()
        await writer.stop()
        await writer.engine.dispose()


async def _row_and_steps(writer: StoreWriter) -> tuple[Call, list[tuple[str, str, str]]]:
    assert await writer.sync()
    async with writer.engine.connect() as conn:
        rows = list((await conn.execute(select(Call))).all())
        steps = await conn.execute(
            select(CallStep.node, CallStep.kind, CallStep.outcome)
            .where(CallStep.call_id == f"{NODE}/{CALLER}")
            .order_by(CallStep.seq)
        )
        assert len(rows) == 1, rows  # one call, one row
        return rows[0], [tuple(s) for s in steps]  # type: ignore[return-value,misc]


def _moved_in() -> AriEvent:
    """The dead controller's caller arriving in the survivor's app (the takeover's move)."""
    return {  # type: ignore[typeddict-item]
        "type": "StasisStart",
        "channel": _channel(CALLER),
        "args": ["takeover"],
        "asterisk_id": NODE,
    }


def _hung_up(channel: str) -> AriEvent:
    return {"type": "ChannelHangupRequest", "channel": _channel(channel), "cause": 16}  # type: ignore[typeddict-item]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_adopted_conversation_the_caller_hangs_up(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    fake, app, writer = await after_death()
    adopting = asyncio.create_task(app._adopt(Conversation(BRIDGE, CALLER, LEG)))
    await fake.wait_for("POST", "/applications/hotline-survivor/subscription")
    await fake.wait_for("GET", f"/channels/{LEG}")  # both legs are there: the talk goes on
    assert ("DELETE", f"/bridges/{BRIDGE}") not in fake.made
    app.on_event(_hung_up(CALLER))
    await asyncio.wait_for(adopting, 10)
    sub = next(q for m, p, q in fake.requests if p.endswith("/subscription") and m == "POST")
    assert sub["eventSource"] == f"channel:{CALLER},channel:{LEG}"
    assert ("DELETE", f"/channels/{LEG}") in fake.made  # the desk is hung up
    assert ("DELETE", f"/bridges/{BRIDGE}") in fake.made
    assert not any(p.endswith("/move") for _m, p in fake.made)  # never moved: never cut
    row, steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition, row.hangup_by) == ("survivor", "answered", "caller")
    assert (row.endpoint, row.talk_seconds) == ("PJSIP/cchc-4a", 42.0)
    assert steps[-2:] == [("takeover", "takeover", "adopted"), ("branch-4", "dial", "answered")]
    assert app.routes == {}
    assert app.calls == {}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_adopted_conversation_the_desk_hangs_up_and_the_survey_follows(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    fake, app, writer = await after_death()
    adopting = asyncio.create_task(app._adopt(Conversation(BRIDGE, CALLER, LEG)))
    await fake.wait_for("GET", f"/channels/{LEG}")
    app.on_event({"type": "ChannelDestroyed", "channel": _channel(LEG), "cause": 16})  # type: ignore[typeddict-item]
    await fake.wait_for("POST", f"/channels/{CALLER}/move")  # alone in the bridge: brought here
    assert ("DELETE", f"/bridges/{BRIDGE}") in fake.made
    assert ("DELETE", f"/channels/{LEG}") not in fake.made
    app.on_event(_moved_in())
    # the survey's question, asked by the survivor
    await fake.wait_until(
        lambda: any(p.startswith(f"/channels/{CALLER}/play/") for _m, p in fake.made)
    )
    app.on_event(_hung_up(CALLER))  # the caller does not answer it
    await asyncio.wait_for(adopting, 10)
    row, steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition, row.hangup_by) == ("survivor", "answered", "callee")
    assert row.talk_seconds == 42.0
    kinds = [k for _n, k, _o in steps]
    assert kinds.count("takeover") == 1
    assert ("branch-4", "dial", "answered") in steps
    assert steps.index(("branch-4", "dial", "answered")) > steps.index(
        ("takeover", "takeover", "adopted")
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_desks_that_were_ringing_are_dialled_again_without_the_announcement(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    fake, app, writer = await after_death((RINGING,))
    moved_in: AriEvent = {  # type: ignore[typeddict-item]
        "type": "StasisStart",
        "channel": _channel(CALLER),
        "args": ["takeover"],
        "asterisk_id": NODE,
    }
    app.on_event(moved_in)
    await fake.wait_until(lambda: len([m for m, p in fake.made if p == "/channels"]) == 2)
    dialled = [q["endpoint"] for m, p, q in fake.requests if (m, p) == ("POST", "/channels")]
    assert dialled == ["PJSIP/cchc-4a", "PJSIP/cchc-4b"]  # the same desks
    await fake.wait_for("POST", f"/channels/{CALLER}/ring")  # ringback at once
    assert not any("/play/" in p for _m, p in fake.made)  # the announcement is not said again
    app.on_event(_hung_up(CALLER))  # the caller gives up while they ring
    async with asyncio.timeout(10):
        await asyncio.gather(*app._background)
    row, steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition, row.hangup_by) == ("survivor", "abandoned", "caller")
    assert row.wait_seconds >= 42.0  # the dead controller's ringing counts
    assert steps[-2:] == [("takeover", "takeover", "resumed"), ("branch-4", "state", "ringing")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_adopted_caller_gone_as_the_desk_hangs_up_still_ends_its_record(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    fake, app, writer = await after_death()
    adopting = asyncio.create_task(app._adopt(Conversation(BRIDGE, CALLER, LEG)))
    await fake.wait_for("GET", f"/channels/{LEG}")
    fake.gone.add(CALLER)  # both hang up at once: the move finds no caller
    app.on_event({"type": "ChannelDestroyed", "channel": _channel(LEG), "cause": 16})  # type: ignore[typeddict-item]
    await asyncio.wait_for(adopting, 10)
    assert ("POST", f"/channels/{CALLER}/move") in fake.made
    row, _steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition, row.talk_seconds) == ("survivor", "answered", 42.0)
    assert app.arriving == {}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_adoption_whose_ari_look_ups_fail_is_watched_and_recorded_under_its_key(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    """Asterisk answers neither its entity id nor the caller's channel: the node comes from the
    store, the caller from the stored record, and the conversation is still watched."""
    fake, app, writer = await after_death()
    fake.failing |= {("GET", "/asterisk/info"), ("GET", f"/channels/{CALLER}")}
    app.node, app.setup_seconds = "", 0.6
    adopting = asyncio.create_task(app._adopt(Conversation(BRIDGE, CALLER, LEG)))
    await fake.wait_for("POST", "/applications/hotline-survivor/subscription")
    await fake.wait_for("GET", f"/channels/{LEG}")
    assert not adopting.done()
    assert fake.made.count(("GET", "/asterisk/info")) >= 2  # asked again before giving up
    app.on_event(_hung_up(CALLER))
    await asyncio.wait_for(adopting, 10)
    assert ("DELETE", f"/channels/{LEG}") in fake.made
    assert ("DELETE", f"/bridges/{BRIDGE}") in fake.made
    row, steps = await _row_and_steps(writer)  # one row: the same key, ast-1/<caller>
    assert (row.controller, row.disposition, row.hangup_by) == ("survivor", "answered", "caller")
    assert (row.caller_number, row.talk_seconds) == ("0912345678", 42.0)
    assert steps[-2:] == [("takeover", "takeover", "adopted"), ("branch-4", "dial", "answered")]
    assert (app.routes, app.calls) == ({}, {})


CHOSE = ("main-menu", "menu", "chosen")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_adoption_whose_store_is_away_is_watched_and_recorded(
    after_death: Callable[..., Awaitable[Adoption]], tmp_path: Path
) -> None:
    """The store cannot be read (its database away past the wait): the conversation is watched
    all the same and the call ends in a record (the writer spools what it cannot write)."""
    fake, app, writer = await after_death()
    app.engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/no-such-folder/calls.db")
    app.setup_seconds = 0.6
    adopting = asyncio.create_task(app._adopt(Conversation(BRIDGE, CALLER, LEG)))
    await fake.wait_for("GET", f"/channels/{LEG}")
    app.on_event(_hung_up(CALLER))
    await asyncio.wait_for(adopting, 10)
    assert ("DELETE", f"/channels/{LEG}") in fake.made  # the desk is not left talking alone
    assert ("DELETE", f"/bridges/{BRIDGE}") in fake.made
    row, steps = await _row_and_steps(writer)
    assert row.controller == "survivor"
    assert row.disposition != "in_progress"
    assert row.hangup_by == "caller"
    # the dead controller's steps are all kept (the survivor, not knowing them, numbers its own
    # from 0 and the writer keeps the first of each number: its steps are the ones lost)
    assert steps[:3] == [("start", "hours", "open"), ("greeting", "prompt", "played"), CHOSE]
    assert steps[-1] == ("branch-4", "state", "talking")
    await app.engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_moved_caller_whose_call_the_store_cannot_give_goes_to_the_fallback(
    after_death: Callable[..., Awaitable[Adoption]], tmp_path: Path
) -> None:
    fake, app, writer = await after_death((RINGING,))
    app.engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/no-such-folder/calls.db")
    app.resume_seconds = 0.2
    app.on_event(_moved_in())
    await fake.wait_for("POST", f"/channels/{CALLER}/continue")
    app.on_event({"type": "StasisEnd", "channel": _channel(CALLER)})  # type: ignore[typeddict-item]
    async with asyncio.timeout(10):
        await asyncio.gather(*app._background)
    went = next(q for m, p, q in fake.requests if p == f"/channels/{CALLER}/continue")
    assert went["context"] == "hotline-fallback"
    assert not any(p == "/channels" for _m, p in fake.made)  # nothing dialled blind
    row, _steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition) == ("survivor", "dialplan")  # to the operators
    assert (app.routes, app.calls) == ({}, {})
    await app.engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_caller_moved_in_after_the_wait_is_not_resumed_twice(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    """The desk hung up, the caller's move reached the survivor after its wait: the call had
    been ended, so the late caller is hung up, not resumed (here, then by a controller that
    never saw it: the store has the call's end)."""
    fake, app, writer = await after_death()
    app.arrival_seconds = 0.2
    adopting = asyncio.create_task(app._adopt(Conversation(BRIDGE, CALLER, LEG)))
    await fake.wait_for("GET", f"/channels/{LEG}")
    app.on_event({"type": "ChannelDestroyed", "channel": _channel(LEG), "cause": 16})  # type: ignore[typeddict-item]
    await fake.wait_for("POST", f"/channels/{CALLER}/move")
    await asyncio.wait_for(adopting, 10)  # no StasisStart within the wait: ended here
    late = _moved_in()
    app.on_event(late)
    await fake.wait_for("DELETE", f"/channels/{CALLER}")
    async with asyncio.timeout(10):
        await asyncio.gather(*app._background)
    assert not any("/play/" in p or p == "/channels" for _m, p in fake.made)  # no survey, no dial
    row, steps = await _row_and_steps(writer)
    assert [k for _n, k, _o in steps].count("takeover") == 1
    assert (row.disposition, row.hangup_by) == ("answered", "callee")

    fake.gone.discard(CALLER)
    fresh = ClusterApp(
        AriClient(str(app.client.base_url), "ivr", "pw", "hotline-other"),
        app.routing,
        writer,
        clock=app.clock,
        engine=writer.engine,
        controller="other",
    )
    fresh.on_event(late)  # a controller with no memory of it: the store says it ended
    await fake.wait_until(lambda: fake.made.count(("DELETE", f"/channels/{CALLER}")) == 2)
    async with asyncio.timeout(10):
        await asyncio.gather(*fresh._background)
    assert fresh.calls == {}
    _row, again = await _row_and_steps(writer)
    assert again == steps
    await fresh.client.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_calls_taken_over_are_the_survivor_s_before_the_dead_lease_ends(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    """The survivor makes the moved caller's row its own before the dead controller's lease is
    ended, so a sweep right after the takeover leaves it open for the resumed call (a real run
    had it closed as `interrupted` under the dead controller, the answered call lost); a caller
    moved that never arrives (it hung up during the move) is closed after the arrival wait."""
    fake, app, writer = await after_death((RINGING,))
    fake.apps["hotline-dead"] = [CALLER]
    app.arrival_seconds = 0.2
    await app._peer_died("dead")
    assert ("POST", f"/channels/{CALLER}/move") in fake.made
    await release(writer.engine, Owner("dead"), dt.datetime.now(dt.UTC))
    assert await sweep(writer.engine, dt.datetime.now(dt.UTC)) == 0  # nothing of the dead left
    row, _steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition) == ("survivor", "in_progress")
    async with asyncio.timeout(10):  # no StasisStart: the caller never arrived
        await asyncio.gather(*app._background)
    row, _steps = await _row_and_steps(writer)
    assert (row.controller, row.disposition) == ("survivor", "interrupted")


IN_TURN_RINGING = Step("branch-9", "state", "ringing", detail="PJSIP/cchc-9a", at=T0)
IN_TURN_NEXT = Step(
    "branch-9", "state", "ringing", detail="PJSIP/cchc-9b", at=T0 + dt.timedelta(seconds=15)
)


@pytest.mark.parametrize(
    ("ringing", "dialled"),
    [
        ((IN_TURN_RINGING,), ["PJSIP/cchc-9b"]),  # the first desk rang: the next one
        ((IN_TURN_RINGING, IN_TURN_NEXT), ["PJSIP/cchc-9b"]),  # the last: rung again
    ],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_desks_rung_in_turn_go_on_from_the_next_desk(
    after_death: Callable[..., Awaitable[Adoption]],
    ringing: tuple[Step, ...],
    dialled: list[str],
) -> None:
    chose_9 = Step("main-menu", "menu", "chosen", "9")
    fake, app, writer = await after_death((chose_9, *ringing))
    app.on_event(_moved_in())
    await fake.wait_for("POST", f"/channels/{CALLER}/ring")
    await fake.wait_until(lambda: ("POST", "/channels") in fake.made)
    app.on_event(_hung_up(CALLER))
    async with asyncio.timeout(10):
        await asyncio.gather(*app._background)
    rung = [q["endpoint"] for m, p, q in fake.requests if (m, p) == ("POST", "/channels")]
    assert rung == dialled
    row, steps = await _row_and_steps(writer)
    assert row.wait_seconds >= 42.0  # from the first desk's ringing, not the last one's
    assert steps[-1] == ("branch-9", "state", "ringing")


@pytest.mark.parametrize(
    ("channel", "app_data", "dialled"),
    [
        ("1764043200.5-leg2", "", True),  # still ringing: not in Stasis, known by its id
        ("1764043200.9", "hotline-a,dialed,1764043200.5", True),  # answered: its argument
        ("1764043200.5", "hotline-a", False),  # a caller
        ("1764043200.5", "hotline-a,takeover", False),
    ],
)
def test_a_dialled_leg_is_known_by_its_argument_or_its_id(
    channel: str, app_data: str, dialled: bool
) -> None:
    assert _dialled(channel, app_data) is dialled


class _Bridges:
    """The one request _bridged_elsewhere makes: GET /bridges."""

    def __init__(self, bridges: object) -> None:
        self.bridges = bridges

    async def request(self, method: str, path: str) -> object:
        assert (method, path) == ("GET", "/bridges")
        return self.bridges


async def test_a_restarted_controller_knows_a_conversation_a_peer_adopted() -> None:
    """Its previous life's caller and desk, talking in a bridge a survivor adopted, are left
    alone (the check looked for two members in a set of one, and was never true)."""
    app = ClusterApp.__new__(ClusterApp)  # only the ARI client is used by this check
    app.client = _Bridges(  # type: ignore[assignment]
        [{"id": "br-1", "channels": ["c1", "c1-leg2"]}, {"id": "br-2", "channels": ["c7"]}]
    )
    assert await app._bridged_elsewhere("c1")
    assert await app._bridged_elsewhere("c1-leg2")
    assert not await app._bridged_elsewhere("c7")  # alone in its bridge: not a conversation
    assert not await app._bridged_elsewhere("c9")
    app.client = _Bridges(None)  # type: ignore[assignment]
    assert not await app._bridged_elsewhere("c1")


class _DeadApp:
    """What take_over asks of ARI about a dead peer's app, and what it then does."""

    app = "hotline-s"

    def __init__(self, channel_ids: list[str]) -> None:
        self.channel_ids = channel_ids
        self.done: list[tuple[str, str]] = []

    async def application(self, name: str) -> Application:
        return Application(name, tuple(self.channel_ids))

    async def request(self, method: str, path: str, body: object = None) -> object:
        self.done.append((method, path))
        return [] if path == "/bridges" else None

    async def channel(self, channel_id: str) -> Channel:
        return Channel.parse({"id": channel_id, "name": f"PJSIP/x-{channel_id}"})

    async def hangup(self, channel_id: str) -> None:
        self.done.append(("DELETE", f"/channels/{channel_id}"))


async def test_a_dead_peer_s_followed_calls_are_not_taken_from_their_live_owner() -> None:
    """A controller that lost a claim follows the call (a subscription), so its app lists it:
    when it dies, the survivor moves only the calls it really had, never one a live controller
    holds (its own, or another's in the store) nor that call's desk leg."""
    ari = _DeadApp(["dead-call", "mine", "mine-leg2", "third-call"])
    taken = await take_over(
        ari,  # type: ignore[arg-type]
        "hotline-l",
        Playbacks(),
        others={"mine", "third-call"},
    )
    assert taken.moved == 1
    moved = [path for method, path in ari.done if path.endswith("/move")]
    assert moved == ["/channels/dead-call/move"]
    assert not any("mine" in path or "third" in path for _, path in ari.done)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_peer_s_call_this_app_follows_is_never_handed_back_from_here(
    after_death: Callable[..., Awaitable[Adoption]],
) -> None:
    """ARI lets any app continue any channel in Stasis, and a follower's app lists the calls it
    follows: its watchdog handed a live peer's caller back to the dialplan in a real run. A
    followed call, or one the store gives a live peer, is left alone; an unowned one is not."""
    fake, app, _writer = await after_death()  # the store: CALLER is the controller dead's
    await app._offered("peer-call")  # the claim lost: followed
    assert ("POST", "/applications/hotline-survivor/subscription") in fake.made
    for channel in ("peer-call", CALLER):
        await app._hand_back(channel, "watchdog")
    await app._hand_back("nobody-s", "watchdog")
    continued = [p for m, p in fake.made if p.endswith("/continue")]
    assert continued == ["/channels/nobody-s/continue"]
    app.on_event({"type": "ChannelDestroyed", "channel": _channel("peer-call"), "cause": 16})  # type: ignore[typeddict-item]
    assert not app.following
