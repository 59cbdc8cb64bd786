"""Failover on a real Asterisk 22: two controllers share the calls StasisBroadcast offers; the
one holding a call is killed with SIGKILL while the caller hears the menu; the other takes the
call over. The caller is SIPp for the signalling and a UDP socket of ours for the audio, so the
test sees every RTP packet Asterisk sends the caller and measures the silence the kill caused.

The dialplan is the project's own (dialplan/hotline.conf, with [hotline-cluster]), loaded into
the running Asterisk; the test number 18001024 is pointed at [hotline-cluster] for the test's
duration only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.ari.client import AriClient
from ivr.asterisk.pjsip import phones
from ivr.routing.model import Routing
from ivr.sim.sipp import Bye, Keys, Sipp, desk_xml
from ivr.store.db import make_engine, upgrade
from ivr.testing.pg import PgServer
from models import Call, CallStep
from tests.conftest import RealAsterisk

pytestmark = pytest.mark.real_asterisk

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "18001024"
SILENCE_LIMIT = 1.0  # seconds: the bound for a takeover
BASE = dt.datetime.now(dt.UTC).isoformat()  # the controllers' clocks run from here (09:00)


def _asterisk_root() -> Path | None:
    out = subprocess.run(
        [str(ROOT / "scripts" / "asterisk"), "env"], capture_output=True, text=True, check=False
    ).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    root = env.get("IVR_TEST_ASTERISK_ROOT") or os.environ.get("IVR_TEST_ASTERISK_ROOT")
    return Path(root) if root else None


def _cli(root: Path, command: str) -> str:
    done = subprocess.run(
        ["chroot", str(root), "asterisk", "-rx", command],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout


@pytest.fixture
def cluster_number(real_asterisk: RealAsterisk) -> Iterator[str]:
    """The shipped dialplan loaded into the running Asterisk, and a number to [hotline-cluster]."""
    root = _asterisk_root()
    if root is None or os.geteuid() != 0:
        pytest.skip("the failover test loads the dialplan into scripts/asterisk's root (as root)")
    conf = root / "etc" / "asterisk" / "hotline.conf"
    agi = next(line for line in conf.read_text().splitlines() if line.startswith("HOTLINE_AGI="))
    shipped = (ROOT / "dialplan" / "hotline.conf").read_text().splitlines()
    text = "\n".join(agi if line.startswith("HOTLINE_AGI=") else line for line in shipped)
    conf.write_text(text + "\n")
    _cli(root, "dialplan reload")
    _cli(
        root,
        f"dialplan add extension {SERVICE},1,Goto(hotline-cluster,${{EXTEN}},1) into hotline-inbound",
    )
    assert "StasisBroadcast" in _cli(root, "dialplan show hotline-cluster")
    assert "hotline-cluster" in _cli(root, f"dialplan show {SERVICE}@hotline-inbound")
    try:
        yield SERVICE
    finally:
        _cli(root, f"dialplan remove extension {SERVICE}@hotline-inbound")


@pytest.fixture
async def pg_url(pg_server: PgServer | None) -> str:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed (cluster mode needs it)")
    url = await pg_server.create_database(f"ivr_failover_{os.getpid()}_{time.monotonic_ns()}")
    await asyncio.to_thread(upgrade, url)
    return url


@dataclass
class Controller:
    id: str
    proc: asyncio.subprocess.Process
    lines: list[dict[str, object]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_logs(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"event": raw.decode(errors="replace").strip()})
            self.changed.set()

    async def logged(self, event: str, timeout: float = 20.0, **match: object) -> dict[str, object]:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if line.get("event") == event and all(
                        line.get(k) == v for k, v in match.items()
                    ):
                        return line
                self.changed.clear()
                await self.changed.wait()


async def _start(pbx: RealAsterisk, url: str, me: str, folder: Path) -> Controller:
    env = {
        **os.environ,
        "FO_DB": url,
        "FO_ARI_URL": pbx.ari_url,
        "FO_ARI_USER": pbx.ari_user,
        "FO_ARI_PASSWORD": pbx.ari_password,
        "FO_ID": me,
        "FO_SPOOL": str(folder / f"spool-{me}"),
        "FO_RECORDINGS": pbx.recordings_dir,
        "FO_BASE": BASE,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.failover_child",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    c = Controller(me, proc)
    asyncio.get_running_loop().create_task(c.read_logs())
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"READY", f"{me} did not start: {c.lines[-5:]}"
    return c


class RtpEar(asyncio.DatagramProtocol):
    """The caller's ear: when each RTP packet from Asterisk arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.heard = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.arrivals.append(time.monotonic())
        self.heard.set()

    async def hearing_since(self, since: float, seconds: float, timeout: float = 30.0) -> None:
        """Until audio has been arriving without a break since ``since`` for ``seconds``."""
        async with asyncio.timeout(timeout):
            while not self.arrivals or self.arrivals[-1] - max(since, self._run_start()) < seconds:
                self.heard.clear()
                await self.heard.wait()

    def _run_start(self) -> float:
        start = self.arrivals[-1]
        for earlier in reversed(self.arrivals[:-1]):
            if start - earlier > 0.1:
                break
            start = earlier
        return start

    def after_break(self, since: float, gap: float = 0.06) -> float:
        """The first packet after ``since`` that ended a break in the audio."""
        times = [t for t in self.arrivals if t >= since - 1.0]
        return next((b for a, b in itertools.pairwise(times) if b > since and b - a > gap), since)

    def longest_gap(self, after: float, until: float) -> float:
        times = [t for t in self.arrivals if after <= t <= until]
        return max((b - a for a, b in itertools.pairwise(times)), default=until - after)


