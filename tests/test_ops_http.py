"""/metrics and /healthz of a running controller: the run harness (simulated Asterisk, real
controller), a call placed through it, and what a monitoring system reads."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ivr.metrics import CallMetrics
from ivr.ops import health
from ivr.ops.http import LiveFigures, OpsServer
from ivr.routing.model import Routing
from ivr.sim.harness import Harness
from ivr.sim.scripts import CallerScript, ClerkKind, Clerks, ClerkScript, Press
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter
from tests.conftest import vn_time

CLERKS = Clerks(by_endpoint={"PJSIP/cchc-4a": ClerkScript(ClerkKind.ANSWER, 1, talk_seconds=2)})
OPEN = vn_time("2026-11-25 09:00")  # a Wednesday morning: the office is open
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$")


def figures(text: str) -> dict[str, float]:
    """Every sample of the Prometheus text format, by name and labels."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[StoreWriter, AsyncEngine]]:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    yield writer, engine
    await writer.stop()
    await engine.dispose()


async def test_a_call_moves_the_counters_and_health_follows_ari(
    routing: Routing, store: tuple[StoreWriter, AsyncEngine]
) -> None:
    writer, engine = store
    async with Harness(
        routing, CallMetrics(writer), speed=50, clerks=CLERKS, clock=lambda: OPEN
    ) as h:
        assert h.app is not None
        app = h.app
        ops = OpsServer(
            {
                "asterisk": health.flag(app.stream.connected.is_set, "websocket ARI chưa kết nối"),
                "store": health.store(writer, engine),
            },
            LiveFigures(
                reconnects=lambda: max(app.stream.connections - 1, 0),
                spooled=lambda: len(writer.spool.batches()),
            ),
        )
        port = await ops.start("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert (r.status, await r.text()) == (200, "ready\n")
            before = figures(await (await http.get(f"{base}/metrics")).text())
            call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu"),)))
            await asyncio.wait_for(call.done, 60)
            await h.idle()
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                after = figures(await r.text())
            answered = 'ivr_calls_ended_total{branch="4",disposition="answered"}'
            assert after[answered] == before.get(answered, 0) + 1
            for name in (
                "ivr_calls_started_total",
                "ivr_call_setup_seconds_count",
                "ivr_dtmf_to_request_seconds_count",
            ):
                assert after[name] == before[name] + 1, name
            assert after["ivr_calls_live"] == before["ivr_calls_live"]
            assert after["ivr_ari_reconnects_total"] == 0
            assert after["ivr_store_spool_batches"] == 0
            assert "ivr_reconcile_lag_seconds" in after

            await h.sim.stop()  # Asterisk goes away: not ready, and says why
            await _until_disconnected(app.stream.connected)
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 503
                body = await r.json()
            assert body["reasons"] == {"asterisk": "websocket ARI chưa kết nối"}
        await ops.stop()


async def test_healthz_names_a_store_that_cannot_be_written(tmp_path: Path) -> None:
    # a database in a folder that does not exist: SQLite cannot open it
    engine = create_async_engine(sqlite_url(tmp_path / "missing"))
    writer = StoreWriter(engine, tmp_path / "spool")
    ops = OpsServer(
        {"asterisk": health.flag(lambda: True, ""), "store": health.store(writer, engine)}
    )
    port = await ops.start("127.0.0.1", 0)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as r,
        ):
            assert r.status == 503
            body = await r.json()
        assert set(body["reasons"]) == {"store"}
        assert body["reasons"]["store"].startswith("cơ sở dữ liệu không trả lời")
    finally:
        await ops.stop()
        await engine.dispose()


async def _until_disconnected(connected: asyncio.Event) -> None:
    async def wait() -> None:
        while connected.is_set():  # noqa: ASYNC110 -- the stream has no "disconnected" event
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 30)
