"""The satisfaction survey after a conversation: one question, one key 1–``scale``.

The answer is a step (kind ``survey``, outcome ``answered``, the key as its input, the node's
scale as its detail ``scale=N``, which the reports need to tell who was satisfied); the store
turns it into a survey answer linked to the call, its branch, unit and the desk that answered
(ivr.store.rows). No key, or a key off the scale, ``retries`` times: no answer, the call goes on.
A call outside the node's ``sample`` or ``branches`` is not asked (outcome ``skipped``).

The Zalo offer (``zalo_prompts``) follows a score, and only where it can lead somewhere: Zalo is
configured (``routing.zalo_survey``, set from the settings) and the caller's number is a
Vietnamese mobile ZNS can reach. One key, no retry: ``zalo_key`` is recorded as outcome
``zalo_consent``, anything else (or nothing) as ``zalo_declined``. That step is the only thing
the call does about Zalo: ivr.survey.zalo sends the survey after the call, from the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ivr.flow.context import CallContext
from ivr.flow.record import Step
from ivr.routing.model import SurveyNode
from ivr.survey.zalo.phone import BadPhone, normalise

SURVEY_KIND = "survey"
ZALO_CONSENT = "zalo_consent"
DEFAULT_SCALE = 5  # answers stored before the scale was recorded, and Zalo's 1–5 rating


def scale_detail(scale: int) -> str:
    """The answered step's detail: the scale the key was given on (the reports need it)."""
    return f"scale={scale}"


def answer_scale(detail: str | None) -> int:
    """The scale an answered step's detail names; DEFAULT_SCALE when it names none (pure)."""
    text = (detail or "").removeprefix("scale=")
    return int(text) if text != detail and text.isdigit() and 2 <= int(text) <= 5 else DEFAULT_SCALE


async def survey(ctx: CallContext, name: str, node: SurveyNode) -> str | None:
    if not surveyed(node, ctx.trace.info.channel_id, ctx.trace.branch):
        ctx.step(name, SURVEY_KIND, "skipped")
        return node.next
    ctx.session.flush_digits()  # keys pressed during the conversation were meant for the desk
    if await _ask(ctx, name, node) and zalo_offered(ctx, node):
        await _offer_zalo(ctx, name, node)
    return node.next


def zalo_offered(ctx: CallContext, node: SurveyNode) -> bool:
    """Whether this caller hears the Zalo offer (pure): a prompt for it, Zalo configured, and
    a number the survey can be sent to (a hidden or landline number cannot get one)."""
    if not (node.zalo_prompts and ctx.routing.zalo_survey):
        return False
    try:
        normalise(ctx.trace.info.caller_number or "")
    except BadPhone:
        return False
    return True


def surveyed(node: SurveyNode, call_id: str, branch: str | None) -> bool:
    """Whether this call is asked (pure: the same call always gets the same answer)."""
    if node.branches and branch not in node.branches:
        return False
    if node.sample >= 1.0:
        return True
    digest = hashlib.sha256(call_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < node.sample


async def _ask(ctx: CallContext, name: str, node: SurveyNode) -> bool:
    """Ask for the score; whether the caller gave one."""
    s = ctx.session
    for attempt in range(1, node.retries + 1):
        await s.play(node.prompts)
        key = await s.read_digits(1, node.timeout, node.timeout, terminators="")
        if key and key in node.keys:
            ctx.step(name, SURVEY_KIND, "answered", key, detail=scale_detail(node.scale))
            if node.thanks_prompts:
                await s.play(node.thanks_prompts, interruptible=False)
            return True
        s.flush_digits()
        if key:
            ctx.step(name, SURVEY_KIND, "invalid", key)
            retry_prompts = node.invalid_prompts
        else:
            ctx.step(name, SURVEY_KIND, "no_input")
            retry_prompts = node.no_input_prompts
        if retry_prompts and attempt < node.retries:
            await s.play(retry_prompts)
    ctx.step(name, SURVEY_KIND, "no_answer")
    return False


async def _offer_zalo(ctx: CallContext, name: str, node: SurveyNode) -> None:
    s = ctx.session
    s.flush_digits()
    await s.play(node.zalo_prompts)
    key = await s.read_digits(1, node.timeout, node.timeout, terminators="")
    agreed = key == node.zalo_key
    ctx.step(name, SURVEY_KIND, ZALO_CONSENT if agreed else "zalo_declined", key)


def survey_answer(steps: Sequence[Step]) -> Step | None:
    """The call's survey answer: its last ``answered`` survey step, if any (pure)."""
    answers = [st for st in steps if st.kind == SURVEY_KIND and st.outcome == "answered"]
    return answers[-1] if answers else None
