"""What each node type does. Each handler returns the name of the next node, or None at the end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ivr.flow.context import CallContext
from ivr.flow.hours import OfficeState, office_state
from ivr.flow.record import Voicemail
from ivr.flow.speech import judge
from ivr.flow.survey import survey
from ivr.routing.dated import Reach, Resolution, local_date, moved_prompt, resolve, unit_prompt
from ivr.routing.model import (
    DialNode,
    DialOutcomes,
    DialplanNode,
    DirectoryNode,
    HangupNode,
    HoursNode,
    MenuNode,
    PromptNode,
    VoicemailNode,
)
from ivr.session import (
    CallerHangup,
    DialRequest,
    DialResult,
    DialStatus,
    HangupWhileRinging,
    RecordRequest,
    overall_status,
)

Handler = Callable[[CallContext, str, Any], Awaitable[str | None]]


async def run_node(ctx: CallContext, name: str) -> str | None:
    node = ctx.routing.nodes[name]
    ctx.trace.visited.append(name)
    if node.branch is not None:
        ctx.trace.branch = node.branch
    handler: Handler = _HANDLERS[node.type]
    return await handler(ctx, name, node)


async def prompt(ctx: CallContext, name: str, node: PromptNode) -> str | None:
    await ctx.session.play(node.prompts)
    ctx.step(name, "prompt", "played")
    return node.next


async def menu(ctx: CallContext, name: str, node: MenuNode) -> str | None:
    s = ctx.session
    failures = 0
    while failures < node.retries:
        await s.play(node.prompts)
        digits = await s.read_digits(1, node.timeout, node.timeout, terminators="")
        if digits == node.repeat_key:
            ctx.step(name, "menu", "repeat", digits)
            continue
        if digits in node.choices:
            ctx.step(name, "menu", "chosen", digits)
            return node.choices[digits]
        failures += 1
        s.flush_digits()
        if digits == "":
            ctx.step(name, "menu", "no_input")
            retry_prompts = node.no_input_prompts
        else:
            ctx.step(name, "menu", "invalid", digits)
            retry_prompts = node.invalid_prompts
        if retry_prompts:
            await s.play(retry_prompts)
    ctx.step(name, "menu", "exhausted")
    return node.default


async def hours(ctx: CallContext, name: str, node: HoursNode) -> str | None:
    schedule = ctx.routing.schedule_for(node)
    verdict = office_state(schedule, ctx.clock(), ctx.routing.hotline.timezone)
    ctx.step(name, "hours", verdict.state.value, detail=verdict.reason)
    if verdict.state is OfficeState.OPEN:
        return node.open
    if verdict.state is OfficeState.HOLIDAY and node.holiday:
        return node.holiday
    return node.closed


async def dial(ctx: CallContext, name: str, node: DialNode) -> str | None:
    announce: list[str] = []
    if node.announce == "while_ringing":
        announce = list(node.prompts)  # the adapter dials first, then plays them
    elif node.prompts:
        await ctx.session.play(node.prompts, interruptible=False)
    day = local_date(ctx.routing, ctx.clock())
    endpoints = node.endpoints or (
        list(ctx.routing.branches[node.branch].on(day).endpoints) if node.branch else []
    )
    how = _Dial(_branch_label(ctx, node.branch), node.ring_seconds, node.music, announce)
    if node.strategy == "ring_all":
        result = await _dial_once(ctx, name, endpoints, how)
    else:
        result = await _dial_in_turn(ctx, name, endpoints, how)
    return _after_dial(ctx, name, "dial", result, node.on)


@dataclass(frozen=True, slots=True)
class _Dial:
    """How a node dials: the clerk's caller id, how long each desk rings, what the caller hears."""

    label: str
    ring: float
    music: str
    announce: list[str] = field(default_factory=list)