def _free_udp_port() -> int:
    """A SIP port for our SIPp (the suite's caller port may be busy with another test's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _caller_xml(number: str, media_port: int, hang_up_ms: int) -> str:
    sdp = (
        "v=0\n      o=user1 1 1 IN IP4 127.0.0.1\n      s=-\n      c=IN IP4 127.0.0.1\n"
        f"      t=0 0\n      m=audio {media_port} RTP/AVP 8\n      a=rtpmap:8 PCMA/8000\n"
    )
    return f'''<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="failover caller">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]fo[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      {sdp}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200"/>
  <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]fo[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <pause milliseconds="{hang_up_ms}"/>
  <send retrans="500"><![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]fo[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200"/>
</scenario>
'''


async def _call(
    pbx: RealAsterisk,
    folder: Path,
    service: str,
    number: str,
    port: int,
    hang_up_ms: int,
    sip_port: int,
) -> asyncio.subprocess.Process:
    scenario = folder / f"caller-{number}.xml"
    scenario.write_text(_caller_xml(number, port, hang_up_ms))
    return await asyncio.create_subprocess_exec(
        "sipp",
        pbx.sip,
        "-sf",
        str(scenario),
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        str(sip_port),
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "60",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=folder,
    )


async def _row(url: str, number: str, timeout: float = 20.0, *, final: bool = False) -> Call:
    engine = make_engine(url)
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with engine.connect() as conn:
                    rows = list(
                        (await conn.execute(select(Call).where(Call.caller_number == number))).all()
                    )
                assert len(rows) <= 1, f"the call has {len(rows)} rows"
                if rows and (not final or rows[0].disposition != "in_progress"):
                    return rows[0]  # type: ignore[return-value]
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def _steps(url: str, key: str) -> list[tuple[str, str, str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(CallStep.node, CallStep.kind, CallStep.outcome)
                .where(CallStep.call_id == key)
                .order_by(CallStep.seq)
            )
            return [(r.node, r.kind, r.outcome) for r in rows]
    finally:
        await engine.dispose()


@pytest.fixture
async def controllers(
    real_asterisk: RealAsterisk, pg_url: str, tmp_path: Path
) -> AsyncIterator[dict[str, Controller]]:
    """Two controllers, each having seen the other alive; their last log lines are printed at
    the end (shown when the test fails)."""
    started: dict[str, Controller] = {}
    try:
        for me in ("fo-a", "fo-b"):
            started[me] = await _start(real_asterisk, pg_url, me, tmp_path)
        await started["fo-a"].logged("peer alive", peer="fo-b")
        await started["fo-b"].logged("peer alive", peer="fo-a")
        yield started
    finally:
        for c in started.values():
            if c.proc.returncode is None:
                c.proc.kill()
            await c.proc.wait()
            print(
                c.id, *[json.dumps(x, ensure_ascii=False)[:300] for x in c.lines[-12:]], sep="\n  "
            )


def _owner_and_survivor(row: Call, controllers: dict[str, Controller]) -> tuple[Controller, ...]:
    """The controller holding the call (``row``), then the other one."""
    owner = controllers[row.controller]
    return owner, next(c for c in controllers.values() if c is not owner)


async def _until_step(url: str, key: str, step: tuple[str, str, str]) -> None:
    async with asyncio.timeout(40):
        while step not in await _steps(url, key):  # noqa: ASYNC110 (the database: no event to await)
            await asyncio.sleep(0.1)


async def test_killed_controller_calls_taken_over_within_a_second(
    real_asterisk: RealAsterisk,
    cluster_number: str,
    pg_url: str,
    controllers: dict[str, Controller],
    tmp_path: Path,
) -> None:
    loop = asyncio.get_running_loop()
    transport, ear = await loop.create_datagram_endpoint(RtpEar, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    number = "0911000016"
    sipp = await _call(
        real_asterisk, tmp_path, cluster_number, number, port, 12_000, _free_udp_port()
    )
    try:
        row = await _row(pg_url, number)
        owner, survivor = _owner_and_survivor(row, controllers)
        await ear.hearing_since(time.monotonic(), 1.0)  # the greeting or the menu is playing
        killed_at, killed_wall = time.monotonic(), dt.datetime.now(dt.UTC)
        owner.proc.send_signal(signal.SIGKILL)
        took = await survivor.logged("nhận cuộc gọi từ bộ điều khiển đã ngừng", peer=owner.id)
        assert took["calls"] == 1
        resumed = await survivor.logged("cuộc gọi được tiếp tục sau khi nhận")
        await ear.hearing_since(killed_at, 1.0)  # the prompt again, from the survivor
        silence = ear.longest_gap(killed_at - 0.1, time.monotonic())
        takeover = dt.datetime.fromisoformat(str(took["timestamp"])) - killed_wall
        print(
            f"\nfailover: kill -> calls moved to the survivor {takeover.total_seconds() * 1000:.0f} ms;"
            f" caller's longest silence {silence * 1000:.0f} ms; resumed at {resumed['node']}"
        )
        assert takeover.total_seconds() < SILENCE_LIMIT
        assert silence < SILENCE_LIMIT
        # a new call after the kill is served by the survivor
        second = "0911000017"
        other = await _call(
            real_asterisk,
            tmp_path,
            cluster_number,
            second,
            port + 0,
            3_000,
            _free_udp_port(),
        )
        new_row = await _row(pg_url, second, final=True)
        assert new_row.controller == survivor.id
        assert new_row.disposition == "abandoned"
        await other.wait()
        assert await sipp.wait() == 0
        final = await _row(pg_url, number, final=True)
        assert final.id == row.id
        assert final.controller == survivor.id
        assert final.disposition == "abandoned"
        steps = await _steps(pg_url, final.id)
        assert ("takeover", "takeover", "resumed") in steps
        assert len([s for s in steps if s[1] == "takeover"]) == 1
    finally:
        if sipp.returncode is None:
            sipp.kill()
            await sipp.wait()
        transport.close()


def _prompt_ms(name: str) -> int:
    """How long an installed prompt plays (16 kHz signed linear: 32 bytes a millisecond)."""
    root = _asterisk_root()
    assert root is not None
    return (root / "usr/share/asterisk/sounds/vi/hotline" / f"{name}.sln16").stat().st_size // 32


async def _bridges(pbx: RealAsterisk) -> list[dict[str, object]]:
    client = AriClient(pbx.ari_url, pbx.ari_user, pbx.ari_password, "fo-test")
    try:
        return list(await client.request("GET", "/bridges") or [])
    finally:
        await client.close()


async def test_killed_controller_conversation_goes_on_and_is_recorded_once(
    real_asterisk: RealAsterisk,
    cluster_number: str,
    pg_url: str,
    controllers: dict[str, Controller],
    tmp_path: Path,
    routing: Routing,
) -> None:
    """The caller talks to branch 3's desk when the controller holding the call is killed: the
    survivor adopts the bridge (the conversation goes on), and when the caller hangs up it hangs
    the desk up (the desk's SIPp gets its BYE) and writes the one row, talk time included."""
    desk_port = {p.name: real_asterisk.phone_port + i for i, p in enumerate(phones(routing))}
    key_at = _prompt_ms("greeting") + 1500
    talk_from = key_at + _prompt_ms("please-hold") + _prompt_ms("branch-3") + 1000
    sipp = Sipp(tmp_path, real_asterisk.sip, media_port=16400)
    number = "0911000018"
    try:
        desk = await sipp.desk("3", desk_port["cchc-3"], "answer", ring_ms=1000, talk_ms=None)
        caller = await sipp.caller(
            [Keys(key_at, "3"), Bye(talk_from + 9000)],
            number,
            _free_udp_port(),
            service=cluster_number,
        )
        row = await _row(pg_url, number)
        owner, survivor = _owner_and_survivor(row, controllers)
        await _until_step(pg_url, row.id, ("branch-3", "state", "talking"))  # the desk answered
        talking = [
            br
            for br in await _bridges(real_asterisk)
            if row.channel_id in br["channels"]  # type: ignore[operator]
        ]
        assert len(talking) == 1
        killed_wall = dt.datetime.now(dt.UTC)
        owner.proc.send_signal(signal.SIGKILL)
        took = await survivor.logged("nhận cuộc gọi từ bộ điều khiển đã ngừng", peer=owner.id)
        assert (took["calls"], took["conversations"]) == (1, 1)
        await survivor.logged("cuộc đàm thoại được giữ sau khi nhận")
        takeover = dt.datetime.fromisoformat(str(took["timestamp"])) - killed_wall
        still = [br for br in await _bridges(real_asterisk) if br["id"] == talking[0]["id"]]
        print(
            f"\nfailover of a conversation: adopted {takeover.total_seconds() * 1000:.0f} ms "
            f"after the kill; bridge after it: {still[0]['channels'] if still else 'gone'}"
        )
        assert still
        assert still[0]["channels"] == talking[0]["channels"]  # both legs still talking
        assert await asyncio.wait_for(caller.wait(), 40) == 0  # the caller hangs up
        assert await asyncio.wait_for(desk.wait(), 15) == 0  # the survivor hung the desk up
        final = await _row(pg_url, number, final=True)
        assert (final.id, final.controller) == (row.id, survivor.id)
        assert (final.disposition, final.hangup_by) == ("answered", "caller")
        assert final.endpoint == "PJSIP/cchc-3"
        assert final.talk_seconds > 5.0  # from the desk's answer (dead one) to the BYE (survivor)
        steps = await _steps(pg_url, final.id)
        assert steps.count(("takeover", "takeover", "adopted")) == 1
        assert steps.count(("branch-3", "dial", "answered")) == 1
    finally:
        failed = await sipp.close()
        assert not failed, failed


async def test_killed_controller_ringing_desk_is_dialled_again_and_answers(
    real_asterisk: RealAsterisk,
    cluster_number: str,
    pg_url: str,
    controllers: dict[str, Controller],
    tmp_path: Path,
    routing: Routing,
) -> None:
    """Branch 3's desk rings when the controller holding the call is killed: the survivor hangs
    the dead one's leg up and dials the desk again; the desk answers that second INVITE and the
    call ends as one row, answered, its wait counting the ringing before the kill."""
    desk_port = {p.name: real_asterisk.phone_port + i for i, p in enumerate(phones(routing))}
    key_at = _prompt_ms("greeting") + 1500
    scenario = tmp_path / "desk-twice.xml"
    scenario.write_text(desk_xml("answer", ring_ms=5000, talk_ms=None))
    desk = await asyncio.create_subprocess_exec(
        "sipp",
        *("-sf", str(scenario), "-i", "127.0.0.1", "-p", str(desk_port["cchc-3"])),
        *("-mi", "127.0.0.1", "-mp", "16500", "-m", "2", "-nostdin", "-timeout", "90"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=tmp_path,
    )
    sipp = Sipp(tmp_path, real_asterisk.sip, media_port=16600)
    number = "0911000019"
    try:
        caller = await sipp.caller(
            [Keys(key_at, "3"), Bye(key_at + 20_000)],
            number,
            _free_udp_port(),
            service=cluster_number,
        )
        row = await _row(pg_url, number)
        owner, survivor = _owner_and_survivor(row, controllers)
        await _until_step(pg_url, row.id, ("branch-3", "state", "ringing"))  # the desk rings
        owner.proc.send_signal(signal.SIGKILL)
        took = await survivor.logged("nhận cuộc gọi từ bộ điều khiển đã ngừng", peer=owner.id)
        assert took["calls"] == 1
        resumed = await survivor.logged("cuộc gọi được tiếp tục sau khi nhận")
        assert resumed["node"] == "branch-3"
        assert await asyncio.wait_for(caller.wait(), 60) == 0
        final = await _row(pg_url, number, final=True)
        print(f"\nfailover while ringing: {final.disposition}, wait {final.wait_seconds:.1f} s")
        assert (final.id, final.controller) == (row.id, survivor.id)
        assert (final.disposition, final.endpoint) == ("answered", "PJSIP/cchc-3")
        assert final.wait_seconds > 5.0  # the second INVITE rang 5 s, the first some more
        steps = await _steps(pg_url, final.id)
        assert steps.count(("takeover", "takeover", "resumed")) == 1
        assert steps.count(("branch-3", "dial", "answered")) == 1
    finally:
        await sipp.close()
        if desk.returncode is None:
            desk.kill()
        await desk.wait()
