"""FastAGI against hostile or broken peers (issue 14, rows 6, 14, 15 and 16).

The peers here are small fake Asterisks speaking FastAGI over loopback; good calls run through the
simulator's AGI side alongside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from ivr.agi.server import AgiServer
from ivr.agi.session import AgiCallSession
from ivr.flow.record import CallRecord, Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.session import CallInfo, DialRequest, DialStatus
from ivr.sim.agi import AgiCall, AgiSim
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press, Speak

from .conftest import ROOT, vn_time

# the FastAGI server `ivr agi` runs: on both loops its event_loop setting allows
pytestmark = pytest.mark.event_loops

DAY = vn_time("2026-11-25 09:00")
WAIT = 20.0  # generous bound for things that happen at once; never a timing assertion

Answer = Callable[[str], list[str] | None]  # a command line -> reply lines; None: vanish


def env_block(**overrides: str | None) -> bytes:
    env: dict[str, str | None] = {
        "agi_network": "yes",
        "agi_network_script": "hotline",
        "agi_channel": "PJSIP/caller-0001",
        "agi_uniqueid": "1764043200.101",
        "agi_callerid": "0912345678",
        "agi_calleridname": "Nguyen Van A",
        "agi_extension": "18001022",
    }
    env.update(overrides)
    return "".join(f"{k}: {v}\n" for k, v in env.items() if v is not None).encode() + b"\n"


def polite(line: str) -> list[str] | None:
    """Answer like Asterisk for the start of a call; vanish at the first prompt."""
    if line.startswith("STREAM FILE"):
        return None
    return ["200 result=0" if line == "ANSWER" else "200 result=1"]


async def fake_pbx(port: int, env: bytes, answer: Answer = polite) -> list[str]:
    """Connect as Asterisk would, answer each command; the commands received, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    got: list[str] = []
    try:
        while raw := await reader.readline():
            got.append(raw.decode().rstrip("\n"))
            out = answer(got[-1])
            if out is None:
                break
            writer.write("".join(o + "\n" for o in out).encode())
            await writer.drain()
    finally:
        writer.close()
    return got


def new_server(routing: Routing, observer: MemoryObserver, **kw: Any) -> AgiServer:
    return AgiServer(lambda: routing, observer, clock=lambda: DAY, **kw)


def _events(logs: list[dict[str, Any]], level: str) -> list[str]:
    return [str(e["event"]) for e in logs if e["log_level"] == level]


# --- row 16: the peer vanishes mid-command ----------------------------------------------------


async def test_a_peer_vanishing_mid_command_is_a_hang_up_not_an_error(routing: Routing) -> None:
    observer = MemoryObserver()
    server = new_server(routing, observer)
    port = await server.start(port=0)
    try:
        with capture_logs() as logs:
            sent = await asyncio.wait_for(fake_pbx(port, env_block()), WAIT)
            await asyncio.wait_for(server.idle(), WAIT)
    finally:
        await server.stop()
    assert sent[0] == "ANSWER"
    assert sent[-1].startswith("STREAM FILE")
    [record] = observer.done
    assert record.error is None
    assert record.disposition is Disposition.ABANDONED
    assert record.hangup_by == "caller"
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] in {"error", "critical"}]
    assert len(_events(logs, "warning")) == 1  # one line says the peer went away


# --- row 14: nothing in a command can start a second command ----------------------------------


async def _session_with_peer(
    answer: Answer,
) -> tuple[AgiCallSession, list[str], asyncio.Task[None]]:
    """A session whose other end is a fake Asterisk recording each line it receives."""
    got: list[str] = []
    ready: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ready.set_result((r, w))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    s_reader, s_writer = await asyncio.open_connection("127.0.0.1", port)
    p_reader, p_writer = await asyncio.wait_for(ready, WAIT)
    server.close()

    async def peer() -> None:
        while raw := await p_reader.readline():
            got.append(raw.decode().rstrip("\n"))
            for out in answer(got[-1]) or []:
                p_writer.write(out.encode() + b"\n")
            await p_writer.drain()
        p_writer.close()

    session = AgiCallSession(s_reader, s_writer, CallInfo("1764043200.7", "0912345678"))
    return session, got, asyncio.create_task(peer())


