"""SIPp as the caller and as the desk phones, for calls through a real Asterisk (the tests and
`ivr demo --asterisk`).

A caller is a list of timed steps after the answer (keys as RFC 4733 telephone-events or SIP
INFO, speech as G.711 audio, hang-up); desk phones answer, refuse (486) or ring for ever.
Scenario XML and the RTP captures SIPp replays are written into a temporary folder; SIPp runs as
a subprocess on loopback. This module is the one place SIPp's scenario text is written (the
real-Asterisk tests, the demo, the load benchmarks), and the one place the real Asterisk is
found or brought up (`scripts/asterisk up|env|down`, one user at a time by a lock).
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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

# A desk that rings until Asterisk cancels it; the 487 answers the INVITE by its own CSeq (one
# SIPp may serve many calls, as under load).
_DESK_INVITE_CSEQ = """
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="cseq"/>
    </action>
  </recv>
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
      CSeq: [$cseq] INVITE
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
class Quiet:
    """A line that is open and silent: G.711 silence, as a real phone sends between words (an
    RTP stream that simply stops is no silence Asterisk can measure)."""

    at_ms: int
    seconds: float


@dataclass(frozen=True)
class Bye:
    at_ms: int


Step = Keys | Talk | Quiet | Bye


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
    its own timestamp, so none looks like a repeat of the one before (sequence numbers and
    timestamps wrap as RTP's do: a process makes many). Returns its length in ms."""
    base = next(_timestamps)
    ts, seq, at_ms = base * 800_000, base * 1000, 0
    frames = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for d in digits:
        steps = KEY_MS // 20
        for k in range(1, steps + 4):  # the last three are the end of the event, repeated
            end = k > steps
            duration = min(k, steps) * 160
            payload = struct.pack("!BBH", EVENT_CODE[d], (0x80 if end else 0) | 10, duration)
            marker = (0x80 if k == 1 else 0) | 101
            header = struct.pack("!BBHII", 0x80, marker, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1C0FFEE)
            frames.append(_pcap_packet((at_ms + min(k, steps) * 20) * 1000 + k, header + payload))
            seq += 1
        at_ms += KEY_MS + KEY_GAP_MS
        ts += (KEY_MS + KEY_GAP_MS) * 8
    path.write_bytes(b"".join(frames))
    return at_ms


def silence_pcap(path: Path, seconds: float) -> int:
    """Writes ``seconds`` of G.711 A-law silence (payload type 8, 20 ms frames); returns its
    length in ms."""
    base = next(_timestamps)
    ts, seq = base * 800_000, base * 1000
    frames = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    count = int(seconds * 50)
    for k in range(count):
        header = struct.pack(
            "!BBHII", 0x80, 8, (seq + k) & 0xFFFF, (ts + k * 160) & 0xFFFFFFFF, 0x5113CE
        )
        frames.append(_pcap_packet(k * 20_000, header + b"\xd5" * 160))
    path.write_bytes(b"".join(frames))
    return count * 20


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
    there); without, as SIP INFO. ``number`` may hold SIPp keywords: "07[call_number]" gives each
    call of a loaded SIPp its own number."""
    out = [_HEAD.format(name="hotline caller"), _CALLER_INVITE.format(number=number)]
    tag = re.sub(r"\W", "", number.replace("[call_number]", "")) or "caller"
    now = 0
    for n, step in enumerate(sorted(steps, key=lambda s: s.at_ms)):
        if step.at_ms > now:
            out.append(f'  <pause milliseconds="{step.at_ms - now}"/>\n')
            now = step.at_ms
        match step:
            case Keys(digits=digits) if folder is not None:
                pcap = folder / f"keys-{tag}-{n}.pcap"
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
            case Quiet(seconds=seconds) if folder is not None:
                pcap = folder / f"quiet-{tag}-{n}.pcap"
                ms = silence_pcap(pcap, seconds)
                out.append(_play(pcap))
                out.append(f'  <pause milliseconds="{ms}"/>\n')
                now += ms
            case Quiet():
                raise ValueError("silence is sent as RTP: give the caller a folder")
            case Bye():
                out.append(_CALLER_BYE.format(number=number))
                return "".join(out)
    out.append(_AWAIT_BYE.format(timeout_ms=timeout_ms))
    return "".join(out)


_REFUSALS = {"busy": "486 Busy Here", "gone": "503 Service Unavailable"}


def desk_xml(kind: str, ring_ms: int = 2000, talk_ms: int | None = 4000) -> str:
    """A desk phone: ``answer`` (after ``ring_ms``; hangs up after ``talk_ms``, or waits for the
    caller's BYE when None), ``busy`` (486), ``gone`` (503: the phone's line answers for a
    phone that is no longer there), ``no_answer`` (rings until cancelled)."""
    if kind == "answer":
        invite = _DESK_INVITE if talk_ms is None else _DESK_INVITE_KEEP
    else:
        invite = _DESK_INVITE_CSEQ if kind == "no_answer" else _DESK_INVITE
    out = [_HEAD.format(name=f"desk phone: {kind}"), invite]
    if kind in _REFUSALS:
        out.append(
            _RESPONSE.format(retrans="", status=_REFUSALS[kind], body="      Content-Length: 0\n")
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
    if talk_ms is None:
        out.append(_AWAIT_BYE.format(timeout_ms=150_000))
        return "".join(out)
    out.append(f'  <pause milliseconds="{talk_ms}"/>\n')
    out.append(_DESK_BYE)
    return "".join(out)


DESK_GRACE_SECONDS = 3.0  # how long a desk phone may take to end its call when SIPp is closed


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
            "300",  # a bound on a stuck SIPp, well past any scripted call
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
        self, name: str, port: int, kind: str, ring_ms: int = 2000, talk_ms: int | None = 4000
    ) -> asyncio.subprocess.Process:
        # A stray message of an earlier call to this port (a CANCEL retransmitted after its
        # desk had gone) is ignored, as a phone would, instead of being taken for this call.
        return await self._start(
            f"desk-{name}",
            desk_xml(kind, ring_ms, talk_ms),
            "-p",
            str(port),
            "-default_behaviors",
            "all,-abortunexp",
        )

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
        """Stops every SIPp still running; returns those that had already failed, with why.

        A desk phone still running is first given :data:`DESK_GRACE_SECONDS` to end its call
        itself: a controller's call may end before Asterisk's BYE to the desk has been answered,
        and a BYE nobody answers is sent again for 32 s, to the next call's phone on that port,
        which took it for a call of its own and never answered its INVITE (seen in CI: a desk
        that rang 15 s unanswered)."""
        desks = [p for n, p in self.procs.items() if n.startswith("desk-") and p.returncode is None]
        if desks:
            await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in desks], timeout=DESK_GRACE_SECONDS
            )
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


# One user at a time places calls through the real Asterisk (test sessions of any checkout, the
# demo): the SIPp desk phones sit on the configuration's fixed ports, so two users would answer
# each other's calls.
CALLS_LOCK = Path(os.environ.get("IVR_TEST_ASTERISK_LOCK", "/tmp/ivr-real-asterisk.lock"))


class AsteriskUnavailable(Exception):
    """The real Asterisk could not be brought up; the message says why (scripts/asterisk's)."""


@dataclass(frozen=True)
class Pbx:
    """Where the real Asterisk is, as `scripts/asterisk env` says (IVR_TEST_*)."""

    ari_url: str
    ari_user: str
    ari_password: str
    ari_app: str
    sip: str  # host:port of its SIP transport
    phone_port: int  # the first SIPp desk phone's port (--static-contacts)
    caller_port: int
    service: str  # a number routed to [hotline-inbound] (Stasis)
    recordings_dir: str  # the recording folder as Asterisk sees it
    agi_service: str = ""  # a number routed to [hotline-agi] ("" when there is none)
    agi_port: int = 4573  # where the dialplan's AGI() looks for the FastAGI server
    recordings_host: str = ""  # the recording folder as this machine sees it ("": not shared)
    root: str = ""  # the root Asterisk runs in (its etc/asterisk; `chroot ROOT asterisk -rx`)
    state: str = ""  # scripts/asterisk's state folder (pid, crashes; "": not one of its own)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Pbx:
        return cls(
            ari_url=env["IVR_TEST_ARI_URL"],
            ari_user=env.get("IVR_TEST_ARI_USER", "ivr"),
            ari_password=env.get("IVR_TEST_ARI_PASSWORD", ""),
            ari_app=env.get("IVR_TEST_ARI_APP", "hotline"),
            sip=env.get("IVR_TEST_SIP", "127.0.0.1:5060"),
            phone_port=int(env.get("IVR_TEST_PHONE_PORT", "5070")),
            caller_port=int(env.get("IVR_TEST_CALLER_PORT", "5300")),
            service=env.get("IVR_TEST_SERVICE", "18001022"),
            recordings_dir=env.get("IVR_TEST_RECORDINGS_DIR", "/var/spool/asterisk/recording"),
            agi_service=env.get("IVR_TEST_AGI_SERVICE", ""),
            agi_port=int(env.get("IVR_TEST_AGI_PORT", "4573")),
            recordings_host=env.get("IVR_TEST_RECORDINGS_HOST", ""),
            root=env.get("IVR_TEST_ASTERISK_ROOT", ""),
            state=env.get("IVR_TEST_ASTERISK_STATE", ""),
        )

    # --- scripts/asterisk's keeper: it starts Asterisk again after a crash ---------------------

    def crashes(self) -> list[str]:
        """The keeper's lines, one per crash since `up` ([] when not known)."""
        if not self.state:
            return []
        try:
            return (Path(self.state) / "crashes").read_text().splitlines()
        except FileNotFoundError:
            return []

    def asterisk_pid(self) -> int:
        """The running Asterisk's pid (the keeper rewrites it on each start)."""
        if not self.state:
            raise AsteriskUnavailable(
                "no IVR_TEST_ASTERISK_STATE: not an Asterisk of scripts/asterisk"
            )
        return int((Path(self.state) / "pid").read_text())

    def _pid_now(self) -> int | None:
        try:
            return self.asterisk_pid()
        except (FileNotFoundError, ValueError):  # between two runs of the keeper
            return None

    def wait_booted(self, timeout: float = 120, *, not_pid: int | None = None) -> None:
        """Block until Asterisk (again) answers its console fully booted: `asterisk -rx` fails
        at once while none runs, and `core waitfullybooted` returns once it has booted. With
        ``not_pid``, the Asterisk of that pid (one just crashed) does not count."""
        if not self.root:
            raise AsteriskUnavailable("no IVR_TEST_ASTERISK_ROOT: cannot reach its console")
        deadline = time.monotonic() + timeout
        command = ["chroot", self.root, "/usr/sbin/asterisk", "-rx", "core waitfullybooted"]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AsteriskUnavailable(f"Asterisk not booted again within {timeout:.0f} s")
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=left)
            except subprocess.TimeoutExpired:
                continue
            booted = done.returncode == 0 and "fully booted" in done.stdout.lower()
            if booted and (not_pid is None or self._pid_now() not in (not_pid, None)):
                return
            time.sleep(0.25)  # no console yet: the keeper waits 1 s before starting it


