"""Property tests of the ARI event edge (issue 14, deliverable 4): whatever the websocket carries,
:func:`parse_event` either refuses it or returns an event whose target can be read safely.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.ari.event_types import event_target, parse_event

FUZZ = settings(max_examples=200, deadline=None)

KEYS = st.sampled_from(
    ["type", "channel", "peer", "playback", "recording", "id", "name", "target_uri", "args",
     "digit", "cause", "caller", "dialplan", "number", "synthetic"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["StasisStart", "channel:1764.1", "bridge:b1", "1764.1"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)


def _known_gap(raw: Any) -> bool:
    """A playback or recording whose target_uri is not a string: see the xfail test below."""
    refs = [raw.get(k) for k in ("playback", "recording")] if isinstance(raw, dict) else []
    return any(
        isinstance(r, dict) and "target_uri" in r and not isinstance(r["target_uri"], str)
        for r in refs
    )


def _check(raw: Any) -> None:
    event = parse_event(raw)
    if event is None or _known_gap(raw):
        return
    assert isinstance(event["type"], str)
    target = event_target(event)
    assert target is None or isinstance(target, str)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_from_the_websocket(data: bytes) -> None:
    try:
        raw = json.loads(data)
    except ValueError:
        return  # the reader logs "not JSON" and goes on
    _check(raw)


@FUZZ
@given(raw=JSON)
def test_random_json_documents(raw: Any) -> None:
    _check(raw)
    _check(json.loads(json.dumps(raw)))


@FUZZ
@given(
    kind=st.sampled_from(["channel", "peer", "playback", "recording"]),
    ident=st.text(min_size=1, max_size=20),
    target_uri=JSON,
    extra=st.dictionaries(st.text(max_size=8), JSON, max_size=4),
)
def test_events_about_an_object_with_odd_fields(
    kind: str, ident: str, target_uri: Any, extra: dict[str, Any]
) -> None:
    ref = {"name" if kind == "recording" else "id": ident, "target_uri": target_uri, **extra}
    _check({"type": "Fuzz", kind: ref})


@pytest.mark.xfail(
    strict=True,
    raises=AttributeError,
    reason="found by the property above: parse_event accepts a playback or recording whose "
    "target_uri is not a string, and event_target then raises (the handler's event is lost "
    "with a traceback). For ivr/ari's owner: check target_uri in parse_event, then drop "
    "_known_gap and this marker.",
)
def test_a_playback_whose_target_uri_is_not_a_string_is_refused_or_read() -> None:
    for uri in (None, 5, ["channel:1"]):
        event = parse_event(
            {"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": uri}}
        )
        if event is not None:
            event_target(event)
