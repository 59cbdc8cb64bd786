"""The satisfaction survey after a conversation: one question, one key 1–5.

The answer is a step (kind ``survey``, outcome ``answered``, the key as its input); the store
turns it into a survey answer linked to the call, its branch, unit and the desk that answered
(ivr.store.rows). No key, or a key off the scale, ``retries`` times: no answer, the call goes on.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.flow.context import CallContext
from ivr.flow.record import Step
from ivr.routing.model import SURVEY_KEYS, SurveyNode


async def survey(ctx: CallContext, name: str, node: SurveyNode) -> str | None:
    s = ctx.session
    s.flush_digits()  # keys pressed during the conversation were meant for the desk
    for attempt in range(1, node.retries + 1):
        await s.play(node.prompts)
        key = await s.read_digits(1, node.timeout, node.timeout, terminators="")
        if key and key in SURVEY_KEYS:
            ctx.step(name, "survey", "answered", key, detail=ctx.trace.endpoint or "")
            if node.thanks_prompts:
                await s.play(node.thanks_prompts, interruptible=False)
            return node.next
        s.flush_digits()
        if key:
            ctx.step(name, "survey", "invalid", key)
            retry_prompts = node.invalid_prompts
        else:
            ctx.step(name, "survey", "no_input")
            retry_prompts = node.no_input_prompts
        if retry_prompts and attempt < node.retries:
            await s.play(retry_prompts)
    ctx.step(name, "survey", "no_answer")
    return node.next


def survey_answer(steps: Sequence[Step]) -> Step | None:
    """The call's survey answer: its last ``answered`` survey step, if any (pure)."""
    answers = [st for st in steps if st.kind == "survey" and st.outcome == "answered"]
    return answers[-1] if answers else None
