"""StasisBroadcast's side of ARI: claiming a call offered to several apps, and knowing what
plays on the calls another controller won (so a survivor can stop it when that one dies).

Asterisk (22.7+) sends ``CallBroadcast`` to every connected app the dialplan's filter matches;
``POST /events/claim`` gives the channel to the first claimant (204); the others get 404 from
Asterisk 22.10.1 (shared/ari/traces/stasis-broadcast-claim; the API docs say 409, both are taken
as lost), as does a claim after the dialplan's timeout (the call went to the fallback). A loser subscribes
to the channel, so that it sees its playbacks start and finish: ARI cannot list what plays on a
channel, and a survivor must stop the prompt before it can move the caller (Asterisk runs a
channel's commands one after the other, behind the playback).
"""

from __future__ import annotations

import structlog

from ivr.ari.client import AriClient
from ivr.ari.errors import AriError, AriUnavailable, Conflict, NotFound
from ivr.ari.event_types import AriEvent, event_target

log = structlog.get_logger("ivr.ari.claim")


async def claim(client: AriClient, channel_id: str) -> bool:
    """True when this app won the channel; False when another did or the offer had ended."""
    try:
        await client.request(
            "POST", "/events/claim", {"channelId": channel_id, "application": client.app}
        )
    except (Conflict, NotFound):
        return False
    return True


async def follow(client: AriClient, channel_id: str) -> None:
    """Subscribe this app to a channel another controller won (its events, not its control)."""
    try:
        await client.subscribe([f"channel:{channel_id}"])
    except (AriError, AriUnavailable) as e:
        log.info("could not follow a channel another controller won", call=channel_id, error=str(e))


class Playbacks:
    """The playback running on each channel, from the events (ours and the followed ones)."""

    def __init__(self) -> None:
        self.playing: dict[str, str] = {}  # channel id → playback id

    def see(self, event: AriEvent) -> None:
        kind = event["type"]
        if kind == "PlaybackStarted":
            channel = event_target(event)
            if channel is not None:
                self.playing[channel] = event["playback"]["id"]
        elif kind == "PlaybackFinished":
            channel = event_target(event)
            if channel is not None and self.playing.get(channel) == event["playback"]["id"]:
                del self.playing[channel]
        elif kind == "ChannelDestroyed":
            self.playing.pop(event["channel"]["id"], None)

    async def stop(self, client: AriClient, channel_id: str) -> bool:
        """Stop what plays on the channel; True when something was stopped."""
        playback = self.playing.pop(channel_id, None)
        if playback is None:
            return False
        try:
            await client.stop_playback(playback)
        except NotFound:  # it had just finished
            return False
        return True
