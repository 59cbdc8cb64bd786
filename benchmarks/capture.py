"""A loopback packet capture (Debian's tcpdump, kernel timestamps) of the SIP to and from
Asterisk and of the callers' RFC 4733 events, and what it says: for each call, the time from the
caller's key being final (the first end-of-event packet of the key, or the SIP INFO) to the
first INVITE reaching one of the branch's desks for that caller.

Given ARI's port, it also captures ARI's HTTP and websocket (plain text on loopback) and splits
that time in three: Asterisk's (the key → its ChannelDtmfReceived event on the websocket), the
controller's (the event → its first originate request, POST /ari/channels), and Asterisk's again
(the originate → the INVITE to the desk).

Calls are told apart by the caller's number (the From of the caller's INVITE and of the desk's
INVITE, the caller of the ARI event, the <number> of the originate's callerId); a caller's RTP
goes to the port Asterisk gave in its 200 OK.
"""

from __future__ import annotations

import math
import re
import signal
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

RTP_EVENT_PT = 101
_FROM_USER = re.compile(rb"^(?:From|f)\s*:[^\r\n]*?sip:([^@;>\s]+)@", re.I | re.M)
_CALL_ID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.I | re.M)
_CSEQ = re.compile(rb"^CSeq\s*:\s*\d+\s+(\w+)", re.I | re.M)
_MEDIA = re.compile(rb"^m=audio (\d+)", re.M)
# an ARI event as Asterisk writes it (compact JSON) on the websocket: the key's event and its
# channel's caller; and the originate's callerId query parameter, "name" <number> URL-encoded
_DTMF_EVENT = re.compile(
    rb'"type":\s*"ChannelDtmfReceived".*?"caller":\s*\{[^{}]*?"number":\s*"([^"]*)"', re.S
)
_ORIGINATE = re.compile(rb"^POST /ari/channels\?[^ ]*?callerId=[^& ]*?%3C([^%& ]+)%3E", re.M)


class Capture:
    """tcpdump on lo, only UDP to/from Asterisk's SIP port, RTP packets of payload type 101 and,
    given ``ari_port``, TCP to/from ARI's HTTP port."""

    def __init__(self, path: Path, sip_port: int, ari_port: int | None = None) -> None:
        self.path = path
        bpf = f"(udp and (port {sip_port} or (udp[9] & 0x7f) = {RTP_EVENT_PT}))"
        if ari_port is not None:
            bpf += f" or (tcp port {ari_port})"
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-U", "-w", str(path), bpf],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        # tcpdump says "listening on lo" once the capture runs
        line = self.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"tcpdump did not start: {line.strip()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@dataclass(frozen=True)
class Packet:
    at: float  # seconds (epoch), as the kernel stamped it
    src_port: int
    dst_port: int
    payload: bytes
    tcp: bool = False


def read_pcap(path: Path) -> Iterator[Packet]:
    """UDP and TCP over IPv4 from a pcap file (Ethernet, as tcpdump writes lo, or Linux
    cooked); TCP segments with no payload are left out."""
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    endian, nano = {
        0xA1B2C3D4: ("<", False),
        0xA1B23C4D: ("<", True),
        0xD4C3B2A1: (">", False),
        0x4D3CB2A1: (">", True),
    }[magic]
    link = struct.unpack(endian + "I", data[20:24])[0]
    skip = {1: 14, 113: 16, 276: 20}[link]
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, size, _ = struct.unpack(endian + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + size]
        offset += 16 + size
        ip = frame[skip:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] not in (6, 17):
            continue
        at = sec + frac / (1e9 if nano else 1e6)
        total = struct.unpack("!H", ip[2:4])[0] or len(ip)  # 0: a segmentation offload's
        segment = ip[(ip[0] & 0x0F) * 4 : total]
        src, dst = struct.unpack("!HH", segment[:4])
        if ip[9] == 17:
            yield Packet(at, src, dst, segment[8:])
        elif len(segment) >= 20 and len(segment) > (segment[12] >> 4) * 4:
            yield Packet(at, src, dst, segment[(segment[12] >> 4) * 4 :], tcp=True)


@dataclass
class _Call:
    call_id: bytes = b""
    media_port: int = 0
    key_at: float | None = None
    invite_at: float | None = None
    event_at: float | None = None  # ARI's ChannelDtmfReceived on the websocket
    originate_at: float | None = None  # the controller's first POST /ari/channels


PARTS = {  # what the key → INVITE time is made of when ARI is captured: (from, to)
    "key_to_event": ("key_at", "event_at"),
    "event_to_originate": ("event_at", "originate_at"),
    "originate_to_invite": ("originate_at", "invite_at"),
}


