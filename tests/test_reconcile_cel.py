"""CEL lines captured from the real Asterisk 22 (tests/data/cel_hotline.csv) → the facts of a
call: a call answered by [hotline-fallback] while no controller was connected (0911000001, desk
9a answers), and one a controller took in Stasis (0911000002)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ivr.store.reconcile.cel import FIELDS, FORMAT, MAPPING, CelEvent, CelLineError, parse_line
from ivr.store.reconcile.facts import endpoint_of, fold

DATA = Path(__file__).parent / "data" / "cel_hotline.csv"
FALLBACK = "1795665290.40"
CONTROLLED = "1795665329.71"
NODE = "02:fc:00:00:00:01"


def events() -> list[CelEvent]:
    return [parse_line(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def of(linkedid: str) -> list[CelEvent]:
    return [e for e in events() if e.linkedid == linkedid]


def at(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC)


def test_every_captured_line_parses() -> None:
    evs = events()
    assert len(evs) == 40
    assert {e.eid for e in evs} == {NODE}
    hangup = next(e for e in evs if e.linkedid == FALLBACK and e.eventtype == "HANGUP")
    assert hangup.extra.startswith('{"hangupcause":')  # CSV quoting undone
    assert any(e.cid_name.startswith("Nhánh 9") for e in evs)  # UTF-8 kept


def test_mapping_has_a_field_per_parsed_value() -> None:
    assert MAPPING.count("CSV_QUOTE") == len(FIELDS) + 1
    assert MAPPING.startswith(f"${{CSV_QUOTE({FORMAT})}}")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('"2026-11-26","CHAN_START"', "mẫu"),
        ('"ivr1","x","CHAN_START","1.0"', "trường"),
        ('"ivr1",' + ",".join(['"a"'] * 15), "thời điểm"),
        ('"ivr1","e","CHAN_START","1.0"' + ',""' * 12, "mã kênh"),
        ('"ivr1","unterminated', "không đọc được"),
    ],
)
def test_a_line_not_ours_is_refused_with_a_reason(line: str, why: str) -> None:
    with pytest.raises(CelLineError, match=why):
        parse_line(line)


def test_fallback_call_facts() -> None:
    f = fold(of(FALLBACK))
    assert f is not None
    assert (f.node, f.channel_id, f.linked_id) == (NODE, FALLBACK, FALLBACK)
    assert (f.caller_number, f.dialed) == ("0911000001", "18001022")
    assert f.contexts == ("hotline-inbound", "hotline-fallback")
    assert f.started_at == at(1795665290.066162)
    assert f.answered_at == at(1795665290.066979)  # Answer() in the fallback
    assert f.ended_at == at(1795665302.074876)
    assert f.endpoint == "PJSIP/cchc-9a"  # 9a answered; 9b was hung up
    assert f.wait_seconds == pytest.approx(1.525, abs=0.001)  # Dial started → 9a answered
    assert f.talk_seconds == pytest.approx(2.435, abs=0.001)  # bridged → caller's BYE
    assert (f.hangup_by, f.hangup_cause) == ("caller", 16)
    assert not f.controller_saw


def test_a_call_in_stasis_is_the_controllers() -> None:
    f = fold(of(CONTROLLED))
    assert f is not None
    assert f.controller_saw
    assert f.contexts == ("hotline-inbound",)
    assert f.endpoint is None
    assert f.hangup_cause is None  # Asterisk said 0: no cause


def test_a_call_not_ended_yet_has_no_facts() -> None:
    evs = [e for e in of(FALLBACK) if e.eventtype != "LINKEDID_END"]
    assert fold(evs) is None
    assert fold([]) is None


def test_a_call_from_a_desk_to_a_desk_is_not_a_hotline_call() -> None:
    evs = [
        CelEvent("CHAN_START", 1.0, "d.1", "d.1", "PJSIP/cchc-1-00000001", "from-desk", "101"),
        CelEvent("HANGUP", 2.0, "d.1", "d.1", "PJSIP/cchc-1-00000001", "from-desk", "101"),
        CelEvent("LINKEDID_END", 2.0, "d.1", "d.1", "PJSIP/cchc-1-00000001", "from-desk"),
    ]
    assert fold(evs) is None


def test_node_given_when_the_events_have_none() -> None:
    evs = [
        CelEvent(e.eventtype, e.eventtime, e.uniqueid, e.linkedid, e.channame, e.context, e.exten)
        for e in of(FALLBACK)
    ]
    f = fold(evs, node="pbx-2")
    assert f is not None
    assert f.node == "pbx-2"


@pytest.mark.parametrize(
    ("channel", "endpoint"),
    [
        ("PJSIP/cchc-9a-00000026", "PJSIP/cchc-9a"),
        ("PJSIP/dv-3002-0000001f", "PJSIP/dv-3002"),
        ("Local/100@x-0000002a;1", "Local/100@x"),
        ("PJSIP/odd", "PJSIP/odd"),
    ],
)
def test_endpoint_of_a_channel(channel: str, endpoint: str) -> None:
    assert endpoint_of(channel) == endpoint
