"""The Stasis app of one controller among several: claims the calls StasisBroadcast offers,
follows the ones its peers won, and takes a dead peer's calls over.

Each controller runs its own ARI application, ``<prefix><controller id>`` (Asterisk gives an
application to one websocket only); the dialplan's ``[hotline-cluster]`` offers each call to
every app matching ``^<prefix>``. Everything else (one task per call, the safety net, the
watchdog) is :class:`ivr.ari.app.StasisApp`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.ari.app import StasisApp
from ivr.ari.claim import Playbacks, claim, follow
from ivr.ari.errors import AriError, AriUnavailable, NotFound
from ivr.ari.event_types import AriEvent
from ivr.ari.overload import overloaded
from ivr.ari.session import AriCallSession
from ivr.cluster import adopt, resume
from ivr.cluster.presence import PeerWatch, Presence
from ivr.cluster.takeover import (
    TAKEOVER_ARG,
    Conversation,
    Taken,
    app_name,
    conversations,
    take_over,
)
from ivr.flow.context import CallContext, Clock
from ivr.flow.record import CallTrace, Identified, call_key, summary
from ivr.routing.model import DialNode, DirectoryNode, Routing
from ivr.session import CallInfo
from ivr.store.lease import interrupt

log = structlog.get_logger("ivr.cluster")

APP_PREFIX = "hotline-"
SETUP_SECONDS = 10.0  # an adoption's look-ups (ARI, the store) are tried again this long
SETUP_RETRY = 0.5
RESUME_SECONDS = 1.0  # a caller moved here waits in silence: the fallback after this long
REMEMBERED = 10_000  # calls taken over here remembered, so none is resumed twice
_SETUP_ERRORS = (AriError, AriUnavailable, SQLAlchemyError, OSError, TimeoutError)

T = TypeVar("T")


class ClusterApp(StasisApp):
    def __init__(
        self,
        *args: Any,
        engine: AsyncEngine,
        controller: str,
        prefix: str = APP_PREFIX,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.engine, self.controller, self.prefix = engine, controller, prefix
        self.playbacks = Playbacks()
        self.presence = Presence(engine, controller)
        self.peers = PeerWatch(engine, controller, self._peer_died)
        self.holding = asyncio.Event()  # set once this controller's presence lock is held
        self.taken_over: list[tuple[str, int]] = []  # (peer, callers moved), for tests and logs
        self.node = ""  # this Asterisk's entity id, from its events: part of a call's key
        # adopted callers moved into this app once their desk hung up: the session waits
        self.arriving: dict[str, tuple[AriCallSession, asyncio.Future[None]]] = {}
        self.adopt_recheck = adopt.RECHECK_SECONDS
        self.setup_seconds = SETUP_SECONDS
        self.resume_seconds = RESUME_SECONDS
        self.arrival_seconds = 10.0  # an adopted caller moved here arrives within this
        # the callers taken over here (resumed or adopted), oldest first: a caller that reaches
        # this app again (a move that arrived after its wait) is never resumed a second time
        self.taken: OrderedDict[str, None] = OrderedDict()
        # calls a peer won that this app follows (a subscription): its app lists them, and they
        # are never handed back from here (ARI lets any app continue any channel in Stasis)
        self.following: OrderedDict[str, None] = OrderedDict()

    # --- events -------------------------------------------------------------------------------

    def on_event(self, event: AriEvent) -> None:
        kind = event["type"]
        self.node = str(event.get("asterisk_id", "")) or self.node
        if kind in ("PlaybackStarted", "PlaybackFinished", "ChannelDestroyed"):
            self.playbacks.see(event)
        if kind == "ChannelDestroyed":
            self.following.pop(event["channel"]["id"], None)
        if kind == "CallBroadcast":
            self._spawn(self._offered(event["channel"]["id"]))
            return
        if kind == "StasisStart" and event.get("args", [])[:1] == [TAKEOVER_ARG]:
            channel_id = event["channel"]["id"]
            self.following.pop(channel_id, None)  # ours from now on
            waiting = self.arriving.pop(channel_id, None)
            if waiting is None and channel_id in self.routes:  # its session is running here
                self.routes[channel_id].queue.put_nowait(event)
            elif waiting is None and channel_id in self.taken:
                self._spawn(self._arrived_again(channel_id))
            elif waiting is None:
                self._take(channel_id)
                self._spawn(self._resume(event))
            else:  # an adopted caller: its events go to its session from now on
                session, arrived = waiting
                self.routes[session.id] = session
                arrived.set_result(None)
            return
        super().on_event(event)

    async def _offered(self, channel_id: str) -> None:
        """Claim a call unless past a limit (a peer or the fallback takes it then)."""
        why = overloaded(self.limits, len(self.calls), self.loop_lag.lag, self.ari_latency.value)
        if why is None and await claim(self.client, channel_id):
            return  # its StasisStart follows
        _remember(self.following, channel_id)
        await follow(self.client, channel_id)

    # --- a dead peer --------------------------------------------------------------------------

    async def _peer_died(self, peer: str) -> None:
        others = set(self.routes) | await self._held_by_others(peer)
        taken = await take_over(self.client, app_name(self.prefix, peer), self.playbacks, others)
        claimed = await self._claim(peer, taken)
        for talk in taken.conversations:
            self._spawn(self._adopt(talk))
        if claimed:
            self._spawn(self._settle(taken.callers, claimed))
        calls = taken.moved + len(taken.conversations)
        self.taken_over.append((peer, calls))
        log.warning(
            "nhận cuộc gọi từ bộ điều khiển đã ngừng",
            peer=peer,
            calls=calls,
            conversations=len(taken.conversations),
        )

    async def _claim(self, peer: str, taken: Taken) -> dict[str, str]:
        """The calls taken over become this controller's in the store before the dead one's
        lease ends (ivr.cluster.resume.claim_taken says why)."""
        channels = taken.callers + [t.caller for t in taken.conversations]
        try:
            return await resume.claim_taken(self.engine, peer, self.controller, channels)
        except SQLAlchemyError as e:  # the database away: the sweep closes them, as before
            log.warning("không ghi được quyền giữ cuộc gọi đã nhận", error=str(e)[:200])
            return {}

    async def _settle(self, callers: list[str], claimed: dict[str, str]) -> None:
        """A caller moved here that never arrives (it hung up during the move) has no session
        to end its call: past the arrival wait its claimed row is closed as interrupted."""
        await asyncio.sleep(self.arrival_seconds)
        keys = [claimed[c] for c in callers if c not in self.taken and c in claimed]
        if keys:
            try:
                await interrupt(self.engine, keys)
            except SQLAlchemyError as e:
                log.warning("không đóng được cuộc gọi đã nhận", error=str(e)[:200])

    async def _held_by_others(self, peer: str) -> set[str]:
        """Channels of calls in progress the store gives a controller other than the dead one
        (a dead peer's app lists the calls it only followed, having lost their claim)."""
        try:
            return await resume.held_by_others(self.engine, peer)
        except SQLAlchemyError as e:  # the database away: this controller's own calls still kept
            log.warning("không đọc được cuộc gọi của bộ điều khiển khác", error=str(e)[:200])
            return set()

    def _trace(
        self, info: CallInfo, stored: resume.Stored, routing: Routing, clock: Clock
    ) -> CallTrace:
        """The call as the store has it, to go on writing the same record."""
        record = stored.record
        trace = CallTrace(
            info=info,
            routing_version=record.routing_version if record else routing.version,
            started_at=record.started_at if record else clock(),
            answered_at=record.answered_at if record else None,
            steps=list(stored.steps),
            branch=record.branch if record else None,
            unit=record.unit if record else None,
        )
        trace.visited = list(summary(stored.steps)[0])
        return trace

    # --- taking a caller over, once --------------------------------------------------------

    def _take(self, channel_id: str) -> None:
        _remember(self.taken, channel_id)

    async def _arrived_again(self, channel_id: str) -> None:
        """A caller this controller took over already reached its app again: its call was ended
        here (e.g. its move arrived after the wait); it is hung up, not resumed twice."""
        log.warning("cuộc gọi đã được nhận trước đó; không tiếp tục lần nữa", call=channel_id)
        try:
            await self.client.hangup(channel_id)
        except NotFound:
            return
        except (AriError, AriUnavailable) as e:
            log.error(
                "không kết thúc được cuộc gọi được nhận lần thứ hai", call=channel_id, error=str(e)
            )
            await self._hand_back(channel_id, "taken over twice", leg_check=False)

    async def _patiently(
        self, what: str, call: str, fn: Callable[[], Awaitable[T]], seconds: float | None = None
    ) -> T:
        """``fn()``, tried again while ARI or the store fails, for ``seconds`` (by default
        ``setup_seconds``)."""
        patience = self.setup_seconds if seconds is None else seconds
        deadline = asyncio.get_running_loop().time() + patience
        while True:
            try:
                return await fn()
            except NotFound:
                raise
            except _SETUP_ERRORS as e:
                if asyncio.get_running_loop().time() + SETUP_RETRY > deadline:
                    raise
                log.info(
                    "takeover look-up failed; trying again", what=what, call=call, error=str(e)
                )
                await asyncio.sleep(SETUP_RETRY)

    async def _stored(
        self, node: str, channel_id: str, seconds: float | None = None
    ) -> resume.Stored | None:
        """The call as the store has it; None when the store could not be read."""
        key = call_key(node, channel_id)
        try:
            return await self._patiently(
                "store", channel_id, lambda: resume.load(self.engine, key), seconds
            )
        except _SETUP_ERRORS as e:
            log.error("không đọc được cuộc gọi được nhận", call=channel_id, error=str(e)[:200])
            return None
        except Exception:  # a row it cannot read: the call goes on all the same
            log.exception("không đọc được cuộc gọi được nhận từ kho bản ghi", call=channel_id)
            return None

    async def _resume(self, event: AriEvent) -> None:
        ch = event["channel"]
        node = str(event.get("asterisk_id", "")) or self.node
        info = self._call_info(ch)
        task = asyncio.current_task()
        if task is not None:
            self.calls[info.channel_id] = task
        try:
            routing = self.routing()
            session = self._session(info, routing)
            self.routes[info.channel_id] = session
            # not known: the fallback (the caller hears nothing while the store is asked)
            stored = await self._stored(node, info.channel_id, self.resume_seconds)
        except Exception:  # the safety net: a caller moved here never waits unowned
            log.exception("could not resume a call taken over; handing it back", call=ch["id"])
            self.calls.pop(info.channel_id, None)
            self.routes.pop(info.channel_id, None)
            await self._hand_back(info.channel_id, None, leg_check=False)
            return
        if stored is not None and stored.ended:  # ended meanwhile (by whoever): not again
            self.routes.pop(info.channel_id, None)
            self.calls.pop(info.channel_id, None)
            await self._arrived_again(info.channel_id)
            return
        clock = self.clock_for(info)
        known = stored or resume.Stored(None, ())
        trace = self._trace(info, known, routing, clock)
        at = resume.resume_at(routing, known.steps) if stored is not None else None
        log.warning("cuộc gọi được tiếp tục sau khi nhận", call=info.channel_id, node=at)
        try:
            await resume.continue_call(
                session, routing, Identified(self.observer, node), clock, trace, at
            )
        finally:
            self.routes.pop(info.channel_id, None)
            for leg in session.held_legs():  # desks dialled again, kept until their end
                self.routes.pop(leg, None)
            self.calls.pop(info.channel_id, None)

    # --- a dead peer's conversation -----------------------------------------------------------

    async def _adopt(self, talk: Conversation) -> None:
        """Keep a dead peer's conversation going; end or go on with the call as it would have.
        A look-up that fails (ARI or the store away past ``setup_seconds``) never leaves the
        conversation unwatched: it is watched and recorded with what is known."""
        self._take(talk.caller)
        task = asyncio.current_task()
        if task is not None:
            self.calls[talk.caller] = task
        session: AriCallSession | None = None
        try:
            session, ctx, at = await self._adoption(talk)
            try:
                await self._watch(talk, session, ctx, at)
            except Exception as exc:  # our bug: the record still ends, as for any call
                log.exception("lỗi khi theo dõi cuộc đàm thoại được nhận", call=talk.caller)
                ctx.trace.error = f"{type(exc).__name__}: {exc}"
                ctx.observer.call_ended(ctx.trace.snapshot(ctx.clock()))
        finally:
            held = session.held_legs() if session is not None else ()
            for channel in (talk.caller, talk.leg, *held):
                if session is not None and self.routes.get(channel) is session:
                    self.routes.pop(channel, None)
            self.arriving.pop(talk.caller, None)
            self.calls.pop(talk.caller, None)

    async def _adoption(
        self, talk: Conversation
    ) -> tuple[AriCallSession, CallContext, resume.Position]:
        """The adopted call's session and record, from ARI and the store as far as they answer."""
        node = self.node or await self._node_of(talk.caller)
        try:
            ch: Any = await self._patiently(
                "channel",
                talk.caller,
                lambda: self.client.request("GET", f"/channels/{talk.caller}"),
            )
        except NotFound:
            ch = None  # the caller has just gone: the record still ends here
        except _SETUP_ERRORS as e:
            log.error("không đọc được kênh của người gọi", call=talk.caller, error=str(e)[:200])
            ch = None
        stored = await self._stored(node, talk.caller)
        info = self._adopted_info(talk.caller, ch, stored)
        routing = self.routing()
        session = self._session(info, routing)
        clock = self.clock_for(info)
        known = stored or resume.Stored(None, ())
        trace = self._trace(info, known, routing, clock)
        at = resume.position(routing, known.steps) if stored else resume.Position(None)
        for channel in (talk.caller, talk.leg):
            self.routes[channel] = session
        log.warning("cuộc đàm thoại được giữ sau khi nhận", call=talk.caller, node=at.node)
        ctx = resume.restart(session, routing, Identified(self.observer, node), clock, trace)
        ctx.step("takeover", "takeover", "adopted", detail=at.node or "")
        return session, ctx, at

    def _adopted_info(
        self, caller: str, ch: dict[str, Any] | None, stored: resume.Stored | None
    ) -> CallInfo:
        """Who is calling: from the channel, else from the stored record, else only its id."""
        if isinstance(ch, dict) and ch.get("id") == caller:
            return self._call_info(ch)  # type: ignore[arg-type]
        record = stored.record if stored is not None else None
        if record is None:
            return CallInfo(caller, "", linked_id=caller)
        return CallInfo(
            caller, record.caller_number, record.caller_name, record.dialed, record.linked_id
        )

    async def _node_of(self, caller: str) -> str:
        """This Asterisk's entity id (part of the call's key): from ARI, else from the store."""
        try:
            return await self._patiently("node", caller, self._entity_id)
        except _SETUP_ERRORS as e:
            log.warning(
                "không hỏi được Asterisk mã nút (entity id)", call=caller, error=str(e)[:200]
            )
        try:
            return await resume.node_of(self.engine, caller)
        except Exception as e:  # the store away too: the key has no node, the call is watched
            log.error("không biết nút của cuộc gọi được nhận", call=caller, error=str(e)[:200])
            return ""

    async def _watch(
        self,
        talk: Conversation,
        session: AriCallSession,
        ctx: CallContext,
        at: resume.Position,
    ) -> None:
        trace, clock = ctx.trace, ctx.clock
        await adopt.subscribe(self.client, talk)
        ended = await adopt.until_one_leaves(self.client, session, talk, self.adopt_recheck)
        self.routes.pop(talk.leg, None)
        self.routes.pop(talk.caller, None)
        next_node = _conversation_over(ctx, at, ended.by)
        await adopt.unsubscribe(self.client, talk)
        await adopt.part(self.client, talk, ended)
        if ended.by == "callee" and next_node is not None:
            try:
                await self._into_our_app(session)
            except (AriError, AriUnavailable, TimeoutError) as e:  # the caller left meanwhile
                log.warning(
                    "adopted caller could not be moved here", call=talk.caller, error=str(e)
                )
                ctx.observer.call_ended(trace.snapshot(clock()))
                return
            await resume.go_on(ctx, next_node)
            return
        if ended.by == "callee":
            with contextlib.suppress(AriError, AriUnavailable):
                await session.hangup("normal")
        ctx.observer.call_ended(trace.snapshot(clock()))

    async def _into_our_app(self, session: AriCallSession) -> None:
        """Move the caller here; its events reach ``session`` from its StasisStart on."""
        arrived = asyncio.get_running_loop().create_future()
        self.arriving[session.id] = (session, arrived)
        await self.client.request(
            "POST",
            f"/channels/{session.id}/move",
            {"app": self.client.app, "appArgs": TAKEOVER_ARG},
        )
        await asyncio.wait_for(arrived, self.arrival_seconds)

    async def _entity_id(self) -> str:
        info = await self.client.request("GET", "/asterisk/info")
        return str((info or {}).get("system", {}).get("entity_id", ""))

    # --- channels that look unowned -----------------------------------------------------------

    async def _hand_back(self, channel_id: str, why: str | None, *, leg_check: bool = True) -> None:
        """Not a peer's call this app only follows (its listing shows them), nor one the store
        gives a live peer (followed by a previous life of this controller), nor a channel
        talking in a bridge this controller does not hold: a peer adopted that conversation
        when this controller (its previous life) died."""
        if why in ("orphan", "watchdog") and await self._held_elsewhere(channel_id):
            log.info("cuộc gọi do bộ điều khiển khác giữ; không trả lại", call=channel_id)
            return
        await super()._hand_back(channel_id, why, leg_check=leg_check)

    async def _held_elsewhere(self, channel_id: str) -> bool:
        if channel_id in self.following:
            return True
        try:
            if channel_id in await resume.held_by_others(self.engine, self.controller):
                return True
        except SQLAlchemyError as e:  # the store away: what ARI shows decides
            log.info("không đọc được chủ của cuộc gọi", call=channel_id, error=str(e)[:200])
        return await self._bridged_elsewhere(channel_id)

    async def _bridged_elsewhere(self, channel_id: str) -> bool:
        try:
            bridges = await self.client.request("GET", "/bridges")
        except (AriError, AriUnavailable):
            return False
        if not isinstance(bridges, list):
            return False
        members = {c for b in bridges if isinstance(b, dict) for c in b.get("channels", [])}
        if channel_id not in members:
            return False
        return any(channel_id in (t.caller, t.leg) for t in conversations(bridges, members))

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        await self.presence.hold()
        self.holding.set()
        watch = asyncio.create_task(self.peers.run(), name="peer-watch")
        keep = asyncio.create_task(self.presence.keep(), name="presence")
        try:
            await super().run()
        finally:
            watch.cancel()
            keep.cancel()
            await asyncio.gather(watch, keep, return_exceptions=True)
            await self.peers.close()
            await self.presence.release()


def _remember(seen: OrderedDict[str, None], channel_id: str) -> None:
    """Add ``channel_id``, the oldest forgotten past ``REMEMBERED`` (an end event missed)."""
    seen[channel_id] = None
    seen.move_to_end(channel_id)
    while len(seen) > REMEMBERED:
        seen.popitem(last=False)


def _conversation_over(ctx: CallContext, at: resume.Position, by: str) -> str | None:
    """The dial step the dead controller would have written (answered, the talk time from the
    desk's answer), and the node after the conversation."""
    trace = ctx.trace
    trace.hangup_by = by
    if at.node is None:  # the store could not say where the call was: it ends with the talk
        return None
    node = ctx.routing.nodes.get(at.node)
    kind = "directory" if isinstance(node, DirectoryNode) else "dial"
    if at.since is not None:
        trace.talk_seconds += max(0.0, (ctx.clock() - at.since).total_seconds())
    trace.endpoint = at.detail or None
    ctx.step(at.node or "", kind, "answered", detail=f"{at.detail}=answered")
    if by == "caller" or not isinstance(node, DialNode | DirectoryNode):
        return None
    return node.on.answered
