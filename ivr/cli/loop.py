"""The event loop the call-handling services run on (`ivr run`, `ivr agi`): the ``event_loop``
setting.

* ``uvloop`` (the default): libuv's loop. Its wake-ups cost less than asyncio's own, and at a
  hotline's rates each message wakes the loop by itself: on the real Asterisk at 20 calls/s a
  call cost the controller 0.2–0.5 ms less CPU (README, issue 15, tenth pass).
* ``asyncio``: the standard library's loop, for a site that would rather not use uvloop.
  Where uvloop cannot be imported, the services say so and run on asyncio's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

from ivr.config import EVENT_LOOPS

log = structlog.get_logger("ivr")

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the loop ``choice`` names; None: asyncio's own."""
    if choice == "asyncio":
        return None
    if choice != "uvloop":
        raise ValueError(f"event_loop '{choice}': dùng {' hoặc '.join(EVENT_LOOPS)}")
    try:
        import uvloop
    except ImportError as e:  # a platform without its wheel: the standard loop still serves
        log.warning("không có uvloop; chạy trên vòng lặp asyncio", error=str(e))
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """``asyncio.run(main)``, on the loop ``choice`` names."""
    try:
        factory = loop_factory(choice)
    except ValueError:
        main.close()  # never started: no "never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
