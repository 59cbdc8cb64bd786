"""ARI events are checked once, at the edge, and each finds the channel it is about."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.ari.event_types import event_target, parse_event


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        ({"type": "StasisStart", "channel": {"id": "c1", "name": "PJSIP/x"}}, "c1"),
        ({"type": "Dial", "peer": {"id": "leg1"}, "dialstatus": "BUSY"}, "leg1"),
        ({"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "channel:c2"}}, "c2"),
        (
            {"type": "RecordingFinished", "recording": {"name": "r", "target_uri": "channel:c3"}},
            "c3",
        ),
        ({"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "bridge:b1"}}, None),
        ({"type": "ApplicationReplaced"}, None),
    ],
)
def test_a_well_formed_event_finds_its_channel(raw: dict[str, Any], target: str | None) -> None:
    event = parse_event(raw)
    assert event is not None
    assert event_target(event) == target


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"channel": {"id": "c1"}},
        {"type": 7},
        {"type": "StasisStart", "channel": {"name": "PJSIP/x"}},
        {"type": "StasisStart", "channel": "c1"},
        {"type": "PlaybackFinished", "playback": {"id": 3}},
        {"type": "RecordingFinished", "recording": {"id": "r"}},
    ],
)
def test_an_event_missing_what_the_app_reads_is_refused(raw: Any) -> None:
    assert parse_event(raw) is None
