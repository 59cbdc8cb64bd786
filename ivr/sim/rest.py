"""The simulator's ARI REST resources: one small handler per route, over the simulated PBX.

A handler returns ``None`` (204), ``(status, json body)``, or an aiohttp response (a file); it
raises :class:`SimFailure` with the body Asterisk 22 sends for the same mistake.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivr.sim.core import Pbx, fail

Reply = tuple[int, Any] | web.StreamResponse | None
RouteHandler = Callable[[web.Request], Reply | Awaitable[Reply]]
Route = tuple[str, str, RouteHandler]


def q(r: web.Request, name: str, default: str = "") -> str:
    return r.query.get(name, default)


def num(r: web.Request, name: str, default: float = 0.0) -> float:
    try:
        return float(r.query.get(name, default))
    except ValueError:
        raise fail(400, f"{name}: invalid number") from None


def cid(r: web.Request) -> str:
    return r.match_info["channelId"]


class AriRest:
    """The REST face of ``pbx``; ``application(name)`` is an app's JSON, None when there is no
    such app, and ``applications()`` lists them all."""

    def __init__(
        self,
        pbx: Pbx,
        application: Callable[[str], dict[str, Any] | None],
        applications: Callable[[], list[dict[str, Any]]],
        set_filter: Callable[[str, Any], dict[str, Any]] | None = None,
    ):
        self.p = pbx
        self.application = application
        self.applications = applications
        self.set_filter = set_filter

    def routes(self) -> list[Route]:
        return [
            *self._channel_routes(),
            *self._media_routes(),
            *self._bridge_routes(),
            ("GET", "/applications", lambda r: (200, self.applications())),
            ("GET", "/applications/{applicationName}", self.app_get),
            ("POST", "/applications/{applicationName}/subscription", self.subscribe),
            ("PUT", "/applications/{applicationName}/eventFilter", self.event_filter),
            ("POST", "/events/claim", self.claim),
        ]

    def _channel_routes(self) -> list[Route]:
        p = self.p
        return [
            ("GET", "/channels", lambda r: (200, [c.json() for c in p.channels.values()])),
            ("POST", "/channels", self.originate),
            ("GET", "/channels/{channelId}", lambda r: (200, p.get(cid(r)).json())),
            ("DELETE", "/channels/{channelId}", lambda r: p.hangup(cid(r))),
            ("POST", "/channels/{channelId}/answer", lambda r: p.answer(cid(r))),
            ("POST", "/channels/{channelId}/ring", lambda r: p.ring(cid(r), True)),
            ("DELETE", "/channels/{channelId}/ring", lambda r: p.ring(cid(r), False)),
            ("POST", "/channels/{channelId}/moh", lambda r: p.moh(cid(r), True)),
            ("DELETE", "/channels/{channelId}/moh", lambda r: p.moh(cid(r), False)),
            ("POST", "/channels/{channelId}/play", self.play),
            ("POST", "/channels/{channelId}/play/{playbackId}", self.play),
            ("POST", "/channels/{channelId}/record", self.record),
            ("POST", "/channels/{channelId}/continue", self.continue_),
            ("POST", "/channels/{channelId}/dtmf", self.dtmf),
            ("GET", "/channels/{channelId}/variable", self.get_var),
            ("POST", "/channels/{channelId}/variable", self.set_var),
        ]

    def _media_routes(self) -> list[Route]:
        return [
            ("GET", "/playbacks/{playbackId}", self.playback_get),
            ("DELETE", "/playbacks/{playbackId}", self.playback_stop),
            ("GET", "/recordings/live/{recordingName}", self.live),
            ("GET", "/recordings/stored", self.stored_list),
            ("GET", "/recordings/stored/{recordingName}", self.stored),
            ("GET", "/recordings/stored/{recordingName}/file", self.stored_file),
        ]

    def _bridge_routes(self) -> list[Route]:
        return [
            ("POST", "/bridges", self.bridge_create),
            ("GET", "/bridges/{bridgeId}", self.bridge_get),
            ("DELETE", "/bridges/{bridgeId}", self.bridge_destroy),
            ("POST", "/bridges/{bridgeId}/addChannel", self.bridge_add),
            ("POST", "/bridges/{bridgeId}/removeChannel", self.bridge_remove),
        ]

    # --- channels -----------------------------------------------------------------------------

    def originate(self, r: web.Request) -> Reply:
        ch = self.p.originate(
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

    def play(self, r: web.Request) -> Reply:
        if "media" not in r.query:  # what Asterisk 22 answers (rest-errors trace)
            raise fail(500, "Failed to queue media for playback")
        media = q(r, "media").split(",")
        pid = r.match_info.get("playbackId") or r.query.get("playbackId")
        return 201, self.p.play(cid(r), pid, media, q(r, "lang")).json()

    def record(self, r: web.Request) -> Reply:
        for name in ("name", "format"):
            if not q(r, name):
                raise fail(400, f"Missing parameter {name}")
        rec = self.p.record(
            cid(r),
            q(r, "name"),
            q(r, "format"),
            num(r, "maxDurationSeconds"),
            num(r, "maxSilenceSeconds"),
            q(r, "terminateOn", "none"),
            q(r, "ifExists", "fail"),
        )
        return 201, rec.json()

    def continue_(self, r: web.Request) -> Reply:
        self.p.continue_(cid(r), q(r, "context") or None)
        return None

    def dtmf(self, r: web.Request) -> Reply:
        if not q(r, "dtmf"):
            raise fail(400, "DTMF is required")
        self.p.get(cid(r))
        return None

    def get_var(self, r: web.Request) -> Reply:
        ch = self.p.get(cid(r))
        name = q(r, "variable")
        if name not in ch.variables:
            raise fail(404, "Provided variable was not found")
        return 200, {"value": ch.variables[name]}

    def set_var(self, r: web.Request) -> Reply:
        if not q(r, "variable"):
            raise fail(400, "Variable name is required")
        self.p.get(cid(r)).variables[q(r, "variable")] = q(r, "value")
        return None

    # --- playbacks and recordings -------------------------------------------------------------

    def playback_get(self, r: web.Request) -> Reply:
        pb = self.p.playbacks.get(r.match_info["playbackId"])
        if pb is None:
            raise fail(404, "Playback not found")
        return 200, pb.json()

    def playback_stop(self, r: web.Request) -> Reply:
        self.p.stop_playback(r.match_info["playbackId"])
        return None

    def live(self, r: web.Request) -> Reply:
        rec = self.p.live_recordings.get(r.match_info["recordingName"])
        if rec is None:
            raise fail(404, "Recording not found")
        return 200, rec.json()

    def stored_list(self, r: web.Request) -> Reply:
        return 200, [{"name": n, "format": "wav"} for n in self.p.stored]

    def _stored_name(self, r: web.Request) -> str:
        name = r.match_info["recordingName"]
        if name not in self.p.stored:
            raise fail(404, "Recording not found")
        return name

    def stored(self, r: web.Request) -> Reply:
        return 200, {"name": self._stored_name(r), "format": "wav"}

    def stored_file(self, r: web.Request) -> Reply:
        return web.Response(body=self.p.stored[self._stored_name(r)], content_type="audio/wav")

    # --- bridges ------------------------------------------------------------------------------

    def bridge_create(self, r: web.Request) -> Reply:
        return 200, self.p.create_bridge(q(r, "bridgeId") or None, q(r, "name")).json()

    def bridge_get(self, r: web.Request) -> Reply:
        return 200, self.p.get_bridge(r.match_info["bridgeId"]).json()

    def bridge_destroy(self, r: web.Request) -> Reply:
        self.p.destroy_bridge(r.match_info["bridgeId"])
        return None

    def bridge_add(self, r: web.Request) -> Reply:
        chans = [c for c in q(r, "channel").split(",") if c]
        self.p.add_to_bridge(r.match_info["bridgeId"], chans)
        return None

    def bridge_remove(self, r: web.Request) -> Reply:
        self.p.remove_from_bridge(r.match_info["bridgeId"], q(r, "channel"))
        return None

    # --- applications -------------------------------------------------------------------------

    def _app(self, r: web.Request) -> tuple[str, dict[str, Any]]:
        name = r.match_info["applicationName"]
        app = self.application(name)
        if app is None:
            raise fail(404, "Application not found")
        return name, app

    def app_get(self, r: web.Request) -> Reply:
        return 200, self._app(r)[1]

    def subscribe(self, r: web.Request) -> Reply:
        name, _ = self._app(r)
        source = q(r, "eventSource")
        if not source:
            raise fail(400, "Missing parameter eventSource")
        kind, _, ident = source.partition(":")
        if kind != "channel":
            raise fail(400, "Invalid event source type")
        self.p.subscribe(name, ident)
        return 200, self._app(r)[1]

    async def event_filter(self, r: web.Request) -> Reply:
        if self.set_filter is None:
            raise fail(404, "Resource not found")
        text = (await r.read()).strip()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            raise fail(400, "Invalid format definition") from None
        return 200, self.set_filter(r.match_info["applicationName"], body)

    def claim(self, r: web.Request) -> Reply:
        self.p.claim(q(r, "channelId"), q(r, "application"))
        return None
