"""SIPp as the caller and as the desk phones, for calls through a real Asterisk (the tests and
`ivr demo --asterisk`).

A caller is a list of timed steps after the answer (keys as RFC 4733 telephone-events or SIP
INFO, speech as G.711 audio, hang-up); desk phones answer, refuse (486) or ring for ever.
Scenario XML and the RTP captures SIPp replays are written into a temporary folder; SIPp runs as
a subprocess on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

PCAPS = Path("/usr/share/sip-tester")
SPEECH = PCAPS / "g711a.pcap"
EVENT_CODE = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
KEY_MS = 200  # how long a key is held
KEY_GAP_MS = 300  # between two keys
_timestamps = itertools.count(1)

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
"""

_CALLER_INVITE = """
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

# SIP INFO (application/dtmf-relay), the other way to send keys. (sip-tester's own DTMF
# captures all carry the same RTP timestamp, so Asterisk took a second key for a repeat of the
# first; the captures below are made per step, each event with its own timestamp.)
_INFO = """
  <send retrans="500">
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=200
    ]]>
  </send>
  <recv response="200"/>
"""

_CALLER_BYE = """
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 999 BYE
      Contact: sip:{number}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

_AWAIT_BYE = """
  <recv request="BYE" timeout="{timeout_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""

# SIPp refuses to start when a variable is set and never used, so only the desk that answers
# (and later sends BYE) keeps the caller's From and Contact.
_DESK_INVITE = """
  <recv request="INVITE" crlf="true"/>
"""
_DESK_INVITE_KEEP = """
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="remote_contact"/>
    </action>
  </recv>
"""

_RESPONSE = """
  <send{retrans}>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{body}    ]]>
  </send>