async def _dial_once(ctx: CallContext, name: str, endpoints: list[str], how: _Dial) -> DialResult:
    info = ctx.session.info
    request = DialRequest(
        endpoints=endpoints,
        ring_seconds=how.ring,
        caller_id_name=how.label,
        caller_id_number=info.caller_number,
        music=how.music,
        announce=how.announce,
        on_answer=lambda endpoint: ctx.step(name, "state", "talking", detail=endpoint),
    )
    ctx.step(name, "state", "ringing", detail=",".join(endpoints))  # live state: the wallboard
    try:
        return await ctx.session.dial(request)
    except HangupWhileRinging as e:
        ctx.trace.wait_seconds += e.waited  # the caller waited until they gave up
        raise


async def _dial_in_turn(
    ctx: CallContext, name: str, endpoints: list[str], how: _Dial
) -> DialResult:
    statuses: dict[str, DialStatus] = {}
    waited = 0.0
    result = DialResult(DialStatus.UNREACHABLE)
    for endpoint in endpoints:
        try:
            result = await _dial_once(ctx, name, [endpoint], how)
        except HangupWhileRinging:
            ctx.trace.wait_seconds += waited  # and the desks rung before this one
            raise
        how = replace(how, announce=[])  # said once, while the first desk rings
        waited += result.wait_seconds
        statuses.update(result.per_endpoint)
        if result.status is DialStatus.ANSWERED:
            break
    status = result.status if result.status is DialStatus.ANSWERED else overall_status(statuses)
    return DialResult(
        status=status,
        endpoint=result.endpoint,
        wait_seconds=waited,
        talk_seconds=result.talk_seconds,
        ended_by=result.ended_by,
        per_endpoint=statuses,
    )


def _after_dial(
    ctx: CallContext, name: str, kind: str, result: DialResult, on: DialOutcomes
) -> str | None:
    t = ctx.trace
    t.wait_seconds += result.wait_seconds
    detail = ",".join(f"{e}={s.value}" for e, s in result.per_endpoint.items())
    ctx.step(name, kind, result.status.value, detail=detail)
    if result.status is DialStatus.ANSWERED:
        t.endpoint = result.endpoint
        t.talk_seconds += result.talk_seconds
        t.hangup_by = result.ended_by
        return _after_conversation(result, on)
    return {
        DialStatus.BUSY: on.busy,
        DialStatus.NO_ANSWER: on.no_answer,
        DialStatus.UNREACHABLE: on.unreachable,
    }[result.status]


def _after_conversation(result: DialResult, on: DialOutcomes) -> str | None:
    """The one rule, whatever the adapter: a caller who hung up is gone; when the desk hung up,
    the call goes on to ``on.answered`` if the routing gives it, else it ends."""
    if result.ended_by == "caller":
        raise CallerHangup()
    return on.answered


def _branch_label(ctx: CallContext, branch: str | None) -> str:
    """What the clerk's phone shows beside the caller's number."""
    if branch is None:
        return "CCHC"
    return f"CCHC {branch} {ctx.routing.branches[branch].name}"[:40]


async def voicemail(ctx: CallContext, name: str, node: VoicemailNode) -> str | None:
    s = ctx.session
    await s.play(node.prompts, interruptible=False)
    stamp = ctx.clock().strftime("%Y%m%d-%H%M%S")
    rec_name = f"vm-{stamp}-{s.info.channel_id.replace('.', '-')}"
    result = await s.record(
        RecordRequest(
            name=rec_name,
            max_seconds=node.max_seconds,
            max_silence_seconds=node.max_silence_seconds,
        )
    )
    verdict = judge(result.duration_seconds, result.audio)
    if not verdict.speech:
        # No message (a hang-up at the beep, silence): the step says so, no voicemail row is
        # made, so the inbox never lists it; the file stays where the PBX put it.
        detail = f"{result.location} {result.duration_seconds:g}s: {verdict.reason}"
        ctx.step(name, "voicemail", "no_message", detail=detail)
        if result.caller_hung_up:
            raise CallerHangup()
        return node.next
    ctx.trace.voicemail = Voicemail(
        name=result.name,
        location=result.location,
        duration_seconds=result.duration_seconds,
        size_bytes=result.size_bytes,
        sha256=result.sha256,
        branch=ctx.trace.branch,
        unit=ctx.trace.unit,
        recorded_at=ctx.clock(),
    )
    outcome = "caller_hung_up" if result.caller_hung_up else "recorded"
    ctx.step(name, "voicemail", outcome, detail=f"{result.name} {result.duration_seconds:g}s")
    if node.thanks_prompts:
        await s.play(node.thanks_prompts, interruptible=False)
    return node.next


