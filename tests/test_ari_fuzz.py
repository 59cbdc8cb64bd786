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


def _check(raw: Any) -> None:
    event = parse_event(raw)
    if event is None:
        return
    assert isinstance(event["type"], str)
    target = event_target(event)
    assert target is None or isinstance(target, str)
    _read_like_a_call_start(event)


def _read_like_a_call_start(event: Any) -> None:
    """What the dispatcher reads of a StasisStart before a call exists to catch an error."""
    assert isinstance(event.get("args", [])[:1], list)
    for ref in (event.get("channel"), event.get("peer")):
        if ref is not None:
            (ref.get("caller") or {}).get("number", "")
            (ref.get("dialplan") or {}).get("exten", "")


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


@pytest.mark.parametrize("kind", ["playback", "recording"])
@pytest.mark.parametrize("uri", [None, 5, ["channel:1"], {"channel": "1"}])
def test_a_playback_whose_target_uri_is_not_a_string_is_refused(kind: str, uri: Any) -> None:
    ident = "name" if kind == "recording" else "id"
    assert parse_event({"type": "PlaybackFinished", kind: {ident: "p", "target_uri": uri}}) is None


@pytest.mark.parametrize(
    "bad",
    [{"args": "dialed"}, {"channel": {"id": "c", "caller": "0912"}},
     {"channel": {"id": "c", "dialplan": ["hotline"]}}],
)  # fmt: skip
def test_a_call_start_whose_caller_or_args_have_the_wrong_shape_is_refused(
    bad: dict[str, Any],
) -> None:
    assert parse_event({"type": "StasisStart", "channel": {"id": "c"}, **bad}) is None


def test_a_playback_without_target_uri_is_read_as_about_no_channel() -> None:
    event = parse_event({"type": "PlaybackFinished", "playback": {"id": "p"}})
    assert event is not None
    assert event_target(event) is None
