"""The safety net's last step, written once: send the channel to the dialplan's fallback.

Used by the flow when a call fails (over its :class:`CallSession`) and by the ARI app for a
channel nobody in this process owns. If the dialplan cannot take the channel, it is hung up, so
a caller is never left in dead air. The channel's own methods retry what is unsure (a timeout)
and confirm the result; when both fail, the answer is False and the caller of this function
leaves the channel to a later pass (the ARI app's watchdog).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ivr.routing.model import Fallback


class Returnable(Protocol):
    """A channel that can go back to the dialplan or be hung up."""

    async def continue_in_dialplan(
        self, context: str | None = None, extension: str | None = None, priority: int | None = None
    ) -> None: ...

    async def hangup(self) -> None: ...


async def hand_back(
    channel: Returnable,
    fallback: Callable[[], Fallback],
    log: Any,
    *,
    gone: tuple[type[Exception], ...],
) -> bool:
    """Continue ``channel`` at the fallback; ``gone`` are the errors of a channel already gone.

    True when the channel is no longer ours (handed back, hung up, or already gone)."""
    try:
        fb = fallback()
        await channel.continue_in_dialplan(fb.context, fb.extension, fb.priority)
        return True
    except gone:
        return True
    except Exception:
        log.exception("could not hand the channel back; hanging up")
    try:
        await channel.hangup()
        return True
    except gone:
        return True
    except Exception:
        log.exception("could not hang up either")
        return False
