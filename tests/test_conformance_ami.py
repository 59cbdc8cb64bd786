"""Keep the simulator's AMI side honest: replay the AMI traces recorded from Asterisk 22.10.1.

A raw client sends the trace's actions to ivr.sim.ami (phones set up as the recording's) and
reads each message back: the same headers in the same order with the same values, byte for byte
in the framing, except what names a moment or a socket (times, session ids, addresses). Where
the trace shows a phone coming or going (the SIPp OPTIONS responder started or stopped), the
test flips the simulated phone at that point. The endpoint's and transport's settings dumps
(144 and 33 headers the project never reads) are compared on the headers the simulator gives.

The two call traces (dial-answered-bridge, stasis-app-missing) hold the AMI view of an ARI call;
the simulator does not make the dialplan's AMI events, only the Hangup that ivr.ami.watch reads:
that message is compared with each Hangup of those traces.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ivr.sim.ami import AmiSim, SimPhone

from .conftest import SHARED

TRACES = SHARED / "ami" / "traces"

pytestmark = pytest.mark.skipif(
    not TRACES.is_dir(),
    reason=f"{TRACES} is absent: the AMI traces of Asterisk 22 are needed "
    "(place the project's shared/ folder beside the checkout)",
)

VOLATILE = {
    "EventTV", "SessionTV", "SessionID", "LocalAddress", "RemoteAddress", "Uptime",
    "LastReload", "ID", "Timestamp",
}  # fmt: skip
CUT_SHORT = {"EndpointDetail", "TransportDetail"}
SECRET = "secret"


def trace(name: str) -> list[dict[str, Any]]:
    lines = (TRACES / f"{name}.jsonl").read_text().splitlines()
    return [o for o in map(json.loads, lines) if o["kind"] != "meta"]


def recording_phones() -> dict[str, SimPhone]:
    """The recording machine's endpoints (the trace README's set-up)."""
    desks = {
        f"desk{n}": SimPhone(f"desk{n}", uri=f"sip:desk{n}@127.0.0.1:{5069 + n}") for n in (1, 2, 3)
    }
    return {
        "caller": SimPhone("caller", reachable=False, registered=False),
        **desks,
        "desk8": SimPhone(
            "desk8",
            reachable=False,
            uri="sip:desk8@127.0.0.1:5078",
            qualify_frequency=5,
            qualify_timeout=2.0,
        ),
        "desk9": SimPhone("desk9", reachable=False, registered=False),
    }


def headers(text: str) -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, _, v in (line.partition(": ") for line in text.split("\r\n"))
        if k or v  # the blank line at the end
    ]


def differences(real: str, ours: str) -> list[str]:
    if not real.endswith("\r\n\r\n") or not ours.endswith("\r\n\r\n"):
        return [] if real == ours else [f"framing: {real!r} / {ours!r}"]
    want, got = headers(real), headers(ours)
    if want and want[0] in {("Event", kind) for kind in CUT_SHORT}:
        want = [(k, v) for k, v in want if k in dict(got)]
    if [k for k, _ in want] != [k for k, _ in got]:
        return [f"headers: Asterisk {[k for k, _ in want]} / sim {[k for k, _ in got]}"]
    return [
        f"{k}: Asterisk {v!r} / sim {mine!r}"
        for (k, v), (_, mine) in zip(want, got, strict=True)
        if k not in VOLATILE and v != mine
    ]


async def read_message(reader: asyncio.StreamReader) -> str:
    """One message as received: up to the blank line (the greeting is a single line)."""
    first = await reader.readline()
    if first.startswith(b"Asterisk Call Manager"):
        return first.decode()
    return (first + await reader.readuntil(b"\r\n\r\n")).decode() if first != b"\r\n" else ""


async def replay(name: str) -> list[str]:
    sim = AmiSim(secret=SECRET, phones=recording_phones())
    port = await sim.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    problems: list[str] = []
    try:
        for o in trace(name):
            if o["kind"] == "send":
                text = o["text"].replace("Secret: ivrsecret", f"Secret: {SECRET}")
                writer.write(text.encode())
            elif o["kind"] == "recv":
                if o["text"].startswith("Event: PeerStatus"):  # the OPTIONS responder
                    sim.set_reachable("desk8", "PeerStatus: Reachable" in o["text"])
                ours = await asyncio.wait_for(read_message(reader), 10)
                problems += [f"{name}: {p}" for p in differences(o["text"], ours)]
            elif o["kind"] == "eof":
                rest = await asyncio.wait_for(reader.read(), 10)
                if rest:
                    problems.append(f"{name}: after Logoff, {rest!r} instead of the end")
    finally:
        writer.close()
        await sim.stop()
    return problems


@pytest.mark.parametrize("name", ["pjsip-show-endpoints", "contact-status"])
async def test_the_simulator_answers_ami_like_asterisk(name: str) -> None:
    assert await replay(name) == []


@pytest.mark.parametrize("name", ["dial-answered-bridge", "stasis-app-missing"])
async def test_the_simulators_hangup_is_written_like_asterisks(name: str) -> None:
    hangups = [o["text"] for o in trace(name) if o.get("text", "").startswith("Event: Hangup\r\n")]
    assert hangups
    sim = AmiSim(secret=SECRET)
    port = await sim.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"Action: Login\r\nUsername: ivr\r\nSecret: {SECRET}\r\n\r\n".encode())
        while not (await read_message(reader)).startswith("Event: SuccessfulAuth"):
            pass
        problems = []
        for real in hangups:
            fields = dict(headers(real))
            channel = {k: fields[k] for k in list(fields)[2:16] if k != "Uniqueid"}
            channel["Linkedid"] = fields["Linkedid"]
            sim.hangup(fields["Uniqueid"], int(fields["Cause"]), fields["Cause-txt"], channel)
            problems += differences(real, await asyncio.wait_for(read_message(reader), 10))
    finally:
        writer.close()
        await sim.stop()
    assert problems == []


def test_every_trace_is_replayed() -> None:
    names = {p.stem for p in TRACES.glob("*.jsonl")}
    assert names == {
        "pjsip-show-endpoints",
        "contact-status",
        "dial-answered-bridge",
        "stasis-app-missing",
    }
