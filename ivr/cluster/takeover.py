"""Taking a dead controller's calls over, one ARI request or two per channel.

Its channels are still in its app (Asterisk keeps them in Stasis when the websocket goes): for
each, a leg it had dialled is hung up (the caller will be dialled again or go to the
operators); a caller first has its prompt stopped (else Asterisk would finish it before our next
command), then is moved into our app with the argument ``takeover``, where the call goes on
(:mod:`ivr.cluster.resume`). A caller in a conversation with a clerk is left in the bridge:
moving it would cut the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from ivr.ari.claim import Playbacks
from ivr.ari.client import AriClient
from ivr.ari.errors import AriError, AriUnavailable, NotFound

log = structlog.get_logger("ivr.cluster")

TAKEOVER_ARG = "takeover"


def app_name(prefix: str, controller: str) -> str:
    """A controller's ARI application: the dialplan offers calls to every ``^<prefix>``."""
    return f"{prefix}{controller}"


async def take_over(client: AriClient, peer_app: str, playbacks: Playbacks) -> int:
    """Move the dead app's callers into ours; returns how many were moved."""
    try:
        app = await client.application(peer_app)
    except NotFound:
        return 0
    bridged = await _bridged(client)
    moved = await asyncio.gather(
        *(_one(client, c, playbacks, bridged) for c in app.channel_ids), return_exceptions=True
    )
    for channel, result in zip(app.channel_ids, moved, strict=True):
        if isinstance(result, BaseException):
            log.error("could not take a channel over", call=channel, error=str(result))
    return sum(1 for r in moved if r is True)


async def _bridged(client: AriClient) -> set[str]:
    body = await client.request("GET", "/bridges")
    return {c for b in body or [] for c in b.get("channels", [])}


async def _one(client: AriClient, channel_id: str, playbacks: Playbacks, bridged: set[str]) -> bool:
    try:
        ch = await client.channel(channel_id)
    except NotFound:
        return False
    if ",dialed," in f",{ch.app_data},":
        with contextlib.suppress(AriError, AriUnavailable):
            await client.hangup(channel_id)
        return False
    if channel_id in bridged:
        log.warning("caller in a conversation left in its bridge", call=channel_id)
        return False
    await playbacks.stop(client, channel_id)
    await client.request(
        "POST", f"/channels/{channel_id}/move", {"app": client.app, "appArgs": TAKEOVER_ARG}
    )
    return True