@dataclass
class KeyToInvite:
    """Per caller number: when the key was final, when the first desk INVITE arrived (and, ARI
    captured, when Asterisk sent the key's event and when the controller asked for a desk)."""

    calls: dict[str, _Call] = field(default_factory=dict)

    def latencies_ms(self) -> list[float]:
        return self._between("key_at", "invite_at")

    def parts_ms(self) -> dict[str, list[float]]:
        """Per part of :data:`PARTS`, sorted, over the calls with all four times (none without
        an ARI capture: a dialplan menu makes no ARI traffic)."""
        whole = {
            n
            for n, c in self.calls.items()
            if None not in (c.key_at, c.event_at, c.originate_at, c.invite_at)
        }
        return {name: self._between(a, b, whole) for name, (a, b) in PARTS.items()}

    def _between(self, first: str, then: str, only: set[str] | None = None) -> list[float]:
        found = []
        for number, c in self.calls.items():
            a, b = getattr(c, first), getattr(c, then)
            if a is not None and b is not None and (only is None or number in only):
                found.append((b - a) * 1000)
        return sorted(found)


def key_to_invite(
    packets: Iterator[Packet],
    prefix: str,
    sip_port: int,
    desk_ports: set[int],
    ari_port: int | None = None,
) -> KeyToInvite:
    out = KeyToInvite()
    by_call_id: dict[bytes, str] = {}
    by_media: dict[int, str] = {}
    for p in packets:
        if p.tcp:
            if ari_port is not None and ari_port in (p.src_port, p.dst_port):
                _ari(p, out, ari_port)
        elif sip_port in (p.src_port, p.dst_port):
            _sip(p, out, prefix, sip_port, desk_ports, by_call_id, by_media)
        elif p.dst_port in by_media and _is_key_end(p.payload):
            call = out.calls[by_media[p.dst_port]]
            if call.key_at is None:
                call.key_at = p.at
    return out


def _ari(p: Packet, out: KeyToInvite, ari_port: int) -> None:
    """The first key event Asterisk sends about a caller after the key, and the controller's
    first originate for that caller after it."""
    if p.src_port == ari_port:
        for m in _DTMF_EVENT.finditer(p.payload):
            call = out.calls.get(m.group(1).decode(errors="replace"))
            if call is not None and call.key_at is not None and call.event_at is None:
                call.event_at = p.at
        return
    for m in _ORIGINATE.finditer(p.payload):
        call = out.calls.get(m.group(1).decode(errors="replace"))
        if call is not None and call.event_at is not None and call.originate_at is None:
            call.originate_at = p.at


def _sip(
    p: Packet,
    out: KeyToInvite,
    prefix: str,
    sip_port: int,
    desk_ports: set[int],
    by_call_id: dict[bytes, str],
    by_media: dict[int, str],
) -> None:
    first_line = p.payload.split(b"\r\n", 1)[0]
    call_id = _match(_CALL_ID, p.payload)
    if p.src_port == sip_port and p.dst_port in desk_ports and first_line.startswith(b"INVITE "):
        number = _match(_FROM_USER, p.payload).decode(errors="replace")
        call = out.calls.get(number)
        if call is not None and call.invite_at is None:
            call.invite_at = p.at
        return
    if p.dst_port == sip_port and first_line.startswith(b"INVITE "):
        number = _match(_FROM_USER, p.payload).decode(errors="replace")
        if number.startswith(prefix) and number not in out.calls:
            out.calls[number] = _Call(call_id=call_id)
            by_call_id[call_id] = number
        return
    number = by_call_id.get(call_id, "")
    if not number:
        return
    call = out.calls[number]
    if first_line.startswith(b"SIP/2.0 200") and _match(_CSEQ, p.payload) == b"INVITE":
        media = _match(_MEDIA, p.payload)
        if media and not call.media_port:
            call.media_port = int(media)
            by_media[call.media_port] = number
    elif first_line.startswith(b"INFO ") and call.key_at is None:
        call.key_at = p.at


def _match(pattern: re.Pattern[bytes], payload: bytes) -> bytes:
    m = pattern.search(payload)
    return m.group(1) if m else b""


def _is_key_end(rtp: bytes) -> bool:
    """An RTP telephone-event packet with the end bit set."""
    if len(rtp) < 12 or rtp[1] & 0x7F != RTP_EVENT_PT:
        return False
    header = 12 + 4 * (rtp[0] & 0x0F)
    return len(rtp) >= header + 4 and bool(rtp[header + 1] & 0x80)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when there are none)."""
    if not values:
        return None
    rank = min(len(values), max(1, math.ceil(q / 100 * len(values))))
    return values[rank - 1]
