"""Nothing leaks, nobody is stranded: faults injected into the simulator (refusals, timeouts
whose effect happened all the same), then Asterisk's bridges and channels are back to zero."""

from __future__ import annotations

import asyncio

from ivr.ari.overload import Limits
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.sim.harness import Harness
from ivr.sim.http import AsteriskSim, Fault
from ivr.sim.objects import SimCall
from ivr.sim.scripts import CallerScript, Clerks, Hangup, Press

from .conftest import vn_time
from .scenarios import ANSWER, UNREACHABLE

SPEED = 10.0
DAY = vn_time("2026-11-25 09:00")
TIMEOUT = 0.3  # the client's request timeout in these tests; a stall of 1 s is a timeout
CLERKS = Clerks({"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": UNREACHABLE}, default=UNREACHABLE)
TO_BRANCH_4 = CallerScript((Press("4", on="prompt:main-menu", after=0.3),))
FALLBACK = "dialplan:hotline-fallback"

BRIDGES = ("POST", "/bridges")
ADD = ("POST", "/bridges/{bridgeId}/addChannel")
CONTINUE = ("POST", "/channels/{channelId}/continue")
HANGUP = ("DELETE", "/channels/{channelId}")
ORIGINATE = ("POST", "/channels")


def harness(routing: Routing, observer: MemoryObserver, **kw: object) -> Harness:
    return Harness(
        routing,
        observer,
        speed=SPEED,
        clerks=CLERKS,
        clock=lambda: DAY,
        request_timeout=TIMEOUT,
        **kw,  # type: ignore[arg-type]
    )


async def finished(h: Harness, *calls: SimCall) -> None:
    """Every call over at the simulator and in the controller, hand-backs included."""
    await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 30)
    await asyncio.wait_for(h.idle(), 30)


def assert_nothing_left(sim: AsteriskSim) -> None:
    assert sim.pbx.bridges == {}
    assert sim.pbx.channels == {}
    assert sim.pbx.app_channels() == []


def quick_retries(h: Harness) -> None:
    assert h.app is not None
    h.app.retry_delays = (0.01, 0.01, 0.01)


async def test_bridge_refused_the_legs_are_dropped_and_the_caller_handed_back(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        h.sim.faults[BRIDGES] = Fault(500)
        call = h.sim.call(TO_BRANCH_4)
        await finished(h, call)
        assert FALLBACK in call.log
        assert_nothing_left(h.sim)
    (record,) = observer.done
    assert record.disposition is Disposition.ERRORED


async def test_add_channel_refused_the_bridge_is_destroyed(routing: Routing) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        h.sim.faults[ADD] = Fault(500)
        call = h.sim.call(TO_BRANCH_4)
        await finished(h, call)
        assert FALLBACK in call.log
        assert [r.method for r in h.sim.requests if r.route == "/bridges/{bridgeId}"] == ["DELETE"]
        assert_nothing_left(h.sim)


async def test_bridge_creation_timing_out_after_it_happened_leaks_nothing(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        h.sim.faults[BRIDGES] = Fault(stall=1.0, perform=True)
        call = h.sim.call(TO_BRANCH_4)
        await finished(h, call)
        assert FALLBACK in call.log
        assert_nothing_left(h.sim)


async def test_a_hand_back_that_timed_out_but_happened_is_confirmed_not_repeated_forever(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        quick_retries(h)
        h.sim.faults[BRIDGES] = Fault(500)
        h.sim.faults[CONTINUE] = Fault(stall=1.0, perform=True, times=1)
        call = h.sim.call(TO_BRANCH_4)
        await finished(h, call)
        assert call.log.count(FALLBACK) == 1
        assert "hangup:app" not in call.log
        assert_nothing_left(h.sim)


async def test_a_hand_back_refused_every_time_ends_in_a_hang_up(routing: Routing) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        quick_retries(h)
        h.sim.faults[BRIDGES] = Fault(500)
        h.sim.faults[CONTINUE] = Fault(500)
        call = h.sim.call(TO_BRANCH_4)
        await finished(h, call)
        assert FALLBACK not in call.log
        assert "hangup:app" in call.log
        assert_nothing_left(h.sim)


async def test_hang_ups_that_time_out_are_sent_again(routing: Routing) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        quick_retries(h)
        h.sim.faults[BRIDGES] = Fault(500)
        h.sim.faults[CONTINUE] = Fault(500)
        h.sim.faults[HANGUP] = Fault(stall=1.0, times=2)  # lost, nothing done
        call = h.sim.call(TO_BRANCH_4)
        await finished(h, call)
        assert "hangup:app" in call.log
        assert h.sim.faults[HANGUP].hits == 2  # type: ignore[union-attr]
        assert_nothing_left(h.sim)


async def test_an_originate_that_timed_out_after_placing_the_leg_leaves_no_leg(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    caller = CallerScript(
        (Press("4", on="prompt:main-menu", after=0.3), Hangup(on="prompt:voicemail-intro"))
    )
    async with harness(routing, observer) as h:
        h.sim.faults[ORIGINATE] = Fault(stall=1.0, perform=True)
        call = h.sim.call(caller)
        await finished(h, call)
        assert not any(e.startswith("talking:") for e in call.log)
        assert_nothing_left(h.sim)
    (record,) = observer.done
    assert record.endpoint is None


async def test_the_watchdog_hands_back_a_channel_whose_arrival_was_lost(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    limits = Limits(watchdog_every=0.1)
    async with harness(routing, observer, limits=limits, heartbeat=60.0) as h:
        h.sim.freeze_websockets()
        call = h.sim.call(CallerScript(()))  # its StasisStart never reaches us
        h.sim.thaw_websockets()
        await finished(h, call)
        assert FALLBACK in call.log
        assert "answer" not in call.marks
        assert observer.done == []
        assert_nothing_left(h.sim)


async def test_stopping_hands_calls_in_progress_back(routing: Routing) -> None:
    observer = MemoryObserver()
    async with harness(routing, observer) as h:
        call = h.sim.call(CallerScript(()))
        await call.reached("prompt:main-menu")
        assert h.app is not None
        await h.app.stop()
        await asyncio.wait_for(call.done, 30)
        assert FALLBACK in call.log
        assert_nothing_left(h.sim)
    (record,) = observer.done
    assert record.disposition is Disposition.ERRORED
    assert record.error is not None
    assert record.error.startswith("shutdown")
