"""The small HTTP face of `ivr run` and `ivr agi`: /metrics (Prometheus) and /healthz.

/healthz answers 200 "ready" only when every check passes (Asterisk connected, the store
writable), else 503 with the reasons as JSON. Besides the metrics defined in ivr.metrics and the
store's, /metrics reads a few figures from live objects when scraped (ARI reconnects, spool size).
Listen on loopback unless a monitoring host must reach it: it has no authentication.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.ops.health import Check

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LiveFigures(Collector):
    """Figures read when scraped: ARI reconnections and the spool's size."""

    def __init__(
        self,
        reconnects: Callable[[], int] | None = None,
        spooled: Callable[[], int] | None = None,
    ) -> None:
        self.reconnects = reconnects
        self.spooled = spooled

    def collect(self) -> Iterator[Metric]:
        if self.reconnects is not None:
            yield CounterMetricFamily(
                "ivr_ari_reconnects", "ARI websocket reconnections", value=self.reconnects()
            )
        if self.spooled is not None:
            yield GaugeMetricFamily(
                "ivr_store_spool_batches",
                "Batches of call records waiting in the spool for the database",
                value=self.spooled(),
            )


class OpsServer:
    def __init__(self, checks: Mapping[str, Check], figures: LiveFigures | None = None) -> None:
        self.checks = dict(checks)
        self.registry = CollectorRegistry()
        if figures is not None:
            self.registry.register(figures)
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, *_, address = infos[0]
        sock = socket.create_server(address[:2], family=family)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY) + generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, _request: web.Request) -> web.Response:
        names = list(self.checks)
        results = await asyncio.gather(*(self.checks[n]() for n in names))
        reasons = {n: r for n, r in zip(names, results, strict=True) if r is not None}
        if not reasons:
            return web.Response(text="ready\n")
        return web.json_response(
            {"status": "not ready", "reasons": reasons},
            status=503,
            dumps=_dumps,
        )


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
