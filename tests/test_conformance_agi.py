"""Keep the simulator's FastAGI side honest: replay the transcripts recorded from Asterisk 22.10.1.

For each transcript in shared/agi/traces, a FastAGI server here plays the recording server's
part: it reads the environment block, sends the same commands one at a time, and compares what
the simulator (playing Asterisk, with a scripted caller and desk) answers with what Asterisk
answered. Compared exactly: the environment's keys in order and its fixed values, every reply's
code, result and parenthesised data, and how many unsolicited ``HANGUP`` lines come (that line
may come before or after the next command's reply, so its place is not compared). Only what
depends on the clock is compared by kind: ``endpos`` zero or not (exactly when a prompt played
to its end), and RECORD FILE's ``result`` on a timeout (what was left of an internal wait).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from ivr.sim.agi import AgiSim
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Hangup, Press

from .conftest import SHARED

TRACES = SHARED / "agi" / "traces"

pytestmark = pytest.mark.skipif(
    not TRACES.is_dir(),
    reason=f"{TRACES} is absent: the FastAGI transcripts of Asterisk 22 are needed "
    "(place the project's shared/ folder beside the checkout)",
)

# lengths of the recording machine's prompts, in seconds (endpos of a prompt played to its end)
PROMPTS = {"sound:hello-world": 1.6, "sound:beep": 3404 / 8000, "sound:vm-intro": 5.6}
FIXED_ENV = {"agi_network", "agi_network_script", "agi_type", "agi_version", "agi_enhanced"}


@dataclass(frozen=True)
class Session:
    caller: CallerScript
    clerks: Clerks = field(default_factory=Clerks)


SESSIONS = {
    # 5 during hello-world; 1, 2 during GET DATA then its 3 s timeout; 7 during WAIT FOR DIGIT
    "agi-full-session": Session(
        CallerScript(
            (
                Press("5", on="prompt:hello-world", after=1.0),
                Press("12", on="prompt:beep", after=0.5),
                Press("7", after=3.8),
            )
        ),
        Clerks({"PJSIP/desk1": ClerkScript(ClerkKind.NO_ANSWER)}),
    ),
    "agi-caller-hangs-up": Session(CallerScript((Hangup(on="prompt:vm-intro", after=1.5),))),
    "agi-dial-answered": Session(
        CallerScript(),
        Clerks({"PJSIP/desk1": ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=4)}),
    ),
}


def transcript(name: str) -> list[dict[str, Any]]:
    lines = (TRACES / f"{name}.jsonl").read_text().splitlines()
    return [o for o in map(json.loads, lines) if o["kind"] == "line"]


def _normal(line: str, command: str) -> str:
    """A reply with what depends on the clock reduced to its kind."""
    line = re.sub(r"endpos=(\d+)", lambda m: "endpos=0" if m[1] == "0" else "endpos=N", line)
    if command.startswith("RECORD FILE"):
        line = re.sub(r"result=\d+ \(timeout\)", "result=N (timeout)", line)
    return line


def _env(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    pairs = [line.split(": ", 1) for line in lines]
    return [k for k, _ in pairs], {k: v for k, v in pairs if k in FIXED_ENV}


@dataclass
class Exchange:
    """What went each way: the environment block, and each command with its replies."""

    env: list[str] = field(default_factory=list)
    replies: list[tuple[str, list[str]]] = field(default_factory=list)
    hangups: int = 0


def expected(lines: list[dict[str, Any]]) -> tuple[Exchange, list[str]]:
    out, commands = Exchange(), []
    for o in lines:
        text = o["data"].removesuffix("\n")
        if o["dir"] == "S>A":
            commands.append(text)
            out.replies.append((text, []))
        elif not out.replies:
            if text:
                out.env.append(text)
        elif text == "HANGUP":
            out.hangups += 1
        else:
            command = out.replies[-1][0]
            out.replies[-1][1].append(_normal(text, command))
    return out, commands


async def play(commands: list[str], session: Session, hangups: int) -> Exchange:
    """Be the FastAGI server for one call from the simulator: send ``commands``, note replies,
    then wait for the ``hangups`` unsolicited HANGUP lines Asterisk sent in all."""
    got = Exchange()
    finished = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := (await reader.readline()).decode().removesuffix("\n")) != "":
            got.env.append(line)
        for command in commands:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            while True:  # one reply; the unsolicited HANGUP may come before it
                reply = (await reader.readline()).decode().removesuffix("\n")
                if reply != "HANGUP":
                    break
                got.hangups += 1
            got.replies.append((command, [_normal(reply, command)]))
        while got.hangups < hangups:
            line = (await reader.readline()).decode().removesuffix("\n")
            if line != "HANGUP":
                break
            got.hangups += 1
        finished.set_result(None)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sim = AgiSim(port, speed=4, clerks=session.clerks, prompt_seconds=lambda m: PROMPTS[m])
    call = sim.call(session.caller)
    try:
        await asyncio.wait_for(finished, 30)
        await asyncio.wait_for(call.done, 10)
    finally:
        server.close()
        await server.wait_closed()
    return got


# Differences left on purpose, each with why: (session, command) → (Asterisk's reply, ours).
RECORD = "RECORD FILE /var/spool/asterisk/tmp/x wav # 5000 0 BEEP s=2"
# None left: the second of silence Asterisk keeps after a recording ended by s= (endpos 8160
# for a caller who never spoke) is now played by the simulator and discounted by the FastAGI
# session (ivr/agi/session.py), so a 2 s message is 2 s on both paths.
KNOWN: dict[tuple[str, str], tuple[str, str]] = {}


def _with_known(name: str, replies: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    out = []
    for command, lines in replies:
        known = KNOWN.get((name, command))
        out.append((command, [known[1] if known and line == known[0] else line for line in lines]))
    return out


@pytest.mark.parametrize("name", sorted(SESSIONS))
async def test_the_simulator_answers_fastagi_like_asterisk(name: str) -> None:
    want, commands = expected(transcript(name))
    got = await play(commands, SESSIONS[name], want.hangups)
    assert _env(got.env) == _env(want.env)
    assert got.replies == _with_known(name, want.replies)
    assert got.hangups == want.hangups


async def test_a_recording_ended_by_silence_keeps_a_second_of_it() -> None:
    want, commands = expected(transcript("agi-full-session"))
    got = await play(commands, SESSIONS["agi-full-session"], want.hangups)
    assert dict(got.replies)[RECORD] == dict(want.replies)[RECORD]


def test_every_transcript_is_replayed() -> None:
    assert {p.stem for p in TRACES.glob("*.jsonl")} == set(SESSIONS)
