"""The real-Asterisk load benchmark's arithmetic: its reading of the loopback capture
(benchmarks/capture.py: key → desk INVITE per caller, and its three parts when ARI's traffic is
captured too), and how several runs of a side combine into one (benchmarks/real_load.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from benchmarks.capture import key_to_invite, percentile, read_pcap
from benchmarks.real_load import combine

SIP, ARI, DESK, MEDIA, CLIENT = 5060, 8088, 5071, 34000, 40000
CALLER = "0990200001"


def _ip(proto: int, segment: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0, 64, proto, 0, bytes(4), bytes(4)
    )
    return header + segment


def udp(src: int, dst: int, payload: bytes) -> bytes:
    return _ip(17, struct.pack("!HHHH", src, dst, 8 + len(payload), 0) + payload)


def tcp(src: int, dst: int, payload: bytes) -> bytes:
    header = struct.pack("!HHIIBBHHH", src, dst, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
    return _ip(6, header + payload)


def pcap(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for at, ip in packets:
        frame = bytes(12) + b"\x08\x00" + ip  # Ethernet, as tcpdump writes lo
        sec, usec = int(at), round((at - int(at)) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    path.write_bytes(out)
    return path


def invite(number: str) -> bytes:
    return (
        f"INVITE sip:4@127.0.0.1 SIP/2.0\r\nFrom: <sip:{number}@127.0.0.1>;tag=1\r\n"
        f"Call-ID: call-{number}\r\nCSeq: 1 INVITE\r\n\r\n"
    ).encode()


def ok(number: str, media: int) -> bytes:
    return (
        f"SIP/2.0 200 OK\r\nCall-ID: call-{number}\r\nCSeq: 1 INVITE\r\n\r\n"
        f"v=0\r\nm=audio {media} RTP/AVP 0 101\r\n"
    ).encode()


def key_end() -> bytes:  # RTP, payload type 101, event 4 with the end bit
    return struct.pack("!BBHII", 0x80, 101, 1, 1, 1) + bytes([4, 0x80, 0, 160])


def event(number: str, kind: str = "ChannelDtmfReceived") -> bytes:
    body = (
        f'{{"type":"{kind}","digit":"4","channel":{{"id":"1.1","name":"PJSIP/x",'
        f'"caller":{{"name":"","number":"{number}"}},"dialplan":{{"context":"c"}}}}}}'
    ).encode()
    return b"\x81\x7e" + struct.pack("!H", len(body)) + body  # a websocket text frame


def originate(number: str) -> bytes:
    return (
        "POST /ari/channels?endpoint=PJSIP/cchc-4a&app=hotline&callerId=%22CCHC%204%22%20"
        f"%3C{number}%3E&timeout=20 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def desk_invite(number: str) -> bytes:
    return (
        f'INVITE sip:cchc-4a@127.0.0.1:{DESK} SIP/2.0\r\nFrom: "CCHC 4" <sip:{number}@x>\r\n'
        f"Call-ID: desk-{number}\r\nCSeq: 1 INVITE\r\n\r\n"
    ).encode()


def capture(tmp_path: Path) -> Path:
    return pcap(
        tmp_path / "sip.pcap",
        [
            (0.5, udp(6000, SIP, invite(CALLER))),
            (0.6, udp(SIP, 6000, ok(CALLER, MEDIA))),
            (0.9, tcp(CLIENT, MEDIA, key_end())),  # TCP to the media port: not the key
            (1.000, udp(7000, MEDIA, key_end())),
            (1.001, udp(7000, MEDIA, key_end())),  # the end packet repeated: the first counts
            (1.002, tcp(ARI, CLIENT, event(CALLER, "PlaybackFinished"))),
            (1.004, tcp(ARI, CLIENT, event("0990200999") + event(CALLER))),
            (1.006, tcp(CLIENT, ARI, originate(CALLER))),
            (1.007, tcp(CLIENT, ARI, originate(CALLER))),  # the second desk's
            (1.010, udp(SIP, DESK, desk_invite(CALLER))),
        ],
    )


def test_the_key_to_invite_time_is_split_into_asterisk_s_and_the_controller_s(
    tmp_path: Path,
) -> None:
    measured = key_to_invite(read_pcap(capture(tmp_path)), "09902", SIP, {DESK}, ARI)
    assert measured.latencies_ms() == [pytest.approx(10.0, abs=0.01)]
    parts = measured.parts_ms()
    assert parts == {
        "key_to_event": [pytest.approx(4.0, abs=0.01)],
        "event_to_originate": [pytest.approx(2.0, abs=0.01)],
        "originate_to_invite": [pytest.approx(4.0, abs=0.01)],
    }
    assert percentile(parts["event_to_originate"], 99) == pytest.approx(2.0, abs=0.01)


def test_without_ari_s_port_only_the_whole_time_is_measured(tmp_path: Path) -> None:
    measured = key_to_invite(read_pcap(capture(tmp_path)), "09902", SIP, {DESK})
    assert measured.latencies_ms() == [pytest.approx(10.0, abs=0.01)]
    assert measured.parts_ms() == {
        "key_to_event": [],
        "event_to_originate": [],
        "originate_to_invite": [],
    }


def step(completed: int, stranded: int, cpu: float | None, p99: float) -> dict[str, object]:
    return {
        "attempted": 10,
        "completed_caller": completed,
        "completed_desk": completed,
        "stranded": stranded,
        "asterisk_cpu_ms_per_call": 50.0,
        "controller_cpu_ms_per_call": cpu,
        "key_to_invite_ms": {"p50": 5.0, "p99": p99},
        "key_to_invite_parts_ms": {"key_to_event": {"p50": 0.5, "p99": p99 / 10}},
        "leaked_bridges": 0,
        "leaked_channels": stranded,
        "_notes": {"settled": stranded == 0, "measured_invites": completed, "folder": "x"},
    }


def test_runs_combine_to_the_median_of_costs_and_the_worst_of_failures() -> None:
    combined = combine([step(10, 0, 12.0, 20.0), step(9, 1, 18.0, 40.0), step(10, 0, 14.0, 10.0)])
    assert combined["completed_caller"] == 9  # one run's failure is not averaged away
    assert combined["stranded"] == 1
    assert combined["leaked_channels"] == 1
    assert combined["controller_cpu_ms_per_call"] == 14.0
    assert combined["key_to_invite_ms"] == {"p50": 5.0, "p99": 20.0}
    assert combined["key_to_invite_parts_ms"] == {"key_to_event": {"p50": 0.5, "p99": 2.0}}
    assert combined["_notes"]["settled"] is False
    assert combined["_notes"]["measured_invites"] == 9
    # the dialplan menu has no controller: a figure missing from a run stays missing
    assert (
        combine([step(10, 0, None, 1.0), step(10, 0, None, 2.0)])["controller_cpu_ms_per_call"]
        is None
    )


def test_a_count_over_an_even_number_of_runs_stays_a_count() -> None:
    """The median of two runs' 10 calls is 10 (printed "10", not "10.0"); a figure measured as
    a float keeps its median, even when it is a whole number."""
    combined = combine([step(10, 0, 12.0, 20.0), step(10, 0, 14.0, 20.0)])
    assert combined["attempted"] == 10
    assert isinstance(combined["attempted"], int)
    assert combined["controller_cpu_ms_per_call"] == 13.0
    assert isinstance(combined["controller_cpu_ms_per_call"], float)
    uneven = combine([{**step(10, 0, 12.0, 20.0), "attempted": 9}, step(10, 0, 12.0, 20.0)])
    assert uneven["attempted"] == 9.5  # no count to keep: the median as it is
