"""A thin typed ARI REST client over aiohttp.

Credentials go in an ``Authorization`` header, never in the query string (which proxies and
Asterisk's own HTTP log would keep). Parameters go in the query string, as Asterisk expects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from ivr.ari.errors import AriUnavailable, MalformedResponse, error_for
from ivr.ari.http import HttpClient, NotSent
from ivr.ari.models import Application, Channel, LiveRecording, Playback
from ivr.redact import redact

T = TypeVar("T")

Params = Mapping[str, str | int | float | bool | None]


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def describe(error: BaseException) -> str:
    """An error for the log: its type and message, never a request's headers (an aiohttp
    error's repr holds them, with the password) nor a URL's password."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"{type(error).__name__}: HTTP {error.status}"
    return redact(f"{type(error).__name__}: {error}")


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``http://user:pass@host/ari`` as (``http://host/ari``, user, pass); the credentials go in
    the Authorization header, never in a URL that could be logged."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return bare, user, password


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
        bare, url_user, url_password = split_credentials(base_url)
        self.base_url = bare.rstrip("/")
        self._base_path = str(URL(self.base_url).raw_path).rstrip("/")  # quoted once
        self.app = app
        if url_password is not None and not password:  # ari_url's own password, if it has one
            user, password = url_user or user, url_password
        self._auth = basic_auth(user, password)
        self._request_timeout = request_timeout
        self._http: aiohttp.ClientSession | None = None  # for the events websocket
        self._rest_client: HttpClient | None = None  # for the REST requests
        # Set while the events websocket is connected (StasisApp gives its own): a request that
        # could not reach Asterisk waits for the reconnection, within RETRY_WINDOW_SECONDS.
        self.link: asyncio.Event | None = None
        self.on_request: Callable[[str, str], None] | None = None  # (method, path), for metrics
        self.on_unreachable: Callable[[str, str], None] | None = None  # an attempt that failed
        # One request at a time on this app's object: Asterisk 22.10.1 answers a GET, a PUT
        # eventFilter or a subscription with the app's JSON, reading its event filter without
        # the app's lock (res/stasis/app.c, stasis_app_event_filter_to_json), while a PUT
        # eventFilter frees the filter it replaces: together they can use freed memory. The
        # controller sends both at each connection (filter, then the orphan listing).
        self._app_object = asyncio.Lock()

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
                headers=self.auth_header,
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # ARI sets none
            )
        return self._http

    async def close(self) -> None:
        if self._rest_client is not None:
            self._rest_client.close()
            self._rest_client = None
        if self._http is not None:
            await self._http.close()

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        *,
        raw: bool = False,
        body: Any = None,
        unread: bool = False,
    ) -> Any:
        """``method path``'s answer, decoded; with ``raw``, a 200's body as it came; with
        ``unread``, None for any success, its body not decoded (a playback's, a channel's or a
        bridge's JSON the caller would not look at). An error is decoded, for its message."""
        target = self._target(path, params)
        if self.on_request is not None:
            self.on_request(method, path)
        payload = b"" if body is None else json.dumps(body).encode()
        content_type = "" if body is None else "application/json"
        retry: _Retry | None = None  # made on a first failure only: most requests have none
        while True:
            try:
                resp = await self._rest().request(
                    method, target, payload, content_type, self._request_timeout
                )
                break
            except (ConnectionError, TimeoutError) as e:  # NotSent, Disconnected, BadResponse
                if self.on_unreachable is not None:
                    self.on_unreachable(method, path)
                retry = retry or _Retry(method, self.link)
                if not await retry.after(e):
                    raise AriUnavailable(f"{method} {path}: {describe(e)}") from e
        resent = retry is not None and retry.deadline is not None
        if resp.status == 404 and resent and method != "DELETE":
            # sent again after the connection was lost: an Asterisk that restarted meanwhile no
            # longer knows the channel; that is a lost call, not a caller who hung up
            raise AriUnavailable(f"{method} {path}: không còn sau khi kết nối lại với Asterisk")
        if raw and resp.status == 200:
            return resp.body
        if unread and resp.status < 300:
            return None
        if resp.status == 204 and not resp.body:  # most requests: nothing to read
            return None
        parsed = _json(resp.body) if resp.content_type == "application/json" else None
        if resp.status >= 400:
            raise error_for(resp.status, method, path, parsed)
        if parsed is _NOT_JSON or (resp.body.strip() and parsed is None):
            raise MalformedResponse(f"{method} {path}: ARI trả về nội dung không phải JSON")
        return parsed

    def _rest(self) -> HttpClient:
        if self._rest_client is None:
            parts = urlsplit(self.base_url)
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            self._rest_client = HttpClient(
                parts.hostname or "127.0.0.1", port, {"Authorization": self._auth}, tls=tls
            )
        return self._rest_client

    def _target(self, path: str, params: Params | None) -> str:
        """The request's path and query; ``path`` is quoted by :func:`_p` already."""
        target = self._base_path + path
        if params:
            query = "&".join(f"{k}={_qv(v)}" for k, v in params.items() if v is not None)
            if query:
                target += "?" + query
        return target

    async def parsed(
        self, parse: Callable[[Any], T], method: str, path: str, params: Params | None = None
    ) -> T:
        """The body of ``method path`` read by ``parse``; a body of the wrong shape is a
        :class:`MalformedResponse`, never a KeyError deep in the caller."""
        body = await self.request(method, path, params)
        try:
            return parse(body)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"{type(e).__name__}: {e}"[:200]
            raise MalformedResponse(f"{method} {path}: ARI trả về dữ liệu sai dạng ({what})") from e

    # --- channels ---------------------------------------------------------------------------

    async def channels(self) -> list[Channel]:
        return await self.parsed(_list_of(Channel.parse), "GET", "/channels")

    async def channel(self, channel_id: str) -> Channel:
        return await self.parsed(Channel.parse, "GET", f"/channels/{_p(channel_id)}")

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
    ) -> None:
        """Start a playback with the id given: what Asterisk answers of it is not read (its
        events, and :meth:`playback`, say how it goes)."""
        path = f"/channels/{_p(channel_id)}/play/{_p(playback_id)}"
        params: Params = {"media": ",".join(media), "lang": lang}
        await self.request("POST", path, params, unread=True)

    async def playback(self, playback_id: str) -> Playback:
        return await self.parsed(Playback.parse, "GET", f"/playbacks/{_p(playback_id)}")

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
        path = f"/channels/{_p(channel_id)}/record"
        return await self.parsed(LiveRecording.parse, "POST", path, params)

    async def live_recording(self, name: str) -> LiveRecording:
        return await self.parsed(LiveRecording.parse, "GET", f"/recordings/live/{_p(name)}")

    async def stored_recording(self, name: str) -> dict[str, Any]:
        return await self.parsed(_object, "GET", f"/recordings/stored/{_p(name)}")

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
    ) -> None:
        """Dial ``endpoint`` as a new channel with the id given, into this app; the channel
        Asterisk answers with is not read (its events, and :meth:`channel`, say how it goes)."""
        params: Params = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "originator": originator,
        }
        await self.request("POST", "/channels", params, unread=True)

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
        path = f"/channels/{_p(channel_id)}/variable"
        body = await self.parsed(_object, "GET", path, {"variable": name})
        return str(body.get("value", ""))

    # --- bridges ----------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, name: str) -> None:
        """A mixing bridge with the id given; the bridge Asterisk answers with is not read."""
        params: Params = {"type": "mixing", "bridgeId": bridge_id, "name": name}
        await self.request("POST", "/bridges", params, unread=True)

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
        async with self._app_object:
            path = f"/applications/{_p(name or self.app)}"
            return await self.parsed(Application.parse, "GET", path)

    async def event_filter(self, disallowed: Iterable[str]) -> None:
        """Asterisk sends this app every event type but the ``disallowed`` (Asterisk 13.26+)."""
        body = {"allowed": [], "disallowed": [{"type": t} for t in disallowed]}
        async with self._app_object:
            await self.request("PUT", f"/applications/{_p(self.app)}/eventFilter", body=body)

    async def subscribe(self, sources: Iterable[str]) -> None:
        """This app also gets the events of ``sources`` (``channel:ID``...)."""
        params: Params = {"eventSource": ",".join(sources)}
        async with self._app_object:
            await self.request("POST", f"/applications/{_p(self.app)}/subscription", params)

    async def unsubscribe(self, sources: Iterable[str]) -> None:
        params: Params = {"eventSource": ",".join(sources)}
        async with self._app_object:
            await self.request("DELETE", f"/applications/{_p(self.app)}/subscription", params)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TypeError(f"expected a JSON object, got {type(body).__name__}")
    return body