async def directory(ctx: CallContext, name: str, node: DirectoryNode) -> str | None:
    s = ctx.session
    longest = max((len(u.code) for u in ctx.routing.units), default=1)
    for _ in range(node.retries):
        await s.play(node.prompts)
        code = await s.read_digits(longest, node.timeout, node.timeout, terminators="#")
        found = resolve(ctx.routing, code, local_date(ctx.routing, ctx.clock())) if code else None
        s.flush_digits()  # a '#' after a full code is not meant for what follows
        if found is None or found.reached is None:
            await _unit_not_reached(ctx, name, node, code, found)
            continue
        unit = found.reached
        ctx.trace.unit = unit.code  # the unit as it is on the day of the call
        moved = [moved_prompt(ctx.routing, u) for u in found.chain]
        if found.reach is Reach.REPLACED:
            ctx.step(name, "directory", "replaced", code, detail=_chain_text(found))
        else:
            ctx.step(name, "directory", "found", code, detail=unit.name)
        connecting = [*moved, *node.connecting_prompts, unit_prompt(ctx.routing, unit)]
        await s.play(connecting, interruptible=False)
        label = f"CCHC {unit.name}"[:40]
        how = _Dial(label, node.ring_seconds, node.music)
        result = await _dial_once(ctx, name, [unit.endpoint], how)
        return _after_dial(ctx, name, "directory", result, node.on)
    ctx.step(name, "directory", "exhausted")
    return node.fail


async def _unit_not_reached(
    ctx: CallContext, name: str, node: DirectoryNode, code: str, found: Resolution | None
) -> None:
    """No input, an unknown code, or a unit that ended with nobody taking it over."""
    if found is not None and found.reach is Reach.ENDED and found.chain:
        ctx.step(name, "directory", "ended", code, detail=_chain_text(found))
        said = [unit_prompt(ctx.routing, found.chain[-1])]
        await ctx.session.play([*said, *node.ended_prompts], interruptible=False)
        ctx.session.flush_digits()  # a '#' that came late is not the next code
        return
    ctx.step(name, "directory", "not_found" if code else "no_input", code)
    if node.not_found_prompts:
        await ctx.session.play(node.not_found_prompts)


def _chain_text(found: Resolution) -> str:
    """The dialled unit and what became of it: "3104 UBND Phường IV → 3002 UBND phường Vị Tân"."""
    units = [*found.chain, *([found.reached] if found.reached else [])]
    text = " → ".join(f"{u.code} {u.name}" for u in units)
    return text if found.reached else f"{text} (đã thôi hoạt động)"


async def hangup(ctx: CallContext, name: str, node: HangupNode) -> str | None:
    if node.prompts:
        await ctx.session.play(node.prompts, interruptible=False)
    ctx.step(name, "hangup", "hung_up")
    ctx.trace.hangup_by = "system"
    await ctx.session.hangup("normal")
    return None


async def dialplan(ctx: CallContext, name: str, node: DialplanNode) -> str | None:
    if node.prompts:
        await ctx.session.play(node.prompts, interruptible=False)
    fb = ctx.routing.hotline.fallback
    context = node.context or fb.context
    ctx.step(name, "dialplan", "handed_back", detail=context)
    ctx.trace.handed_back = True
    await ctx.session.continue_in_dialplan(
        context, node.extension or fb.extension, node.priority or fb.priority
    )
    return None


_HANDLERS: dict[str, Handler] = {
    "prompt": prompt,
    "menu": menu,
    "hours": hours,
    "dial": dial,
    "voicemail": voicemail,
    "directory": directory,
    "hangup": hangup,
    "dialplan": dialplan,
    "survey": survey,
}
