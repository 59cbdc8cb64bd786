"""Property tests of FastAGI's edges: whatever a peer sends, only the protocol's own errors come
out, every read ends, and nothing a call's data holds can add a command (issue 14).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.agi.protocol import (
    MAX_LINE,
    AgiCommandError,
    AgiProtocolError,
    command_line,
    parse_reply,
    read_environment,
)
from ivr.agi.server import AgiServer
from ivr.agi.session import AgiCallSession
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.session import CallerHangup, CallInfo, SessionError
from ivr.sim.agi import AgiSim
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press

from .conftest import vn_time

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WAIT = 20.0
T = TypeVar("T")

ENV_LINES = st.sampled_from(
    [
        "agi_network: yes",
        "agi_network_script: hotline",
        "agi_uniqueid: 1764043200.5",
        "agi_callerid: 0912345678",
        "agi_calleridname: Nguyễn Văn A",
        "agi_uniqueid:",
        "agi_x",
        "",
        ":",
        "HANGUP",
        "200 result=1",
    ]
)
LINES = st.lists(st.one_of(ENV_LINES, st.text(max_size=40)), max_size=30)
REPLY_LINES = st.one_of(
    st.sampled_from(
        [
            "200 result=0",
            "200 result=-1",
            "200 result=1 (ANSWER)",
            "200 result=53 endpos=8000",
            "HANGUP",
            "511 Command Not Permitted on a dead channel",
            "520-Invalid command syntax.  Proper usage follows:",
            "520 End of proper usage.",
            "510 Invalid or unknown command",
            "200 result=99999999999999999999999 (x) endpos=99999999999999999999",
        ]
    ),
    st.text(max_size=40),
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """One example's coroutine, on a loop of its own, bounded so a hang fails the test."""
    return asyncio.run(asyncio.wait_for(coro, WAIT))


def _reader(data: bytes, *, eof: bool) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=MAX_LINE)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def _environment(data: bytes, *, eof: bool) -> dict[str, str] | None:
    try:
        return await read_environment(_reader(data, eof=eof), timeout=0.05)
    except AgiProtocolError:
        return None


def _check_env(env: dict[str, str] | None) -> None:
    if env is not None:
        assert env
        assert all(k.startswith("agi_") and "\n" not in k + v for k, v in env.items())


@FUZZ
@given(data=st.binary(max_size=3 * MAX_LINE), eof=st.booleans())
def test_random_bytes_into_the_environment_reader(data: bytes, eof: bool) -> None:
    _check_env(run(_environment(data, eof=eof)))


@FUZZ
@given(lines=LINES, end=st.sampled_from(["\n", "\r\n"]), eof=st.booleans())
def test_random_lines_into_the_environment_reader(lines: list[str], end: str, eof: bool) -> None:
    data = "".join(line + end for line in lines).encode()
    _check_env(run(_environment(data, eof=eof)))


@FUZZ
@given(
    line=st.one_of(
        REPLY_LINES,
        st.text(),
        st.from_regex(r"\A\d{3} result=-?\d{1,6000}( \(\w*\))?( endpos=\d{1,6000})?\Z"),
    )
)
def test_random_text_into_the_reply_parser(line: str) -> None:
    try:
        reply = parse_reply(line)
    except AgiProtocolError:
        return
    assert 100 <= reply.code <= 999
    assert reply.endpos is None or reply.endpos >= 0


class _Sink:
    """The session's writer: keeps what was sent."""

    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None


async def _one_command(data: bytes, *, eof: bool) -> bytes:
    sink = _Sink()
    session = AgiCallSession(
        _reader(data, eof=eof),
        sink,  # type: ignore[arg-type]
        CallInfo("1764043200.9", "0912345678"),
        timer_scale=1e-4,  # a prompt's own bound (minutes) becomes milliseconds
        reply_timeout=0.05,
    )
    with contextlib.suppress(AgiProtocolError, CallerHangup, SessionError):
        await session.answer()
        await session.play(["main-menu"])
        await session.read_digits(4, 1.0, 1.0)
    return sink.sent


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=2 * MAX_LINE),
        st.lists(REPLY_LINES, max_size=12).map(lambda ls: "".join(x + "\n" for x in ls).encode()),
    ),
    eof=st.booleans(),
)
def test_random_replies_into_a_session(data: bytes, eof: bool) -> None:
    sent = run(_one_command(data, eof=eof))
    for line in sent.decode().splitlines():
        assert line.startswith(("ANSWER", "SET VARIABLE ", "STREAM FILE ", "WAIT FOR DIGIT ")), line


def asterisk_args(line: str) -> list[str]:
    """Split a command line as res_agi does: blanks outside quotes, backslash escapes."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if escaped:
            cur = (cur or []) + [ch]
            escaped = False
        elif ch == "\\":
            escaped = True
            cur = cur or []
        elif ch == '"':
            quoted = not quoted
            cur = cur or []
        elif ch in " \t" and not quoted:
            if cur is not None:
                args.append("".join(cur))
            cur = None
        else:
            cur = (cur or []) + [ch]
    if cur is not None:
        args.append("".join(cur))
    return args


@FUZZ
@given(args=st.lists(st.text(max_size=30), max_size=6))
def test_a_built_command_is_one_line_that_asterisk_splits_back_into_its_arguments(
    args: list[str],
) -> None:
    controls = [a for a in args if any(ord(c) < 0x20 or ord(c) == 0x7F for c in a)]
    try:
        line = command_line("SET VARIABLE", *args)
    except AgiCommandError:
        assert controls
        return
    assert not controls
    assert "\n" not in line
    assert "\r" not in line
    assert asterisk_args(line) == ["SET", "VARIABLE", *args]


async def test_garbage_peers_alongside_a_good_call(routing: Routing) -> None:
    """Random bytes and random environment blocks from many peers; a real call still completes."""
    rng = random.Random(14)
    observer = MemoryObserver()
    server = AgiServer(
        lambda: routing,
        observer,
        clock=lambda: vn_time("2026-11-25 09:00"),
        timer_scale=0.1,
        env_timeout=1.0,
        reply_timeout=1.0,
    )
    port = await server.start(port=0)
    sim = AgiSim(port, speed=10, clerks=Clerks(default=ClerkScript(ClerkKind.ANSWER, 2, 5)))
    blobs = [rng.randbytes(rng.randrange(1, 20000)) for _ in range(10)]
    for _ in range(10):
        keys = rng.choices(["agi_network", "agi_uniqueid", "agi_network_script", "x"], k=5)
        lines = [f"{k}: {rng.choice(['hotline', '', ' 1 2', 'yes'])}" for k in keys]
        blobs.append(
            ("\n".join(lines) + "\n\n" + rng.choice(["", "200 result=", "HANGUP\n"])).encode()
        )
    try:
        good = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number="0944444444"))
        peers = [await asyncio.open_connection("127.0.0.1", port) for _ in blobs]
        for (_, w), blob in zip(peers, blobs, strict=True):
            w.write(blob)
        for r, w in peers:
            await asyncio.wait_for(r.read(), WAIT)  # every hostile peer is cut off
            w.close()
        await asyncio.wait_for(good.done, 60)
        await asyncio.wait_for(server.idle(), WAIT)
    finally:
        await server.stop()
    [good_record] = [r for r in observer.done if r.caller_number == "0944444444"]
    assert good_record.disposition is Disposition.ANSWERED
    hostile_calls = len(observer.done) - 1  # peers whose block happened to start a call
    assert server.rejected + hostile_calls == len(blobs)