def _list_of(parse: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def parse_all(body: Any) -> list[T]:
        if not isinstance(body, list):
            raise TypeError(f"expected a JSON list, got {type(body).__name__}")
        return [parse(item) for item in body]

    return parse_all


class _Retry:
    """Whether, and when, a request that failed on its way is sent again: one that never
    reached Asterisk (the connection refused) always, an idempotent one (GET, PUT, DELETE) also
    after a dropped connection or a timeout; while the websocket reconnects it waits for it;
    never past RETRY_WINDOW_SECONDS from the first failure (then the caller's own fallback)."""

    def __init__(self, method: str, link: asyncio.Event | None) -> None:
        self.safe = method in _IDEMPOTENT
        self.link = link
        self.deadline: float | None = None
        self.delay = RETRY_FIRST_SECONDS

    async def after(self, error: BaseException) -> bool:
        if not (isinstance(error, NotSent) or self.safe):
            return False
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + RETRY_WINDOW_SECONDS
        wait = min(self.delay, self.deadline - now)
        if wait <= 0:
            return False
        self.delay = min(self.delay * 2, 1.0)
        if self.link is not None and not self.link.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.deadline - now):
                    await self.link.wait()  # the websocket back: Asterisk answers again
        else:
            await asyncio.sleep(wait)
        return True


RETRY_FIRST_SECONDS = 0.05
RETRY_WINDOW_SECONDS = 3.0
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
_QUERY_SAFE = ":/,@"
_NOT_JSON = object()


def _json(data: bytes) -> Any:
    """``data`` decoded, or ``_NOT_JSON``; an empty body is None."""
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:  # UnicodeDecodeError is one
        return _NOT_JSON


_PLAIN = re.compile(r"[A-Za-z0-9._~-]+")
_QUERY_PLAIN = re.compile(r"[A-Za-z0-9._~:/,@-]+")  # what quote(…, safe=_QUERY_SAFE) keeps


def _qv(value: str | int | float | bool) -> str:
    """A query value, percent-encoded; ids, media URIs and endpoints need nothing."""
    text = _q(value)
    return text if _QUERY_PLAIN.fullmatch(text) else quote(text, safe=_QUERY_SAFE)


def _p(segment: str) -> str:
    """A path segment, percent-encoded; ids (``1795668215.333``) need nothing, so no quoting."""
    return segment if _PLAIN.fullmatch(segment) else quote(segment, safe="")