def _nobody_answers(line: str) -> list[str]:
    if line == "GET VARIABLE DIALSTATUS":
        return ["200 result=1 (NOANSWER)"]
    return ["200 result=1"]


async def test_a_newline_in_call_data_never_starts_a_second_agi_command() -> None:
    session, got, peer = await _session_with_peer(_nobody_answers)
    evil = 'CCHC 1 Phòng "A"\nEXEC System "id"\r'
    result = await session.dial(DialRequest(["PJSIP/cchc-1"], 20, evil, "0912345678"))
    assert result.status is DialStatus.NO_ANSWER
    before = len(got)
    with contextlib.suppress(ValueError):  # refused outright is fine; two commands are not
        await session.set_variable("IVR_NOTE", 'x\nEXEC System "id"')
    session.writer.close()
    await asyncio.wait_for(peer, WAIT)
    assert not [line for line in got if line.startswith("EXEC System")]
    verbs = ("SET VARIABLE ", "EXEC Dial ", "GET VARIABLE ")
    assert all(line.startswith(verbs) for line in got), got
    assert [line for line in got if line.startswith("SET VARIABLE CALLERID(name)")]
    assert len(got) <= before + 1  # the variable went as one line or not at all
    assert all("\r" not in line for line in got)


# --- row 15: agi_uniqueid missing or with spaces -----------------------------------------------


async def test_missing_uniqueids_never_merge_two_calls(routing: Routing) -> None:
    observer = MemoryObserver()
    server = new_server(routing, observer)
    port = await server.start(port=0)
    try:
        with capture_logs() as logs:
            peers = [fake_pbx(port, env_block(agi_uniqueid=None)) for _ in range(2)]
            peers.append(fake_pbx(port, env_block(agi_uniqueid="")))
            await asyncio.wait_for(asyncio.gather(*peers), WAIT)
            await asyncio.wait_for(server.idle(), WAIT)
    finally:
        await server.stop()
    ids = [r.channel_id for r in observer.done]
    assert len(set(ids)) == len(ids) == 3
    assert all(ids)
    assert sum("uniqueid" in e for e in _events(logs, "warning")) == 3


class _IdSim(AgiSim):
    """The simulator, but the test chooses the channel's uniqueid."""

    def call_as(self, script: CallerScript, uniqueid: str) -> AgiCall:
        call = AgiCall(script, uniqueid)
        task = asyncio.create_task(self._call(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call


def _voicemail(record: CallRecord) -> str:
    assert record.voicemail is not None, record
    return record.voicemail.name


async def test_a_uniqueid_with_spaces_never_reaches_record_file(routing: Routing) -> None:
    observer = MemoryObserver()
    server = new_server(routing, observer, timer_scale=0.1)
    port = await server.start(port=0)
    sim = _IdSim(port, speed=10, clerks=Clerks(default=ClerkScript(ClerkKind.BUSY, 1)))
    leave_message = (Press("1", on="prompt:main-menu"), Speak(2), Press("#"))
    try:
        calls = [
            sim.call_as(CallerScript(leave_message, number=f"091100000{i}"), "1764 0001.5 x")
            for i in range(2)
        ]
        await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 60)
        await asyncio.wait_for(server.idle(), WAIT)
    finally:
        await server.stop()
    assert len(observer.done) == 2
    assert {r.disposition for r in observer.done} == {Disposition.VOICEMAIL}
    names = [_voicemail(r) for r in observer.done]
    assert len(set(names)) == 2
    assert not [n for n in names if any(c.isspace() for c in n)]
    assert len({r.channel_id for r in observer.done}) == 2


# --- row 6: peers that never answer; the connection cap; accept errors -------------------------


def _silent(line: str) -> list[str]:
    return []  # reads every command, answers none


async def test_a_peer_that_never_answers_is_cut_off_and_a_good_call_completes(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    server = new_server(routing, observer, timer_scale=0.1, reply_timeout=0.5)
    port = await server.start(port=0)
    slow_clerk = ClerkScript(ClerkKind.ANSWER, ring_seconds=8, talk_seconds=30)
    sim = AgiSim(
        port,
        speed=10,
        clerks=Clerks({"PJSIP/cchc-6": ClerkScript(ClerkKind.NO_ANSWER)}, default=slow_clerk),
    )
    try:
        mute = [
            fake_pbx(port, env_block(agi_uniqueid=f"1764043200.{i}"), _silent) for i in range(3)
        ]
        # legitimately long commands (ringing, talking, recording) outlast the reply timeout
        talk = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number="0911111111"))
        message = sim.call(
            CallerScript((Press("6", on="prompt:main-menu"), Speak(8)), number="0922222222")
        )
        sent = await asyncio.wait_for(asyncio.gather(*mute), WAIT)
        await asyncio.wait_for(asyncio.gather(talk.done, message.done), 60)
        await asyncio.wait_for(server.idle(), WAIT)
    finally:
        await server.stop()
    assert all(s[0] == "ANSWER" for s in sent)
    got = {r.caller_number: r for r in observer.done}
    assert got["0911111111"].disposition is Disposition.ANSWERED
    assert got["0911111111"].talk_seconds >= 25
    assert got["0922222222"].disposition is Disposition.VOICEMAIL
    assert got["0922222222"].voicemail is not None
    assert got["0922222222"].voicemail.duration_seconds >= 7


