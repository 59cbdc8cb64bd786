"""The simulator's wire faces: ARI REST and the events websocket, over real loopback sockets."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ivr.sim import wire
from ivr.sim.core import Pbx, SimCall, SimFailure, fail
from ivr.sim.scripts import CallerScript, Clerks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SeenRequest:
    method: str
    path: str  # as sent, with /ari
    route: str  # the schema's path template, e.g. /channels/{channelId}/play
    query: dict[str, str]


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    frozen: bool = False


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
        )
        self.pbx.app_connected = lambda: bool(self._conns)
        self.requests: list[SeenRequest] = []
        self.events: list[dict[str, Any]] = []
        # (method, route template) → (status, body): answer this instead, to test our handling
        self.faults: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._conns: list[_Conn] = []
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
        for method, route, handler in self._routes():
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
        for conn in list(self._conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- scripted calls and faults -------------------------------------------------------------

    def call(self, script: CallerScript) -> SimCall:
        return self.pbx.place_call(script)

    async def wait_connected(self, count: int = 1) -> None:
        """Until the app has opened its websocket ``count`` times in all, and is connected."""
        while self.connections < count or not self._conns:
            self._conn_changed.clear()
            await self._conn_changed.wait()

    async def drop_websockets(self) -> None:
        """Close the app's websocket from the server side, like an Asterisk restart of HTTP."""
        for conn in list(self._conns):
            self._conns.remove(conn)
            conn.queue.put_nowait(None)
            await conn.ws.close()

    def freeze_websockets(self) -> None:
        """A silent drop: keep the socket open but send nothing and answer no ping."""
        for conn in self._conns:
            conn.frozen = True

    @property
    def connected(self) -> bool:
        return bool(self._conns)

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
        text = json.dumps(event, ensure_ascii=False)
        for conn in self._conns:
            if not conn.frozen:
                conn.queue.put_nowait(text)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        apps = request.query.get("app", "")
        if apps != self.app:
            return web.json_response(
                wire.error("Invalid application provided in param [app]."), status=400
            )
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = _Conn(ws)
        for old in list(self._conns):  # a new connection for the app replaces the old one
            self._conns.remove(old)
            old.queue.put_nowait(None)
        self._conns.append(conn)
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
            if conn in self._conns:
                self._conns.remove(conn)
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

    def _wrap(self, route: str, handler: Callable[[web.Request], Any]) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            query = {k: v for k, v in request.query.items() if k != "api_key"}
            self.requests.append(SeenRequest(request.method, request.path, route, query))
            fault = self.faults.get((request.method, route))
            if fault is not None:
                return web.json_response(fault[1], status=fault[0])
            result = handler(request)
            if isinstance(result, web.StreamResponse):
                return result
            if result is None:
                return web.Response(status=204)
            status, body = result
            return web.json_response(body, status=status)

        return wrapped

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(wire.error("Resource not found"), status=404)

    def _routes(self) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        p = self.pbx

        def q(r: web.Request, name: str, default: str = "") -> str:
            return r.query.get(name, default)

        def num(r: web.Request, name: str, default: float = 0.0) -> float:
            try:
                return float(r.query.get(name, default))
            except ValueError:
                raise fail(400, f"{name}: invalid number") from None

        def cid(r: web.Request) -> str:
            return r.match_info["channelId"]

        def play(r: web.Request) -> Any:
            if "media" not in r.query:  # what Asterisk 22 answers (rest-errors trace)
                raise fail(500, "Failed to queue media for playback")
            media = q(r, "media").split(",")
            pid = r.match_info.get("playbackId") or r.query.get("playbackId")
            return 201, p.play(cid(r), pid, media, q(r, "lang")).json()

        def record(r: web.Request) -> Any:
            for name in ("name", "format"):
                if not q(r, name):
                    raise fail(400, f"Missing parameter {name}")
            rec = p.record(
                cid(r),
                q(r, "name"),
                q(r, "format"),
                num(r, "maxDurationSeconds"),
                num(r, "maxSilenceSeconds"),
                q(r, "terminateOn", "none"),
                q(r, "ifExists", "fail"),
            )
            return 201, rec.json()

        def originate(r: web.Request) -> Any:
            ch = p.originate(
                q(r, "endpoint"),
                app=q(r, "app") or None,
                app_args=q(r, "appArgs"),
                caller_id=q(r, "callerId"),
                timeout=num(r, "timeout", 30.0),
                channel_id=q(r, "channelId") or None,
                originator=q(r, "originator") or None,
                extension=q(r, "extension") or None,
            )
            return 200, ch.json()

        def dtmf(r: web.Request) -> Any:
            if not q(r, "dtmf"):
                raise fail(400, "DTMF is required")
            p.get(cid(r))
            return None

        def get_var(r: web.Request) -> Any:
            ch = p.get(cid(r))
            name = q(r, "variable")
            if name not in ch.variables:
                raise fail(404, "Provided variable was not found")
            return 200, {"value": ch.variables[name]}

        def set_var(r: web.Request) -> Any:
            if not q(r, "variable"):
                raise fail(400, "Variable name is required")
            p.get(cid(r)).variables[q(r, "variable")] = q(r, "value")
            return None

        def app_get(r: web.Request) -> Any:
            if r.match_info["applicationName"] != self.app or not self._conns:
                raise fail(404, "Application not found")
            return 200, self._app_json()

        def stored(r: web.Request) -> Any:
            name = r.match_info["recordingName"]
            if name not in p.stored:
                raise fail(404, "Recording not found")
            return 200, {"name": name, "format": "wav"}

        def stored_file(r: web.Request) -> Any:
            name = r.match_info["recordingName"]
            if name not in p.stored:
                raise fail(404, "Recording not found")
            return web.Response(body=p.stored[name], content_type="audio/wav")

        def live(r: web.Request) -> Any:
            rec = p.live_recordings.get(r.match_info["recordingName"])
            if rec is None:
                raise fail(404, "Recording not found")
            return 200, rec.json()

        def playback_get(r: web.Request) -> Any:
            pb = p.playbacks.get(r.match_info["playbackId"])
            if pb is None:
                raise fail(404, "Playback not found")
            return 200, pb.json()

        def bridge_create(r: web.Request) -> Any:
            return 200, p.create_bridge(q(r, "bridgeId") or None, q(r, "name")).json()

        def bridge_add(r: web.Request) -> Any:
            chans = [c for c in q(r, "channel").split(",") if c]
            p.add_to_bridge(r.match_info["bridgeId"], chans)
            return None

        return [
            ("GET", "/channels", lambda r: (200, [c.json() for c in p.channels.values()])),
            ("POST", "/channels", originate),
            ("GET", "/channels/{channelId}", lambda r: (200, p.get(cid(r)).json())),
            ("DELETE", "/channels/{channelId}", lambda r: p.hangup(cid(r))),
            ("POST", "/channels/{channelId}/answer", lambda r: p.answer(cid(r))),
            ("POST", "/channels/{channelId}/ring", lambda r: p.ring(cid(r), True)),
            ("DELETE", "/channels/{channelId}/ring", lambda r: p.ring(cid(r), False)),
            ("POST", "/channels/{channelId}/moh", lambda r: p.moh(cid(r), True)),
            ("DELETE", "/channels/{channelId}/moh", lambda r: p.moh(cid(r), False)),
            ("POST", "/channels/{channelId}/play", play),
            ("POST", "/channels/{channelId}/play/{playbackId}", play),
            ("POST", "/channels/{channelId}/record", record),
            (
                "POST",
                "/channels/{channelId}/continue",
                lambda r: p.continue_(cid(r), q(r, "context") or None),
            ),
            ("POST", "/channels/{channelId}/dtmf", dtmf),
            ("GET", "/channels/{channelId}/variable", get_var),
            ("POST", "/channels/{channelId}/variable", set_var),
            ("GET", "/playbacks/{playbackId}", playback_get),
            (
                "DELETE",
                "/playbacks/{playbackId}",
                lambda r: p.stop_playback(r.match_info["playbackId"]),
            ),
            ("GET", "/recordings/live/{recordingName}", live),
            (
                "GET",
                "/recordings/stored",
                lambda r: (200, [{"name": n, "format": "wav"} for n in p.stored]),
            ),
            ("GET", "/recordings/stored/{recordingName}", stored),
            ("GET", "/recordings/stored/{recordingName}/file", stored_file),
            ("POST", "/bridges", bridge_create),
            (
                "GET",
                "/bridges/{bridgeId}",
                lambda r: (200, p.get_bridge(r.match_info["bridgeId"]).json()),
            ),
            ("DELETE", "/bridges/{bridgeId}", lambda r: p.destroy_bridge(r.match_info["bridgeId"])),
            ("POST", "/bridges/{bridgeId}/addChannel", bridge_add),
            (
                "POST",
                "/bridges/{bridgeId}/removeChannel",
                lambda r: p.remove_from_bridge(r.match_info["bridgeId"], q(r, "channel")),
            ),
            ("GET", "/applications", lambda r: (200, [self._app_json()] if self._conns else [])),
            ("GET", "/applications/{applicationName}", app_get),
        ]

    def _app_json(self) -> dict[str, Any]:
        return {
            "name": self.app,
            "channel_ids": self.pbx.app_channels(),
            "bridge_ids": list(self.pbx.bridges),
            "endpoint_ids": [],
            "device_names": [],
            "events_allowed": [],
            "events_disallowed": [],
        }
