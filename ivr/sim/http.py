"""The simulator's wire faces: ARI REST and the events websocket, over real loopback sockets."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ivr.sim import wire
from ivr.sim.core import Pbx, SimCall, SimFailure
from ivr.sim.event_filter import EventFilter
from ivr.sim.rest import AriRest, RouteHandler
from ivr.sim.scripts import CallerScript, Clerks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SeenRequest:
    method: str
    path: str  # as sent, with /ari
    route: str  # the schema's path template, e.g. /channels/{channelId}/play
    query: dict[str, str]


@dataclass
class Fault:
    """A request the simulator answers wrongly, to test our handling of it.

    ``stall`` seconds before answering (longer than the client's timeout: a timeout);
    ``perform``: do what was asked all the same (the reply is lost, not the effect);
    ``times``: how many requests it spoils (None: every one).
    """

    status: int = 500
    body: dict[str, Any] = field(default_factory=lambda: wire.error("Internal Server Error"))
    stall: float = 0.0
    perform: bool = False
    times: int | None = None
    hits: int = 0

    def take(self) -> bool:
        """Whether this request is spoilt (and count it)."""
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    frozen: bool = False
    everything: bool = False  # subscribeAll=true


class AsteriskSim:
    """A fake Asterisk 22 with ARI on ``base_url``; calls are placed with :meth:`call`."""

    def __init__(
        self,
        *,
        app: str = "hotline",
        user: str = "ivr",
        password: str = "secret",
        speed: float = 1.0,
        clerks: Clerks | None = None,
        prompt_seconds: Callable[[str], float] | None = None,
        missing_sounds: set[str] | None = None,
        dialplan_seconds: float = 1.0,
    ) -> None:
        self.app = app
        self.user = user
        self.password = password
        self.pbx = Pbx(
            self._emit,
            app=app,
            speed=speed,
            clerks=clerks,
            prompt_seconds=prompt_seconds,
            missing_sounds=missing_sounds,
            dialplan_seconds=dialplan_seconds,
        )
        self.pbx.app_connected = lambda: self.app in self._conns
        self.pbx.apps_connected = lambda: list(self._conns)
        self.requests: list[SeenRequest] = []
        self.events: list[dict[str, Any]] = []
        # (method, route template) → (status, body) or a Fault: answer this instead
        self.faults: dict[tuple[str, str], tuple[int, dict[str, Any]] | Fault] = {}
        self._conns: dict[str, _Conn] = {}  # app name → its websocket
        # app name → its event filter (PUT /applications/{app}/eventFilter); it outlives the
        # websocket, as Asterisk keeps the app
        self._filters: dict[str, EventFilter] = {}
        self.sent_events = 0  # events written to an app's websocket (after its filter)
        self._event_waiters: list[
            tuple[Callable[[dict[str, Any]], bool], asyncio.Future[dict[str, Any]]]
        ] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.connections = 0
        self._conn_changed = asyncio.Event()

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._auth_and_errors])
        app.router.add_get("/ari/events", self._events)
        rest = AriRest(self.pbx, self._application, self._applications, self._set_filter)
        for method, route, handler in rest.routes():
            app.router.add_route(method, "/ari" + route, self._wrap(route, handler))
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sock = server.sockets[0]  # type: ignore[attr-defined]
        bound_port = sock.getsockname()[1]
        self.base_url = f"http://{host}:{bound_port}/ari"
        return self.base_url

    async def stop(self) -> None:
        for conn in list(self._conns.values()):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- scripted calls and faults -------------------------------------------------------------

    def call(self, script: CallerScript) -> SimCall:
        return self.pbx.place_call(script)

    def broadcast_call(self, script: CallerScript, timeout: float = 2.0) -> SimCall:
        """A caller sent to ``StasisBroadcast(timeout=…)``: offered to every connected app."""
        return self.pbx.place_broadcast(script, timeout)

    async def wait_connected(self, count: int = 1) -> None:
        """Until the app has opened its websocket ``count`` times in all, and is connected."""
        while self.connections < count or self.app not in self._conns:
            self._conn_changed.clear()
            await self._conn_changed.wait()

    @property
    def apps(self) -> list[str]:
        """The apps whose websocket is open now."""
        return list(self._conns)

    async def wait_apps(self, predicate: Callable[[list[str]], bool]) -> None:
        """Until the connected apps satisfy ``predicate`` (e.g. a closed websocket is noticed)."""
        while not predicate(self.apps):
            self._conn_changed.clear()
            await self._conn_changed.wait()

    async def drop_websockets(self) -> None:
        """Close the app's websocket from the server side, like an Asterisk restart of HTTP."""
        for app, conn in list(self._conns.items()):
            del self._conns[app]
            self._conn_changed.set()
            conn.queue.put_nowait(None)
            await conn.ws.close()

    def freeze_websockets(self) -> None:
        """A silent drop: keep the socket open but send nothing and answer no ping."""
        for conn in self._conns.values():
            conn.frozen = True

    def thaw_websockets(self) -> None:
        """After a freeze: send events again (those emitted meanwhile are lost)."""
        for conn in self._conns.values():
            conn.frozen = False

    @property
    def connected(self) -> bool:
        return self.app in self._conns

    # --- events ---------------------------------------------------------------------------------

    async def wait_for_event(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Until an event matching ``predicate`` is emitted (or was, since the start)."""
        for event in self.events:
            if predicate(event):
                return event
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._event_waiters.append((predicate, fut))
        return await fut

    def _emit(self, app: str, event: dict[str, Any]) -> None:
        self.events.append(event)
        for waiter in list(self._event_waiters):
            predicate, fut = waiter
            if not fut.done() and predicate(event):
                fut.set_result(event)
                self._event_waiters.remove(waiter)
        conn = self._conns.get(app)
        if conn is None or conn.frozen:
            return
        rules = self._filters.get(app)
        if rules is None or rules.admits(event["type"]):
            self.sent_events += 1
            conn.queue.put_nowait(json.dumps(event, ensure_ascii=False))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """An app's websocket. Any app name is accepted, as Asterisk does; a second connection
        for an app replaces the first. Only ``self.app`` gets calls; another app (a monitor with
        subscribeAll) is listed by /applications but fed nothing (the simulator does not make
        the dialplan's events)."""
        app = request.query.get("app", "")
        if not app or "," in app:
            return web.json_response(
                wire.error("Invalid application provided in param [app]."), status=400
            )
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = _Conn(ws, everything=request.query.get("subscribeAll") == "true")
        old = self._conns.pop(app, None)
        if old is not None:
            old.queue.put_nowait(None)
        self._conns[app] = conn
        if app == self.app:
            self.connections += 1
        self._conn_changed.set()
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.PING and not conn.frozen:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.CLOSE:
                    break
        finally:
            if self._conns.get(app) is conn:
                del self._conns[app]
                self._conn_changed.set()
            conn.queue.put_nowait(None)
            await writer
        return ws

    async def _writer(self, conn: _Conn) -> None:
        while True:
            text = await conn.queue.get()
            if text is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    # --- REST -----------------------------------------------------------------------------------

    @web.middleware
    async def _auth_and_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response(
                wire.error("Authentication required"),
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
            )
        try:
            return await handler(request)
        except SimFailure as e:
            return web.json_response(e.body, status=e.status)

    def _authorised(self, request: web.Request) -> bool:
        expected = f"{self.user}:{self.password}"
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                return base64.b64decode(header[6:]).decode() == expected
            except ValueError:
                return False
        return request.query.get("api_key") == expected

    def _wrap(self, route: str, handler: RouteHandler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            query = {k: v for k, v in request.query.items() if k != "api_key"}
            self.requests.append(SeenRequest(request.method, request.path, route, query))
            fault = self.faults.get((request.method, route))
            if isinstance(fault, tuple):
                return web.json_response(fault[1], status=fault[0])
            if fault is not None and fault.take():
                if fault.perform:
                    done = handler(request)
                    if inspect.isawaitable(done):
                        await done
                if fault.stall:
                    await asyncio.sleep(fault.stall)
                return web.json_response(fault.body, status=fault.status)
            result = handler(request)
            if inspect.isawaitable(result):  # a handler that reads the body
                result = await result
            if isinstance(result, web.StreamResponse):
                return result
            if result is None:
                return web.Response(status=204)
            status, body = result
            return web.json_response(body, status=status)

        return wrapped

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(wire.error("Resource not found"), status=404)

    def _application(self, name: str) -> dict[str, Any] | None:
        """An app as GET /applications/{name} shows it, None when Asterisk has no such app.

        Asterisk keeps an app whose websocket closed while it still holds channels (they stay
        parked in Stasis, websocket-drop-and-recover); with no channels left it is gone.
        """
        conn = self._conns.get(name)
        rules = self._filters.get(name, EventFilter())
        if conn is not None and conn.everything:
            return _app_json(name, ["__AST_CHANNEL_ALL_TOPIC"], ["__AST_BRIDGE_ALL_TOPIC"],
                             ["__AST_ENDPOINT_ALL_TOPIC"], ["__AST_DEVICE_STATE_ALL_TOPIC"], rules)  # fmt: skip
        channels = self.pbx.app_channels(name)
        if conn is None and not channels:
            return None
        bridges = list(self.pbx.bridges) if name == self.app else []
        return _app_json(name, channels, bridges, [], [], rules)

    def _set_filter(self, name: str, body: Any) -> dict[str, Any]:
        """PUT /applications/{name}/eventFilter with ``body`` (decoded JSON, None when empty):
        the app's JSON after it; raises :class:`SimFailure` 404 or 400 as Asterisk does."""
        if self._application(name) is None:
            raise SimFailure(404, wire.error(f"Application '{name}' not found"))
        self._filters[name] = self._filters.get(name, EventFilter()).updated(body)
        app = self._application(name)
        assert app is not None
        return app

    def _applications(self) -> list[dict[str, Any]]:
        names = dict.fromkeys([*self._conns, self.app])
        return [app for app in map(self._application, names) if app is not None]


def _app_json(
    name: str,
    channels: list[str],
    bridges: list[str],
    endpoints: list[str],
    devices: list[str],
    rules: EventFilter,
) -> dict[str, Any]:
    return {
        "name": name,
        "channel_ids": channels,
        "bridge_ids": bridges,
        "endpoint_ids": endpoints,
        "device_names": devices,
        "events_allowed": [{"type": t} for t in rules.allowed],
        "events_disallowed": [{"type": t} for t in rules.disallowed],
    }
