"""FastAGI: bad peers cost one connection each; the real transcripts parse as Asterisk meant."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ivr.agi.protocol import AgiProtocolError, parse_reply, read_environment
from ivr.agi.server import AgiServer
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.sim.agi import AgiSim
from ivr.sim.scripts import CallerScript, Clerks, Press

from .conftest import ROOT, SHARED, vn_time
from .scenarios import ANSWER, BUSY

AGI_TRACES = SHARED / "agi" / "traces"
DAY = vn_time("2026-11-25 09:00")


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_bad_peers_cost_one_connection_each(routing: Routing) -> None:
    observer = MemoryObserver()
    server = AgiServer(
        lambda: routing, observer, clock=lambda: DAY, timer_scale=0.1, env_timeout=0.5
    )
    port = await server.start(port=0)
    sim = AgiSim(port, speed=10, clerks=Clerks({"PJSIP/cchc-4b": BUSY}, default=ANSWER))
    try:
        good = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number="0911111111"))

        _, w1 = await _open(port)  # closes halfway through its environment
        w1.write(b"agi_network: yes\nagi_channel: PJSIP/x\n")
        await w1.drain()
        w1.close()
        _, w2 = await _open(port)  # garbage
        w2.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await w2.drain()
        r3, w3 = await _open(port)  # starts, then says nothing more
        w3.write(b"agi_network: yes\n")
        await w3.drain()
        r4, w4 = await _open(port)  # a line that never ends
        w4.write(b"agi_" + b"x" * 20000)
        await w4.drain()

        assert await asyncio.wait_for(r3.read(), 10) == b""  # the server gave up on it
        assert await asyncio.wait_for(r4.read(), 10) == b""
        await asyncio.wait_for(good.done, 60)
        later = sim.call(CallerScript((Press("6", on="prompt:main-menu"),), number="0922222222"))
        await asyncio.wait_for(later.done, 60)
        await asyncio.wait_for(server.idle(), 30)
        for w in (w2, w3, w4):
            w.close()
    finally:
        await server.stop()
    assert server.rejected == 4
    got = {r.caller_number: r.disposition for r in observer.done}
    assert got == {"0911111111": Disposition.ANSWERED, "0922222222": Disposition.ANSWERED}


def _transcript(name: str) -> list[dict[str, object]]:
    path = AGI_TRACES / f"{name}.jsonl"
    if not path.exists():
        pytest.skip(f"{AGI_TRACES} is absent: the FastAGI transcripts of Asterisk 22 are needed")
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def test_the_real_environment_block_parses() -> None:
    lines = [o for o in _transcript("agi-full-session") if o.get("kind") == "line"]
    block = b""
    for o in lines:
        if o["dir"] != "A>S":
            break
        block += str(o["data"]).encode()
    reader = asyncio.StreamReader()
    reader.feed_data(block)
    env = await read_environment(reader)
    assert env["agi_network_script"] == "hotline"
    assert env["agi_accountcode"] == ""
    assert env["agi_enhanced"] == "0.0"
    assert len(env) == 22


def test_every_real_reply_parses() -> None:
    seen = 0
    for name in ("agi-full-session", "agi-caller-hangs-up", "agi-dial-answered"):
        asterisk = [
            str(o["data"]).rstrip("\n")
            for o in _transcript(name)
            if o.get("kind") == "line" and o["dir"] == "A>S"
        ]
        replies = [line for line in asterisk if line[:3].isdigit()]
        for line in replies:
            parse_reply(line)
            seen += 1
    assert seen > 20
    assert parse_reply("200 result=53 endpos=8640").result == ord("5")
    assert parse_reply("200 result=12 (timeout)").data == "timeout"
    assert parse_reply("200 result=1 (7)").data == "7"
    assert parse_reply("200 result=2976 (timeout) endpos=8160").endpos == 8160
    with pytest.raises(AgiProtocolError):
        parse_reply("hello")


def test_the_dialplan_passes_the_node_that_cel_records() -> None:
    """[hotline-agi] gives the Asterisk's ENTITYID, the id CEL writes as ``eid``: FastAGI rows
    and reconciled rows key on the same node, whatever address the Asterisk connects from."""
    from ivr.agi.server import _node

    conf = (ROOT / "dialplan" / "hotline.conf").read_text().split("\n[hotline-agi]\n")[1]
    (line,) = [x for x in conf.split("\n[")[0].splitlines() if ",AGI(" in x]
    args = line.split("AGI(", 1)[1].rsplit(")", 1)[0].split(",")[1:]
    entity = "02:fc:00:00:00:01"  # as Asterisk fills ${ENTITYID} (see tests/data/cel_hotline.csv)
    env = {f"agi_arg_{i}": a.replace("${ENTITYID}", entity) for i, a in enumerate(args, 1)}
    assert _node(env, ("10.0.0.7", 40000)) == entity
    assert _node({}, ("10.0.0.7", 40000)) == "agi@10.0.0.7"  # what it was without the argument


def _count(name: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_count") or 0.0


async def test_fastagi_calls_feed_the_setup_and_key_press_latencies(routing: Routing) -> None:
    """As over ARI: environment read → first command, and a reply carrying a key → the next
    command, on ivr_call_setup_seconds and ivr_dtmf_to_request_seconds."""
    setup, keys = _count("ivr_call_setup_seconds"), _count("ivr_dtmf_to_request_seconds")
    server = AgiServer(lambda: routing, MemoryObserver(), clock=lambda: DAY, timer_scale=0.1)
    port = await server.start(port=0)
    sim = AgiSim(port, speed=10, clerks=Clerks(default=ANSWER))
    try:
        done = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number="0911111111"))
        await asyncio.wait_for(done.done, 60)
        await asyncio.wait_for(server.idle(), 30)
    finally:
        await server.stop()
    assert _count("ivr_call_setup_seconds") == setup + 1
    assert _count("ivr_dtmf_to_request_seconds") == keys + 1  # one key, one next command


# --- the announcement while the desks ring: Dial's m() with a music-on-hold class -------------


def test_each_announced_prompt_list_has_a_class_in_musiconhold_conf(
    routing: Routing, tmp_path: Path
) -> None:
    from ivr.asterisk.config import write_config
    from ivr.asterisk.moh import announced, class_name, prompts_of

    lists = announced(routing)
    assert ("please-hold", "branch-4") in lists
    assert len(lists) == len(set(lists)) == 9  # the nine branches, each its own name
    write_config(
        tmp_path, ROOT / "asterisk.conf.example", ROOT / "dialplan" / "hotline.conf", routing
    )
    conf = (tmp_path / "musiconhold.conf").read_text()
    sections = conf.split("\n[")
    name = class_name(("please-hold", "branch-4"))
    assert name == "hotline-announce+please-hold+branch-4"
    assert prompts_of(name) == ["please-hold", "branch-4"]
    (section,) = [s for s in sections if s.startswith(f"{name}]")]
    settings = dict(line.split("=", 1) for line in section.splitlines()[1:] if "=" in line)
    assert settings == {
        "mode": "files",
        "directory": f"sounds/vi/hotline/moh/{name}",  # from Asterisk's data folder
        "sort": "alpha",  # the prompts first, in order, then the ringback
        "loop_last": "yes",  # the ringback loops, the prompts are said once
    }
    assert conf.count("[hotline-announce") == 9


def test_a_long_prompt_list_gets_a_short_class_name() -> None:
    from ivr.asterisk.moh import NAME_LIMIT, class_name, prompts_of

    prompts = [f"a-rather-long-prompt-{i}" for i in range(5)]
    name = class_name(prompts)
    assert len(name) <= NAME_LIMIT
    assert name == class_name(list(prompts))  # the same list, the same class
    assert name != class_name(prompts[:4])
    assert prompts_of(name) is None


def test_the_class_folder_sorts_the_prompts_then_the_ringback(tmp_path: Path) -> None:
    from ivr.asterisk.moh import class_name, install_classes

    hotline = tmp_path / "vi" / "hotline"
    hotline.mkdir(parents=True)
    for p in ("please-hold", "branch-4", "ringback-vn", "zz-first-by-name"):
        for ext in (".wav", ".sln16"):
            (hotline / f"{p}{ext}").write_bytes(p.encode())
    old = hotline / "moh" / "hotline-announce+gone"
    old.mkdir(parents=True)
    assert install_classes(tmp_path / "vi", [("zz-first-by-name", "please-hold")]) == 6
    assert not old.exists()  # a class no node uses any more
    folder = hotline / "moh" / class_name(("zz-first-by-name", "please-hold"))
    wavs = sorted((f for f in folder.iterdir() if f.suffix == ".wav"), key=lambda f: f.name)
    assert [f.read_bytes() for f in wavs] == [b"zz-first-by-name", b"please-hold", b"ringback-vn"]
    assert all(not Path(str(f.readlink())).is_absolute() for f in wavs)  # a chroot reads them


async def _dial_commands(
    routing: Routing, mode: str, reloaded_prompts: list[str] | None = None
) -> list[str]:
    """The commands the controller sent for a call pressing 4 (branch 4 answers); with
    ``reloaded_prompts`` the routing is reloaded after `ivr agi` started, giving branch 4 those."""
    from ivr.routing.model import DialNode

    node = routing.nodes["branch-4"]
    assert isinstance(node, DialNode)
    nodes = {**routing.nodes, "branch-4": node.model_copy(update={"announce": mode})}
    changed = routing.model_copy(update={"nodes": nodes})
    live = [changed]
    server = AgiServer(lambda: live[0], MemoryObserver(), clock=lambda: DAY, timer_scale=0.1)
    if reloaded_prompts is not None:
        later = node.model_copy(update={"announce": mode, "prompts": reloaded_prompts})
        live[0] = changed.model_copy(update={"nodes": {**nodes, "branch-4": later}})
    port = await server.start(port=0)
    sim = AgiSim(port, speed=10, clerks=Clerks(default=ANSWER))
    sent: list[str] = []
    command = sim._command

    async def recording(call: object, line: str) -> list[str]:
        sent.append(line)
        return await command(call, line)  # type: ignore[arg-type]

    sim._command = recording  # type: ignore[method-assign]
    try:
        done = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number="0911111111"))
        await asyncio.wait_for(done.done, 60)
        await asyncio.wait_for(server.idle(), 30)
    finally:
        await server.stop()
    return sent


async def test_fastagi_dials_at_once_with_the_announcing_class(routing: Routing) -> None:
    sent = await _dial_commands(routing, "while_ringing")
    (dial,) = [i for i, line in enumerate(sent) if line.startswith("EXEC Dial")]
    assert "m(hotline-announce+please-hold+branch-4)" in sent[dial]
    streamed = [line.split()[2] for line in sent if line.startswith("STREAM FILE")]
    assert "hotline/main-menu" in streamed
    assert "hotline/please-hold" not in streamed  # Asterisk says it, from the class
    assert "hotline/branch-4" not in streamed


async def test_fastagi_announce_before_streams_then_dials_without_music(routing: Routing) -> None:
    sent = await _dial_commands(routing, "before")
    (dial,) = [i for i, line in enumerate(sent) if line.startswith("EXEC Dial")]
    streamed = [i for i, line in enumerate(sent) if line.startswith("STREAM FILE hotline/branch-4")]
    assert streamed
    assert streamed[0] < dial
    assert "m(" not in sent[dial]


async def test_fastagi_says_a_list_asterisk_has_no_class_for_before_dialling(
    routing: Routing,
) -> None:
    """A prompt list the routing gained after `ivr agi` started has no class in Asterisk until
    asterisk-config runs again: rather than silence while the desks ring, it is said first."""
    sent = await _dial_commands(routing, "while_ringing", ["branch-4", "please-hold"])
    (dial,) = [i for i, line in enumerate(sent) if line.startswith("EXEC Dial")]
    said = [i for i, line in enumerate(sent) if line.startswith("STREAM FILE hotline/branch-4")]
    assert said
    assert said[0] < dial
    assert "m(" not in sent[dial]
