"""Taking a dead controller's calls over, one ARI request or two per channel.

Its channels are still in its app (Asterisk keeps them in Stasis when the websocket goes): for
each, a leg it had dialled is hung up (the caller will be dialled again or go to the
operators); a caller first has its prompt stopped (else Asterisk would finish it before our next
command), then is moved into our app with the argument ``takeover``, where the call goes on
(:mod:`ivr.cluster.resume`). A caller in a conversation with a clerk is neither moved nor cut:
the bridge and both legs are adopted where they are (:mod:`ivr.cluster.adopt`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from dataclasses import dataclass, field

import structlog

from ivr.ari.claim import Playbacks
from ivr.ari.client import AriClient
from ivr.ari.errors import AriError, AriUnavailable, NotFound

log = structlog.get_logger("ivr.cluster")

TAKEOVER_ARG = "takeover"


def app_name(prefix: str, controller: str) -> str:
    """A controller's ARI application: the dialplan offers calls to every ``^<prefix>``."""
    return f"{prefix}{controller}"


@dataclass(frozen=True, slots=True)
class Conversation:
    """A caller and the desk's leg in a bridge of the dead controller."""

    bridge: str
    caller: str
    leg: str


@dataclass
class Taken:
    moved: int = 0  # callers moved into our app (resumed or handed to the fallback)
    callers: list[str] = field(default_factory=list)  # their channel ids
    conversations: list[Conversation] = field(default_factory=list)  # to adopt where they are


async def take_over(
    client: AriClient, peer_app: str, playbacks: Playbacks, others: Collection[str] = ()
) -> Taken:
    """Move the dead app's callers into ours and find its conversations. ``others``: channels a
    live controller holds (this one's, and those the store gives another owner): the dead app
    lists them too when it followed a call it lost the claim for (a subscription), and they are
    left alone."""
    try:
        app = await client.application(peer_app)
    except NotFound:
        return Taken()
    skip = set(others)
    channels = {c for c in app.channel_ids if c not in skip and _caller_of(c) not in skip}
    talks = conversations(await client.request("GET", "/bridges"), channels)
    bridged = {c for t in talks for c in (t.caller, t.leg)}
    loose = [c for c in app.channel_ids if c in channels and c not in bridged]
    moved = await asyncio.gather(
        *(_one(client, c, playbacks) for c in loose), return_exceptions=True
    )
    for channel, result in zip(loose, moved, strict=True):
        if isinstance(result, BaseException):
            log.error("could not take a channel over", call=channel, error=str(result))
    callers = [c for c, r in zip(loose, moved, strict=True) if r is True]
    return Taken(len(callers), callers, talks)


def conversations(bridges: object, channels: set[str]) -> list[Conversation]:
    """The bridges holding two of ``channels``: a caller and a leg it dialled (``dialed,<caller>``
    is the leg's Stasis argument; the leg's id starts with the caller's)."""
    found = []
    for b in bridges if isinstance(bridges, list) else []:
        members = [c for c in b.get("channels", []) if c in channels]
        if len(members) != 2:
            continue
        a, c = members
        caller, leg = (a, c) if c.startswith(a) else (c, a)
        found.append(Conversation(str(b["id"]), caller, leg))
    return found


async def _one(client: AriClient, channel_id: str, playbacks: Playbacks) -> bool:
    try:
        ch = await client.channel(channel_id)
    except NotFound:
        return False
    if _dialled(channel_id, ch.app_data):  # a desk still ringing: the survivor dials again
        with contextlib.suppress(AriError, AriUnavailable):
            await client.hangup(channel_id)
        return False
    await playbacks.stop(client, channel_id)
    await client.request(
        "POST", f"/channels/{channel_id}/move", {"app": client.app, "appArgs": TAKEOVER_ARG}
    )
    return True


def _caller_of(channel_id: str) -> str:
    """The caller's channel of a leg the session dialled (``<caller>-leg<n>``), else itself."""
    return channel_id.split("-leg", 1)[0]


def _dialled(channel_id: str, app_data: str) -> bool:
    """A leg a controller dialled: its Stasis argument, or (still ringing, not in Stasis yet) the
    id the session gave it, ``<caller>-leg<n>`` (Asterisk's own ids are digits and a dot)."""
    return ",dialed," in f",{app_data}," or "-leg" in channel_id
