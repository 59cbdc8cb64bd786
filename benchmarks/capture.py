"""A loopback packet capture (Debian's tcpdump, kernel timestamps) of the SIP to and from
Asterisk and of the callers' RFC 4733 events, and what it says: for each call, the time from the
caller's key being final (the first end-of-event packet of the key, or the SIP INFO) to the
first INVITE reaching one of the branch's desks for that caller.

Calls are told apart by the caller's number (the From of the caller's INVITE and of the desk's
INVITE); a caller's RTP goes to the port Asterisk gave in its 200 OK.
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


class Capture:
    """tcpdump on lo, only UDP to/from Asterisk's SIP port and RTP packets of payload type 101."""

    def __init__(self, path: Path, sip_port: int) -> None:
        self.path = path
        bpf = f"udp and (port {sip_port} or (udp[9] & 0x7f) = {RTP_EVENT_PT})"
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


def read_pcap(path: Path) -> Iterator[Packet]:
    """UDP over IPv4 from a pcap file (Ethernet, as tcpdump writes lo, or Linux cooked)."""
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
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        src, dst = struct.unpack("!HH", udp[:4])
        yield Packet(sec + frac / (1e9 if nano else 1e6), src, dst, udp[8:])


@dataclass
class _Call:
    call_id: bytes = b""
    media_port: int = 0
    key_at: float | None = None
    invite_at: float | None = None


@dataclass
class KeyToInvite:
    """Per caller number: when the key was final, when the first desk INVITE arrived."""

    calls: dict[str, _Call] = field(default_factory=dict)

    def latencies_ms(self) -> list[float]:
        return sorted(
            (c.invite_at - c.key_at) * 1000
            for c in self.calls.values()
            if c.key_at is not None and c.invite_at is not None
        )


def key_to_invite(
    packets: Iterator[Packet], prefix: str, sip_port: int, desk_ports: set[int]
) -> KeyToInvite:
    out = KeyToInvite()
    by_call_id: dict[bytes, str] = {}
    by_media: dict[int, str] = {}
    for p in packets:
        if sip_port in (p.src_port, p.dst_port):
            _sip(p, out, prefix, sip_port, desk_ports, by_call_id, by_media)
        elif p.dst_port in by_media and _is_key_end(p.payload):
            call = out.calls[by_media[p.dst_port]]
            if call.key_at is None:
                call.key_at = p.at
    return out


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
