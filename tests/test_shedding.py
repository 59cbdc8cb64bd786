"""Overload: past the limits, a new call goes straight to the dialplan's fallback, counted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client import REGISTRY

from ivr.ari.overload import Limits, LoopLag, overloaded
from ivr.cli.serve import limits, new_app
from ivr.config import Settings, load_settings
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.live import LiveRouting
from ivr.routing.model import Routing
from ivr.sim.harness import Harness
from ivr.sim.scripts import CallerScript, Clerks, Press

from .conftest import ROUTING_FILE, vn_time
from .scenarios import ANSWER

DAY = vn_time("2026-11-25 09:00")


def shed(reason: str) -> float:
    return REGISTRY.get_sample_value("ivr_calls_shed_total", {"reason": reason}) or 0.0


async def test_past_the_calls_limit_a_new_call_is_shed_to_the_fallback(routing: Routing) -> None:
    observer = MemoryObserver()
    before = shed("calls")
    async with Harness(
        routing,
        observer,
        speed=10.0,
        clerks=Clerks(default=ANSWER),
        clock=lambda: DAY,
        limits=Limits(max_calls=1),
    ) as h:
        first = h.sim.call(CallerScript((Press("4", on="prompt:main-menu", after=0.3),)))
        await first.reached("prompt:greeting")
        second = h.sim.call(CallerScript((), number="0987654321"))
        await asyncio.wait_for(second.done, 30)
        assert second.log == ["dialplan:hotline-fallback"]
        assert "answer" not in second.marks  # never answered by us: the fallback does it
        await asyncio.wait_for(first.done, 30)
        await h.idle()
        assert h.sim.pbx.channels == {}
    assert shed("calls") == before + 1
    (record,) = observer.done  # the shed call is the fallback's (reconciliation records it)
    assert record.disposition is Disposition.ANSWERED


def _block_the_loop(seconds: float) -> None:
    """What a CPU-bound stretch does to the event loop."""
    time.sleep(seconds)


def test_each_limit_sheds_for_its_own_reason_and_zero_turns_it_off() -> None:
    limits = Limits(max_calls=10, max_loop_lag=0.2, max_ari_latency=0.5)
    assert overloaded(limits, 9, 0.1, 0.4) is None
    assert overloaded(limits, 10, 0.0, 0.0) == "calls"
    assert overloaded(limits, 0, 0.3, 0.0) == "loop_lag"
    assert overloaded(limits, 0, 0.0, 0.6) == "ari_latency"
    off = Limits(max_calls=0, max_loop_lag=0.0, max_ari_latency=0.0)
    assert overloaded(off, 10_000, 99.0, 99.0) is None


async def test_loop_lag_sees_a_blocked_event_loop() -> None:
    lag = LoopLag(every=0.01)
    task = asyncio.create_task(lag.run())
    try:
        await asyncio.wait_for(lag.ticked.wait(), 10)  # the monitor runs
        _block_the_loop(0.3)
        lag.ticked.clear()
        await asyncio.wait_for(lag.ticked.wait(), 10)  # its first tick after the block
        assert lag.lag >= 0.25
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_limits_in_the_settings_reach_the_stasis_app(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(
        f'ari_password = "x"\nrouting = "{ROUTING_FILE}"\nmax_calls = 2\nmax_loop_lag_ms = 0\n'
    )
    settings = load_settings(cfg, {"IVR_MAX_ARI_LATENCY_MS": "250"})
    live = LiveRouting(Path(settings.routing), lambda: None)
    client, app = new_app(settings, live, MemoryObserver(), None)
    try:
        assert app.limits == Limits(max_calls=2, max_loop_lag=0.0, max_ari_latency=0.25)
        assert overloaded(app.limits, 2, 99.0, 0.0) == "calls"
        assert overloaded(app.limits, 1, 99.0, 0.3) == "ari_latency"  # lag 0: not watched
    finally:
        await client.close()


def test_by_default_a_run_sheds_past_400_calls_or_half_a_second_of_loop_lag() -> None:
    assert limits(Settings()) == Limits(max_calls=400, max_loop_lag=0.5, max_ari_latency=0.0)