@contextmanager
def calls_lock() -> Iterator[None]:
    """This process alone places calls until the block ends (others wait here)."""
    with CALLS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def asterisk_script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "asterisk"), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def own_asterisk(name: str, offset: int) -> dict[str, str]:
    """scripts/asterisk's settings for an Asterisk of its own beside the tests' shared one: its
    cache ``/var/cache/ivr-<name>``, its state ``/run/ivr-<name>-asterisk``, and its ports, each
    the shared one's default plus ``100 * offset`` (RTP: a range of 3,000 from
    ``33000 + 3000 * (offset - 1)``, clear of the tests' own 20000-20999 and of their SIPp
    phones' media ports, 16000 on and 30000-31999; 1,000 ran out under the load benchmark at
    16 calls/s). Two users with distinct names and offsets (1 to 9) share nothing, so they can
    run together."""
    if not 1 <= offset <= 9:
        raise ValueError(f"offset must be 1 to 9, not {offset}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"an Asterisk's name is lower-case letters, digits and '-': {name!r}")
    step = 100 * offset
    ports = {"HTTP": 18088, "SIP": 15060, "AMI": 15038, "AGI": 14573, "PHONE": 15070}
    return {
        "IVR_ASTERISK_CACHE": f"/var/cache/ivr-{name}",
        "IVR_ASTERISK_STATE": f"/run/ivr-{name}-asterisk",
        **{f"IVR_ASTERISK_{k}_PORT": str(v + step) for k, v in ports.items()},
        "IVR_ASTERISK_CALLER_PORT": str(15300 + step),
        "IVR_ASTERISK_RTP_START": str(33000 + 3000 * (offset - 1)),
        "IVR_ASTERISK_RTP_END": str(35999 + 3000 * (offset - 1)),
    }


TESTS_ROOT = Path("/var/cache/ivr/asterisk-root")  # scripts/asterisk's root for the tests


def copy_tests_root(settings: Mapping[str, str]) -> Path:
    """The root of an Asterisk of its own (:func:`own_asterisk`): a copy of the tests' cached
    one, made once (saves the 2-minute build; without it, `up` builds one)."""
    own = Path(settings["IVR_ASTERISK_CACHE"]) / "asterisk-root"
    if not own.exists() and (TESTS_ROOT / "usr/sbin/asterisk").exists():
        tmp = own.with_name(f"asterisk-root.copy.{os.getpid()}")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--one-file-system", str(TESTS_ROOT), str(tmp)], check=True)
        tmp.rename(own)
    return own


@contextmanager
def shared_asterisk(root: Path) -> Iterator[Pbx]:
    """`scripts/asterisk up` (started, or shared with its other users), where it is, and `down`
    at the end (the last user stops it). Hold :func:`calls_lock` around it to place calls."""
    up = asterisk_script(root, "up")
    if up.returncode != 0:
        raise AsteriskUnavailable(up.stderr.strip())
    try:
        env = asterisk_script(root, "env").stdout.splitlines()
        yield Pbx.from_env(dict(line.split("=", 1) for line in env if "=" in line))
    finally:
        asterisk_script(root, "down")
