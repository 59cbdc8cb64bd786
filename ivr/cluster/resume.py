"""Where a call taken over from a dead controller goes on.

The dead controller's steps (in the store) say where the call was: the node after its last step
is the one it was in. A menu, a prompt, an office-hours check or a goodbye can simply be run again (the
caller hears the menu again). Desks that were ringing are dialled again by the survivor, without
the announcement the caller already heard: the caller keeps hearing ringback and keeps the desk
they chose (the dead controller's legs cannot be kept: a leg answered later would enter the dead
app). A conversation is not resumed here but adopted where it is (:mod:`ivr.cluster.adopt`).
Anything else (a message being recorded, the directory) is handed to the dialplan's fallback, the
operators. The record goes on in the same row: same key, the old steps kept, the new ones after.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bound_contextvars

from ivr.flow.context import CallContext, Clock
from ivr.flow.engine import MAX_NODES_PER_CALL
from ivr.flow.hand_back import hand_back
from ivr.flow.nodes import dial, run_node
from ivr.flow.record import CallObserver, CallRecord, CallTrace, Disposition, Step
from ivr.routing.dated import local_date
from ivr.routing.model import DialNode, HangupNode, HoursNode, MenuNode, PromptNode, Routing
from ivr.session import CallerHangup, CallSession
from models import Call, CallStep

log = structlog.get_logger("ivr.cluster")

REPLAYABLE = (MenuNode, PromptNode, HoursNode, HangupNode)  # run again: harmless
_MENU_STAYS = {"repeat", "no_input", "invalid"}


def next_node(routing: Routing, step: Step) -> str | None:
    """The node a call went to after ``step``; None when that cannot be known from the step."""
    node = routing.nodes.get(step.node)
    if isinstance(node, MenuNode):
        if step.outcome == "chosen":
            return node.choices.get(step.input)
        if step.outcome in _MENU_STAYS:
            return step.node
        return node.default if step.outcome == "exhausted" else None
    if isinstance(node, HoursNode):
        if step.outcome == "open":
            return node.open
        if step.outcome == "holiday" and node.holiday:
            return node.holiday
        return node.closed
    if isinstance(node, PromptNode):
        return node.next
    return None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a call was: its node, and the live state the node had reached ("ringing" with the
    desks dialled, "talking" with the one that answered, or "")."""

    node: str | None
    state: str = ""
    detail: str = ""
    since: dt.datetime | None = None


def position(routing: Routing, steps: Sequence[Step]) -> Position:
    node: str | None = routing.hotline.entry
    state: Step | None = None
    for step in steps:
        if step.kind == "takeover":  # an earlier survivor's mark: the call went on where it was
            continue
        if node is None:
            return Position(None)
        if step.kind == "state":  # the node's live state: it goes on in the same node
            node, state = step.node, step
            continue
        node, state = next_node(routing, step), None
    if state is None:
        return Position(node)
    return Position(node, state.outcome, state.detail, state.at)


def resume_at(routing: Routing, steps: Sequence[Step]) -> str | None:
    """The node to run again for a call whose steps are ``steps``, or None: the fallback. A dial
    node is run again (its desks dialled again) unless its desk had answered."""
    at = position(routing, steps)
    node = routing.nodes.get(at.node) if at.node else None
    if isinstance(node, DialNode) and at.state in ("", "ringing"):
        return at.node
    if at.state or not isinstance(node, REPLAYABLE):
        return None
    return at.node


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store knows of a call in progress."""

    record: CallRecord | None
    steps: tuple[Step, ...]
    ended: bool = False  # the store has the call's end already (whoever wrote it)


async def held_by_others(engine: AsyncEngine, dead: str) -> set[str]:
    """The channel ids of calls in progress whose owner is a controller other than ``dead``."""
    async with engine.connect() as conn:
        keys = await conn.scalars(
            select(Call.id).where(
                Call.disposition == Disposition.IN_PROGRESS.value, Call.controller != dead
            )
        )
        return {key.rsplit("/", 1)[-1] for key in keys}


async def claim_taken(
    engine: AsyncEngine, dead: str, me: str, channels: list[str]
) -> dict[str, str]:
    """Make ``me`` the owner of the dead controller's calls in progress on ``channels`` (the
    callers moved here, the conversations adopted) before its lease is ended: the sweep that
    follows the lease's end closes only the calls nobody took over. Without it, a sweep that came
    before the survivor's first write of a resumed call closed it as `interrupted`, and the
    survivor's later writes could not open it again (a real run: answered by the desk, recorded
    as interrupted by the dead controller). The keys claimed, by channel."""
    if not channels:
        return {}
    async with engine.begin() as conn:
        rows = await conn.execute(
            update(Call)
            .where(
                Call.controller == dead,
                Call.disposition == Disposition.IN_PROGRESS.value,
                Call.channel_id.in_(channels),
            )
            .values(controller=me)
            .returning(Call.channel_id, Call.id)
        )
        return {row.channel_id: row.id for row in rows}


async def load(engine: AsyncEngine, key: str) -> Stored:
    async with engine.connect() as conn:
        call = (await conn.execute(select(Call).where(Call.id == key))).one_or_none()
        rows = await conn.execute(
            select(
                CallStep.node,
                CallStep.kind,
                CallStep.outcome,
                CallStep.input,
                CallStep.detail,
                CallStep.at,
            )
            .where(CallStep.call_id == key)
            .order_by(CallStep.seq)
        )
        steps = tuple(Step(r.node, r.kind, r.outcome, r.input, r.detail, r.at) for r in rows)
    if call is None:
        return Stored(None, steps)
    ended = call.disposition not in (Disposition.IN_PROGRESS.value, "interrupted")
    return Stored(_record(call), steps, ended)


async def node_of(engine: AsyncEngine, channel_id: str) -> str:
    """The node (Asterisk entity id) of the call in progress on ``channel_id``, "" if none."""
    async with engine.connect() as conn:
        node = await conn.scalar(
            select(Call.node)
            .where(
                Call.channel_id == channel_id,
                Call.disposition == Disposition.IN_PROGRESS.value,
            )
            .limit(1)
        )
    return node or ""


def _record(row: object) -> CallRecord:
    get = row._mapping  # type: ignore[attr-defined]
    return CallRecord(
        channel_id=get["channel_id"],
        linked_id=get["linked_id"],
        caller_number=get["caller_number"],
        caller_name=get["caller_name"] or "",
        dialed=get["dialed"] or "",
        routing_version=get["routing_version"],
        started_at=get["started_at"],
        answered_at=get["answered_at"],
        ended_at=None,
        disposition=Disposition.IN_PROGRESS,
        path=(),
        digits="",
        branch=get["branch"],
        unit=get["unit"],
        endpoint=None,
        wait_seconds=0.0,
        talk_seconds=0.0,
        steps=(),
        voicemail=None,
        error=None,
        hangup_by=None,
        node=get["node"],
    )


async def continue_call(
    session: CallSession,
    routing: Routing,
    observer: CallObserver,
    clock: Clock,
    trace: CallTrace,
    node: str | None,
) -> CallRecord:
    """Go on with a taken-over call from ``node`` (None: hand it to the fallback), writing the
    same record: the old steps are given to the observer again (a keyed no-op in the store)."""
    info = session.info
    with bound_contextvars(call=info.channel_id, linkedid=info.linked_id, node=node):
        ctx = restart(session, routing, observer, clock, trace)
        ctx.step("takeover", "takeover", "resumed" if node else "fallback", detail=node or "")
        return await go_on(ctx, node)


def restart(
    session: CallSession, routing: Routing, observer: CallObserver, clock: Clock, trace: CallTrace
) -> CallContext:
    """The call's record written again by this controller (same key, the old steps kept)."""
    observer.call_started(trace.snapshot())
    for step in trace.steps:
        observer.call_step(session.info.channel_id, step)
    return CallContext(session, routing, trace, clock, observer)