"""

_SDP = """      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
"""

_DESK_BYE = """
  <send retrans="500">
    <![CDATA[
      BYE [$remote_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$remote_from]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

_DESK_CANCEL = """
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: 1 INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


@dataclass(frozen=True)
class Keys:
    at_ms: int  # after the answer
    digits: str


@dataclass(frozen=True)
class Talk:
    at_ms: int
    seconds: float


@dataclass(frozen=True)
class Bye:
    at_ms: int


Step = Keys | Talk | Bye


def _pcap_packet(at_us: int, rtp: bytes) -> bytes:
    """One Ethernet/IPv4/UDP frame from 127.0.0.1 to 127.0.0.1 (SIPp rewrites the ports)."""
    udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1"
    )
    frame = b"\0" * 12 + b"\x08\x00" + ip + udp
    return (
        struct.pack("<IIII", at_us // 1_000_000, at_us % 1_000_000, len(frame), len(frame)) + frame
    )


def rfc4733_pcap(path: Path, digits: str) -> int:
    """Writes the RTP telephone-events (RFC 4733, payload type 101) of ``digits``; each key has
    its own timestamp, so none looks like a repeat of the one before. Returns its length in ms."""
    base = next(_timestamps)
    ts, seq, at_ms = base * 800_000, base * 1000, 0
    frames = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for d in digits:
        steps = KEY_MS // 20
        for k in range(1, steps + 4):  # the last three are the end of the event, repeated
            end = k > steps
            duration = min(k, steps) * 160
            payload = struct.pack("!BBH", EVENT_CODE[d], (0x80 if end else 0) | 10, duration)
            header = struct.pack("!BBHII", 0x80, (0x80 if k == 1 else 0) | 101, seq, ts, 0x1C0FFEE)
            frames.append(_pcap_packet((at_ms + min(k, steps) * 20) * 1000 + k, header + payload))
            seq += 1
        at_ms += KEY_MS + KEY_GAP_MS
        ts += (KEY_MS + KEY_GAP_MS) * 8
    path.write_bytes(b"".join(frames))
    return at_ms


def pcap_ms(path: Path) -> int:
    """How long replaying a capture takes."""
    data = path.read_bytes()
    first = last = None
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, size, _ = struct.unpack("<IIII", data[offset : offset + 16])
        at = sec * 1_000_000 + usec
        first = at if first is None else first
        last = at
        offset += 16 + size
    return 0 if first is None or last is None else (last - first) // 1000 + 20


def _play(pcap: Path) -> str:
    return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'


def caller_xml(
    steps: list[Step],
    number: str = "0912345678",
    timeout_ms: int = 120_000,
    folder: Path | None = None,
) -> str:
    """The caller's scenario. With ``folder``, keys go as RFC 4733 events (captures written
    there); without, as SIP INFO."""
    out = [_HEAD.format(name="hotline caller"), _CALLER_INVITE.format(number=number)]
    now = 0
    for n, step in enumerate(sorted(steps, key=lambda s: s.at_ms)):
        if step.at_ms > now:
            out.append(f'  <pause milliseconds="{step.at_ms - now}"/>\n')
            now = step.at_ms
        match step:
            case Keys(digits=digits) if folder is not None:
                pcap = folder / f"keys-{number}-{n}.pcap"
                ms = rfc4733_pcap(pcap, digits)
                out.append(_play(pcap))
                out.append(f'  <pause milliseconds="{ms}"/>\n')
                now += ms
            case Keys(digits=digits):
                for i, d in enumerate(digits):
                    if i:
                        out.append(f'  <pause milliseconds="{KEY_MS + KEY_GAP_MS}"/>\n')
                        now += KEY_MS + KEY_GAP_MS
                    out.append(_INFO.format(number=number, digit=d, cseq=10 + len(out)))
            case Talk(seconds=seconds):
                left, clip = int(seconds * 1000), pcap_ms(SPEECH)
                while left > 0:  # the recorded speech, again and again
                    out.append(_play(SPEECH))
                    out.append(f'  <pause milliseconds="{min(left, clip)}"/>\n')
                    now += min(left, clip)
                    left -= clip
            case Bye():
                out.append(_CALLER_BYE.format(number=number))
                return "".join(out)
    out.append(_AWAIT_BYE.format(timeout_ms=timeout_ms))
    return "".join(out)


def desk_xml(kind: str, ring_ms: int = 2000, talk_ms: int = 4000) -> str:
    invite = _DESK_INVITE_KEEP if kind == "answer" else _DESK_INVITE
    out = [_HEAD.format(name=f"desk phone: {kind}"), invite]
    if kind == "busy":
        out.append(
            _RESPONSE.format(retrans="", status="486 Busy Here", body="      Content-Length: 0\n")
        )
        out.append('  <recv request="ACK"/>\n</scenario>\n')
        return "".join(out)
    out.append(_RESPONSE.format(retrans="", status="180 Ringing", body="      Content-Length: 0\n"))
    if kind == "no_answer":
        out.append(_DESK_CANCEL)
        return "".join(out)
    out.append(f'  <pause milliseconds="{ring_ms}"/>\n')
    out.append(_RESPONSE.format(retrans=' retrans="500"', status="200 OK", body=_SDP))
    out.append('  <recv request="ACK" rtd="true" crlf="true"/>\n')
    out.append(f'  <pause milliseconds="{talk_ms}"/>\n')
    out.append(_DESK_BYE)
    return "".join(out)


class Sipp:
    """Runs SIPp processes in ``folder``; every one of them is stopped by :meth:`close`."""

    def __init__(self, folder: Path, asterisk: str, media_port: int = 16000) -> None:
        self.folder = folder
        self.asterisk = asterisk
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._media = media_port

    @staticmethod
    def available() -> bool:
        return shutil.which("sipp") is not None and PCAPS.is_dir()

    async def _start(self, name: str, xml: str, *args: str) -> asyncio.subprocess.Process:
        scenario = self.folder / f"{name}.xml"
        scenario.write_text(xml)
        self._media += 10
        proc = await asyncio.create_subprocess_exec(
            "sipp",
            *args,
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(self._media),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "150",
            "-trace_err",
            "-error_file",
            str(self.folder / f"{name}.err"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=self.folder,
        )
        self.procs[name] = proc
        return proc

    async def desk(
        self, name: str, port: int, kind: str, ring_ms: int = 2000, talk_ms: int = 4000
    ) -> asyncio.subprocess.Process:
        return await self._start(f"desk-{name}", desk_xml(kind, ring_ms, talk_ms), "-p", str(port))

    async def caller(
        self,
        steps: list[Step],
        number: str,
        port: int,
        service: str = "18001022",
        rfc4733: bool = True,
    ) -> asyncio.subprocess.Process:
        xml = caller_xml(steps, number, folder=self.folder if rfc4733 else None)
        return await self._start(
            f"caller-{number}",
            xml,
            self.asterisk,
            "-s",
            service,
            "-p",
            str(port),
        )

    async def close(self) -> dict[str, str]:
        """Stops every SIPp still running; returns those that had already failed, with why."""
        failed = {
            name: (self.folder / f"{name}.err").read_text(errors="replace")[-500:]
            if (self.folder / f"{name}.err").exists()
            else f"exit status {proc.returncode}"
            for name, proc in self.procs.items()
            if proc.returncode not in (None, 0)
        }
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
        return failed
