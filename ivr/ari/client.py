"""A thin typed ARI REST client over aiohttp.

Credentials go in an ``Authorization`` header, never in the query string (which proxies and
Asterisk's own HTTP log would keep). Parameters go in the query string, as Asterisk expects.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from ivr.ari.errors import AriUnavailable, error_for
from ivr.ari.models import Application, Bridge, Channel, LiveRecording, Playback

Params = Mapping[str, str | int | float | bool | None]


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _q(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class AriClient:
    """REST half of ARI. ``base_url`` is like ``http://127.0.0.1:8088/ari``."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        request_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth = basic_auth(user, password)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._http: aiohttp.ClientSession | None = None
        self.on_request: Callable[[str, str], None] | None = None  # (method, path), for metrics

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": self._auth}

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(limit=64, enable_cleanup_closed=True)
            self._http = aiohttp.ClientSession(
                headers=self.auth_header, timeout=self._timeout, connector=connector
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def request(
        self, method: str, path: str, params: Params | None = None, *, raw: bool = False
    ) -> Any:
        query = {k: _q(v) for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path
        if self.on_request is not None:
            self.on_request(method, path)
        try:
            async with self.http().request(method, url, params=query) as resp:
                if raw and resp.status == 200:
                    return await resp.read()
                body: Any = None
                if resp.content_type == "application/json":
                    body = await resp.json()
                else:
                    await resp.read()
                if resp.status >= 400:
                    raise error_for(resp.status, method, path, body)
                return body
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise AriUnavailable(f"{method} {path}: {e!r}") from e

    # --- channels ---------------------------------------------------------------------------

    async def channels(self) -> list[Channel]:
        return [Channel.parse(c) for c in await self.request("GET", "/channels")]

    async def channel(self, channel_id: str) -> Channel:
        return Channel.parse(await self.request("GET", f"/channels/{_p(channel_id)}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_p(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_p(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_p(channel_id)}/ring")

    async def moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{_p(channel_id)}/moh", {"mohClass": moh_class})

    async def moh_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_p(channel_id)}/moh")

    async def play(
        self, channel_id: str, playback_id: str, media: Iterable[str], lang: str | None = None
    ) -> Playback:
        path = f"/channels/{_p(channel_id)}/play/{_p(playback_id)}"
        body = await self.request("POST", path, {"media": ",".join(media), "lang": lang})
        return Playback.parse(body)

    async def playback(self, playback_id: str) -> Playback:
        return Playback.parse(await self.request("GET", f"/playbacks/{_p(playback_id)}"))

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{_p(playback_id)}")

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_seconds: int = 0,
        max_silence_seconds: int = 0,
        beep: bool = True,
        terminate_on: str = "#",
        if_exists: str = "fail",
    ) -> LiveRecording:
        params: Params = {
            "name": name,
            "format": fmt,
            "maxDurationSeconds": max_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        body = await self.request("POST", f"/channels/{_p(channel_id)}/record", params)
        return LiveRecording.parse(body)

    async def live_recording(self, name: str) -> LiveRecording:
        return LiveRecording.parse(await self.request("GET", f"/recordings/live/{_p(name)}"))

    async def stored_recording(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.request("GET", f"/recordings/stored/{_p(name)}")
        return body

    async def stored_recording_file(self, name: str) -> bytes:
        data: bytes = await self.request("GET", f"/recordings/stored/{_p(name)}/file", raw=True)
        return data

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: str,
        caller_id: str,
        timeout: int,
        originator: str | None = None,
    ) -> Channel:
        params: Params = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "originator": originator,
        }
        return Channel.parse(await self.request("POST", "/channels", params))

    async def hangup(self, channel_id: str, reason: str | None = None) -> None:
        await self.request("DELETE", f"/channels/{_p(channel_id)}", {"reason": reason})

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
    ) -> None:
        params: Params = {"context": context, "extension": extension, "priority": priority}
        await self.request("POST", f"/channels/{_p(channel_id)}/continue", params)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        params: Params = {"variable": name, "value": value}
        await self.request("POST", f"/channels/{_p(channel_id)}/variable", params)

    async def get_variable(self, channel_id: str, name: str) -> str:
        body = await self.request("GET", f"/channels/{_p(channel_id)}/variable", {"variable": name})
        return str(body.get("value", ""))

    # --- bridges ----------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, name: str) -> Bridge:
        params: Params = {"type": "mixing", "bridgeId": bridge_id, "name": name}
        return Bridge.parse(await self.request("POST", "/bridges", params))

    async def add_to_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None:
        params: Params = {"channel": ",".join(channel_ids)}
        await self.request("POST", f"/bridges/{_p(bridge_id)}/addChannel", params)

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        params: Params = {"channel": channel_id}
        await self.request("POST", f"/bridges/{_p(bridge_id)}/removeChannel", params)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_p(bridge_id)}")

    # --- applications -----------------------------------------------------------------------

    async def application(self, name: str | None = None) -> Application:
        return Application.parse(await self.request("GET", f"/applications/{_p(name or self.app)}"))


def _p(segment: str) -> str:
    return quote(segment, safe="")
