"""A dead controller's conversation, adopted where it is: the caller and the desk go on talking.

The bridge and both legs stay as they are (moving a bridged channel would take it out of the
bridge); the survivor subscribes to both legs and writes the call again under its own name with
a step ``takeover``/``adopted``. When one side hangs up it does what the dead controller would
have done: the caller gone, it hangs the desk up and ends the call; the desk gone, it destroys
the bridge, moves the caller into its own app and goes on with the node after the conversation
(the survey), or ends the call. The record is written once, its talk time counted from the
desk's answer (the step ``talking`` the dead controller wrote) to the hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from ivr.ari.client import AriClient
from ivr.ari.errors import AriError, AriUnavailable, NotFound
from ivr.ari.event_types import event_target
from ivr.ari.session import AriCallSession
from ivr.cluster.takeover import Conversation

log = structlog.get_logger("ivr.cluster")

GONE = {"ChannelHangupRequest", "ChannelDestroyed", "StasisEnd"}
RECHECK_SECONDS = 5.0  # a hang-up event missed (e.g. before the subscription): asked again


@dataclass(frozen=True, slots=True)
class Ended:
    by: str  # "caller" or "callee"


async def subscribe(client: AriClient, talk: Conversation) -> None:
    """This app gets both legs' events (their control needs no subscription). Refused or
    unanswered, the legs are still asked after every ``RECHECK_SECONDS``."""
    try:
        await client.subscribe(f"channel:{c}" for c in (talk.caller, talk.leg))
    except (AriError, AriUnavailable) as e:
        log.warning(
            "could not subscribe to an adopted conversation", call=talk.caller, error=str(e)
        )


async def unsubscribe(client: AriClient, talk: Conversation) -> None:
    with contextlib.suppress(AriError, AriUnavailable):
        await client.unsubscribe(f"channel:{c}" for c in (talk.caller, talk.leg))


async def until_one_leaves(
    client: AriClient, session: AriCallSession, talk: Conversation, recheck: float
) -> Ended:
    """Who hung up first, from the legs' events (each routed to ``session``'s queue), and from
    asking ARI every ``recheck`` s in case an event was missed."""
    while True:
        for who, channel in (("caller", talk.caller), ("callee", talk.leg)):
            try:
                await client.channel(channel)
            except NotFound:
                return Ended(who)
            except (AriError, AriUnavailable) as e:  # ARI slow or away: the events still count
                log.info("could not look at an adopted leg", call=channel, error=str(e))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(recheck):
                while True:
                    ev = await session.queue.get()
                    if ev["type"] not in GONE:
                        continue
                    target = event_target(ev)
                    if target == talk.caller:
                        return Ended("caller")
                    if target == talk.leg:
                        return Ended("callee")


async def part(client: AriClient, talk: Conversation, ended: Ended) -> None:
    """After the conversation: the bridge goes, and the desk too when the caller left."""
    if ended.by == "caller":
        with contextlib.suppress(AriError, AriUnavailable):
            await client.hangup(talk.leg)
    with contextlib.suppress(AriError, AriUnavailable):
        await client.destroy_bridge(talk.bridge)