async def test_connections_over_the_cap_are_closed_at_once(routing: Routing) -> None:
    observer = MemoryObserver()
    server = new_server(routing, observer, timer_scale=0.1, max_connections=3, env_timeout=60)
    port = await server.start(port=0)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        with capture_logs() as logs:
            extra = [await asyncio.open_connection("127.0.0.1", port) for _ in range(30)]
            for r, w in extra:
                assert await asyncio.wait_for(r.read(), WAIT) == b""
                w.close()
        for _, w in idle:
            w.close()
        await asyncio.wait_for(server.idle(), WAIT)  # their places are free again
        sim = AgiSim(port, speed=10, clerks=Clerks(default=ClerkScript(ClerkKind.ANSWER, 2, 5)))
        good = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number="0933333333"))
        await asyncio.wait_for(good.done, 60)
        await asyncio.wait_for(server.idle(), WAIT)
    finally:
        await server.stop()
    assert [r.disposition for r in observer.done] == [Disposition.ANSWERED]
    assert 1 <= len(_events(logs, "warning")) <= 2  # rate-limited, not one line per peer


CHILD = r"""
import asyncio, sys
from pathlib import Path
from ivr import logs
from ivr.agi.server import AgiServer
from ivr.flow.record import MemoryObserver
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing

async def main() -> None:
    logs.configure(json=True)
    routing = load_routing(Path("routing/hotline.yaml"), list(load_manifest(Path("prompts/manifest.yaml"))))
    server = AgiServer(lambda: routing, MemoryObserver(), max_connections=1000, env_timeout=60)
    port = await server.start(port=0)
    print(port, flush=True)
    await asyncio.to_thread(int)  # the thread pool exists before the descriptors run out
    hogs = []
    try:
        while True:
            hogs.append(open("/dev/null"))
    except OSError:
        pass
    print("hogged", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the peers have connected
    await asyncio.sleep(1.5)  # the exposure: every descriptor in use while peers wait
    for h in hogs:
        h.close()
    print("released", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await server.stop()

asyncio.run(main())
"""


async def test_running_out_of_descriptors_never_floods_the_log() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stderr is not None
    stderr = asyncio.create_task(child.stderr.read())  # read all along: a full pipe would block
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), WAIT))
        assert await asyncio.wait_for(child.stdout.readline(), WAIT) == b"hogged\n"
        peers = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        child.stdin.write(b"go\n")
        assert await asyncio.wait_for(child.stdout.readline(), WAIT) == b"released\n"
        reader, writer = peers[0]
        writer.write(env_block())
        assert await asyncio.wait_for(reader.readline(), WAIT) == b"ANSWER\n"  # served again
        child.stdin.write(b"done\n")
        for _, w in peers:
            w.close()
        err = await asyncio.wait_for(stderr, WAIT)
        assert await asyncio.wait_for(child.wait(), WAIT) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    lines = err.decode(errors="replace").splitlines()
    assert 1 <= len([x for x in lines if "accept" in x]) <= 2, lines[:20]
    assert len(lines) < 20, lines[:20]
