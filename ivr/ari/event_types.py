"""ARI events as the app reads them, typed, and which channel each one is about.

Asterisk's JSON is checked once, at the edge (:func:`parse_event`, called by the websocket
reader); past it, an event is an :class:`AriEvent`, so a misspelt field is a mypy error. Only the
fields this app reads are declared; the others travel along unread.
"""

from __future__ import annotations

from typing import Any, Required, TypedDict


class CallerId(TypedDict, total=False):
    number: str
    name: str


class DialplanPlace(TypedDict, total=False):
    context: str
    exten: str
    priority: int


class ChannelRef(TypedDict, total=False):
    id: Required[str]
    name: str
    state: str
    caller: CallerId
    dialplan: DialplanPlace
    linkedid: str


class PlaybackRef(TypedDict, total=False):
    id: Required[str]
    state: str
    target_uri: str


class RecordingRef(TypedDict, total=False):
    name: Required[str]
    state: str
    target_uri: str
    duration: float | None
    cause: str


class AriEvent(TypedDict, total=False):
    """Any event of the app's websocket; ``type`` says which (StasisStart, PlaybackFinished, …).

    ``_Resync``, ``_Resynced`` and ``_Wake`` (a wait timing out) are the app's own, never sent
    by Asterisk; ``synthetic`` marks an event the app made up after a reconnection because
    Asterisk's was lost.
    """

    type: Required[str]
    channel: ChannelRef
    peer: ChannelRef
    playback: PlaybackRef
    recording: RecordingRef
    args: list[str]
    digit: str
    cause: int
    dialstatus: str
    synthetic: bool


# Event types the controller never reads, which Asterisk is asked not to send (PUT
# /applications/{app}/eventFilter): a real call brings dozens of them (variables set, dialplan
# steps, state changes, bridges). A deny list, not an allow list: Asterisk 22.10 with an allow
# list stopped sending the app its StasisStart of a dialplan Stasis() (measured), and a new reader
# of an event (the cluster's) keeps working without a change here.
UNWANTED = (
    # a leg's progress (3 per desk dialled: a third of a call's events); a busy desk is told by
    # its hang-up cause, 17 in ChannelHangupRequest and ChannelDestroyed (Asterisk 22.10 sends
    # both before Dial's BUSY)
    "Dial",
    "ChannelVarset",
    "ChannelDialplan",
    "ChannelStateChange",
    "ChannelCallerId",
    "ChannelConnectedLine",
    "ChannelHold",
    "ChannelUnhold",
    "ChannelTalkingStarted",
    "ChannelTalkingFinished",
    "ChannelToneDetected",
    "ChannelUserevent",
    "ChannelEnteredBridge",
    "ChannelLeftBridge",
    "BridgeCreated",
    "BridgeDestroyed",
    "BridgeMerged",
    "BridgeVideoSourceChanged",
    "BridgeBlindTransfer",
    "BridgeAttendedTransfer",
    "PlaybackContinuing",
    "RecordingStarted",
    "EndpointStateChange",
    "DeviceStateChanged",
    "ContactStatusChange",
    "PeerStatusChange",
    "TextMessageReceived",
)

_REFS = {"channel": "id", "peer": "id", "playback": "id", "recording": "name"}
_TEXT_FIELDS = ("target_uri",)  # read by event_target: a string when present
_OBJECT_FIELDS = ("caller", "dialplan")  # read with .get() when a call starts: an object


def parse_event(raw: Any) -> AriEvent | None:
    """``raw`` (decoded JSON) as an event, or None when it lacks what the app relies on: a
    string ``type``, a string id (name, for recordings) in every object it refers to, a string
    ``target_uri`` and object ``caller``/``dialplan`` where present, and a list ``args``."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        return None
    if "args" in raw and not isinstance(raw["args"], list):
        return None
    for key, ident in _REFS.items():
        obj = raw.get(key)
        if obj is not None and not _is_ref(obj, ident):
            return None
    event: AriEvent = raw  # type: ignore[assignment]  # checked above: the wire boundary
    return event


def _is_ref(obj: Any, ident: str) -> bool:
    # plain loops: this runs for every event (a generator per check cost more than the checks)
    if not isinstance(obj, dict) or not isinstance(obj.get(ident), str):
        return False
    for key in _TEXT_FIELDS:
        if key in obj and not isinstance(obj[key], str):
            return False
    for key in _OBJECT_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, dict):
            return False
    return True


def event_target(event: AriEvent) -> str | None:
    """The channel an event is about: its channel (or peer), or the channel a playback or
    recording was started on; None for events about no channel of ours."""
    for ref in (event.get("channel"), event.get("peer")):
        if ref is not None:
            return ref["id"]
    playback = event.get("playback")
    if playback is not None:
        return _channel_of(playback.get("target_uri", ""))
    recording = event.get("recording")
    if recording is not None:
        return _channel_of(recording.get("target_uri", ""))
    return None


def _channel_of(target_uri: str) -> str | None:
    return target_uri.removeprefix("channel:") if target_uri.startswith("channel:") else None