async def go_on(ctx: CallContext, node: str | None) -> CallRecord:
    session, routing, trace = ctx.session, ctx.routing, ctx.trace
    cancelled: asyncio.CancelledError | None = None
    try:
        if node is None:
            trace.handed_back = True
            fb = routing.hotline.fallback
            await session.continue_in_dialplan(fb.context, fb.extension, fb.priority)
        else:
            if trace.answered_at is None:
                await session.answer()
                trace.answered_at = ctx.clock()
            node = await _first(ctx, node)
            for _ in range(MAX_NODES_PER_CALL):
                if node is None:
                    break
                node = await run_node(ctx, node)
            await session.hangup("normal")
    except CallerHangup:
        trace.hangup_by = trace.hangup_by or "caller"
    except Exception as exc:  # the safety net, as for any call
        trace.error = f"{type(exc).__name__}: {exc}"
        log.exception("taken-over call failed, handing back to the dialplan")
        await hand_back(session, lambda: routing.hotline.fallback, log, gone=(CallerHangup,))
    except asyncio.CancelledError as exc:
        cancelled = exc
        trace.error = "shutdown: the controller stopped during the call"
        await hand_back(session, lambda: routing.hotline.fallback, log, gone=(CallerHangup,))
    record = trace.snapshot(ctx.clock())
    ctx.observer.call_ended(record)
    if cancelled is not None:
        raise cancelled
    return record


async def _first(ctx: CallContext, name: str) -> str | None:
    """The first node run again. Desks that were ringing are dialled again without the
    announcement (the caller heard it) and their ringing so far counts as waiting; desks rung in
    turn go on from the desk after the one that was ringing."""
    node = ctx.routing.nodes[name]
    at = position(ctx.routing, ctx.trace.steps)
    if not (isinstance(node, DialNode) and at.state == "ringing" and at.node == name):
        return await run_node(ctx, name)
    since = ringing_since(ctx.trace.steps, name) or at.since
    if since is not None:
        ctx.trace.wait_seconds += max(0.0, (ctx.clock() - since).total_seconds())
    update: dict[str, object] = {"prompts": []}
    if node.strategy == "in_turn":
        update["endpoints"] = still_to_ring(ctx, node, at.detail)
    return await dial(ctx, name, node.model_copy(update=update))


def ringing_since(steps: Sequence[Step], name: str) -> dt.datetime | None:
    """When the desks of the dial node ``name`` the call was in began to ring (the first of its
    "ringing" states since the call entered it: desks rung in turn write one each)."""
    since = None
    for step in steps:
        if step.kind == "state" and step.node == name and step.outcome == "ringing":
            since = since or step.at
        elif step.kind != "takeover":
            since = None
    return since


def still_to_ring(ctx: CallContext, node: DialNode, ringing: str) -> list[str]:
    """The desks of an in-turn node from the one after ``ringing`` (the last one rung again when
    it was the last: its time was cut short); all of them when ``ringing`` is not among them."""
    day = local_date(ctx.routing, ctx.clock())
    desks = list(node.endpoints) or (
        list(ctx.routing.branches[node.branch].on(day).endpoints) if node.branch else []
    )
    if ringing not in desks:
        return desks
    after = desks.index(ringing) + 1
    return desks[after:] or desks[-1:]
