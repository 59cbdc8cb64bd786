"""FastAGI on the real Asterisk 22: a dial node's confirmation is said while the desks ring.

One call through ``ivr agi`` presses 4; branch 4's SIPp desks ring at once and one answers after
2 s, inside the 6.3 s announcement. A loopback capture (tcpdump) shows the desk's INVITE sooner
after the key than the announcement lasts (before this change it came after all of it) and the
caller receiving sound from Asterisk while the desks ring (the class's prompts); Asterisk's own
`moh show files` lists the class the Dial names, prompts first, then the ringback.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.capture import key_to_invite, read_pcap
from ivr.asterisk.moh import RINGBACK, announced, class_name, install_classes, musiconhold_conf
from ivr.asterisk.pjsip import phones
from ivr.prompts.build import FORMATS, wav_seconds
from ivr.routing.model import Routing
from ivr.sim.sipp import Sipp
from ivr.store.db import sqlite_url, upgrade

from .conftest import ROOT, RealAsterisk
from .scenarios import SCENARIOS
from .test_real_asterisk import Placed, _run_phase, desks_of, short_prompts

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is missing"),
]

SOUNDS = ROOT / "prompts" / "sounds" / "vi" / "hotline"
ROW = next(s for s in SCENARIOS if s.name == "press 4, a clerk answers, the clerk hangs up")
MEDIA = (30000, 31999)  # the SIPp phones' media ports (test_real_asterisk's slots)


def _cli(pbx: RealAsterisk, command: str) -> str:
    done = subprocess.run(
        ["chroot", pbx.root, "/usr/sbin/asterisk", "-rx", command],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def with_classes(pbx: RealAsterisk, routing: Routing) -> None:
    """The classes as `ivr asterisk-config` and `ivr prompts build --install` make them, in an
    Asterisk started before they existed: only musiconhold.conf, the ringback and the class
    folders are written (the prompts other calls may be playing are left alone)."""
    if not pbx.root:
        pytest.skip("the Asterisk's root is needed to see its music-on-hold classes")
    sounds = Path(pbx.root) / "usr/share/asterisk/sounds/vi"
    for ext in FORMATS:
        if not (sounds / "hotline" / f"{RINGBACK}{ext}").exists():
            shutil.copy2(SOUNDS / f"{RINGBACK}{ext}", sounds / "hotline" / f"{RINGBACK}{ext}")
    install_classes(sounds, announced(routing))
    conf = Path(pbx.root) / "etc/asterisk/musiconhold.conf"
    body = musiconhold_conf(routing)
    if not conf.exists() or conf.read_text() != body:
        conf.write_text(body)
        _cli(pbx, "module reload res_musiconhold.so")


class Tcpdump:
    """A loopback capture of the SIP to and from Asterisk and of the RTP reaching the phones."""

    def __init__(self, path: Path, sip_port: int) -> None:
        bpf = (
            f"udp and (port {sip_port} or dst portrange {MEDIA[0]}-{MEDIA[1]}"
            " or (udp[9] & 0x7f) = 101)"  # and the keys the caller sends
        )
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-U", "-w", str(path), bpf],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        assert "listening" in self.proc.stderr.readline().decode(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.fixture
def capture(real_asterisk: RealAsterisk, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "call.pcap"
    dump = Tcpdump(path, int(real_asterisk.sip.rpartition(":")[2]))
    try:
        yield path
    finally:
        dump.stop()


def _ulaw(byte: int) -> int:
    """G.711 μ-law → 16-bit linear."""
    u = ~byte & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return (0x84 - magnitude) if u & 0x80 else (magnitude - 0x84)


def _alaw(byte: int) -> int:
    """G.711 A-law → 16-bit linear."""
    a = byte ^ 0x55
    exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
    magnitude = (
        (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return magnitude if a & 0x80 else -magnitude


G711 = {0: _ulaw, 8: _alaw}  # RTP payload types: PCMU, PCMA


def _loud(rtp: bytes) -> bool:
    """A G.711 packet louder than a quiet line."""
    decode = G711.get(rtp[1] & 0x7F) if len(rtp) >= 12 else None
    if decode is None:
        return False
    samples = [decode(b) for b in rtp[12 + 4 * (rtp[0] & 0x0F) :]]
    return bool(samples) and math.sqrt(sum(x * x for x in samples) / len(samples)) > 300


def test_g711_decoding() -> None:
    assert _ulaw(0xFF) == 0
    assert _ulaw(0x80) == 32124
    assert _ulaw(0x00) == -32124
    assert abs(_alaw(0xD5)) <= 8  # A-law's quietest
    assert _alaw(0xAA) == 32256
    assert _alaw(0x2A) == -32256


def test_fastagi_rings_the_desks_while_the_announcement_plays(
    real_asterisk: RealAsterisk, routing: Routing, capture: Path, tmp_path: Path
) -> None:
    if not real_asterisk.agi_service:
        pytest.skip("set IVR_TEST_AGI_SERVICE to a number the Asterisk routes to [hotline-agi]")
    with_classes(real_asterisk, routing)
    name = class_name(("please-hold", "branch-4"))
    files = _cli(real_asterisk, "moh show files")
    said = [line for line in files.split(f"Class: {name}\n")[1].splitlines() if "File:" in line]
    assert [f.rsplit("/", 1)[1] for f in said[:3]] == [
        "000-please-hold",
        "001-branch-4",
        f"999-{RINGBACK}",
    ]
    announcement = sum(wav_seconds(SOUNDS / f"{p}.wav") for p in ("please-hold", "branch-4"))

    flow = short_prompts(routing)
    number = "0977000004"
    call = Placed(ROW, "agi", number, desks_of(flow, ROW))
    url = sqlite_url(tmp_path)
    upgrade(url)
    asyncio.run(_run_phase(real_asterisk, flow, [call], tmp_path, url))
    assert not call.failed, call.failed
    assert call.row is not None
    assert call.row.disposition == "answered"

    sip_port = int(real_asterisk.sip.rpartition(":")[2])
    ports = {real_asterisk.phone_port + i for i, _ in enumerate(phones(flow))}
    packets = list(read_pcap(capture))
    seen = key_to_invite(iter(packets), number, sip_port, ports).calls[number]
    assert seen.key_at is not None
    assert seen.invite_at is not None
    # the announcement is not played first: the desk is invited sooner than it lasts
    assert seen.invite_at - seen.key_at < announcement
    answered = min(
        p.at
        for p in packets
        if p.src_port in ports and p.payload.startswith(b"SIP/2.0 200") and b"INVITE" in p.payload
    )
    ringing = [
        p for p in packets if p.src_port == seen.media_port and seen.invite_at < p.at < answered
    ]
    print(
        f"key -> desk INVITE {1000 * (seen.invite_at - seen.key_at):.0f} ms; "
        f"{sum(map(_loud, (p.payload for p in ringing)))} of {len(ringing)} packets to the "
        f"caller loud while the desks rang ({answered - seen.invite_at:.1f} s); "
        f"announcement {announcement:.1f} s"
    )
    assert ringing
    assert sum(_loud(p.payload) for p in ringing) > len(ringing) // 2  # the caller hears it
