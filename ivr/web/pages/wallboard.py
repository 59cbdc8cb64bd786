"""Tổng quan (the wallboard): the page, and its server-sent events.

One :class:`Board` per console watches the store (calls in progress and today's figures: a few
indexed queries, whatever the number of open browsers) and pushes the snapshot to every open
page when it changed. On SQLite it asks ten times a second whether anyone committed (``PRAGMA
data_version``, a fraction of a millisecond) and reads only then, at most once per poll interval
and at least every few seconds (the phones' staleness, midnight); elsewhere it reads every poll. Several controllers writing to the same database are seen
alike: the board reads the database, not any controller's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.ami.watch import LABELS
from ivr.routing.model import Routing
from ivr.web.auth import allow, viewer
from ivr.web.data import wallboard as data
from ivr.web.roles import ALL, Viewer
from ivr.web.security import stream_headers

log = structlog.get_logger("ivr.web")
KEEPALIVE_SECONDS = 15.0
CHECK_SECONDS = 0.1  # the cheap "anything committed?" question
REREAD_SECONDS = 5.0  # a read even when nothing was committed: time alone changes the board
PHONE_LABELS = {state.value: label for state, label in LABELS.items()}


class Board:
    def __init__(
        self,
        engine: AsyncEngine,
        poll_seconds: float = 1.0,
        routing: Callable[[], Routing | None] = lambda: None,
    ) -> None:
        self.engine, self.poll_seconds, self.routing = engine, poll_seconds, routing
        self.snapshot: dict[str, Any] | None = None
        self.version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.closing = False  # the console is shutting down: the open streams end
        self._bodies: dict[tuple[str | None, str | None] | None, str] = {}
        self._bodies_version = -1
        self._check = data.ChangeCheck(engine)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wallboard-poll")

    async def close_streams(self) -> None:
        """End every open event stream now (the console stops): a stream otherwise lasts until
        its next keepalive finds the browser gone, and holds the shutdown that long."""
        async with self._changed:
            self.closing = True
            self._changed.notify_all()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._check.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        seen: int | None = None
        while True:
            read_at = loop.time()
            seen = await self._check.version()
            try:
                await self.refresh()
            except Exception as e:  # the database is away: keep the last picture, try again
                log.warning("wallboard_poll_failed", error=str(e).splitlines()[0][:200])
            await asyncio.sleep(max(0.0, read_at + self.poll_seconds - loop.time()))
            seen = await self._until_changed(seen, read_at + REREAD_SECONDS)

    async def _until_changed(self, seen: int | None, deadline: float) -> int | None:
        """Wait until something was committed since ``seen`` (or the deadline)."""
        loop = asyncio.get_running_loop()
        check = min(CHECK_SECONDS, self.poll_seconds)
        while seen is not None and loop.time() < deadline:
            now = await self._check.version()
            if now != seen:
                return now
            await asyncio.sleep(check)
        return seen

    async def refresh(self) -> None:
        now = dt.datetime.now(dt.UTC)
        routing = self.routing()
        calls = await data.in_progress(self.engine, routing)
        snap = {
            "calls": calls,
            "today": await data.today(self.engine, now),
            "phones": await data.phones(self.engine, now, routing),
        }
        if snap != self.snapshot:
            async with self._changed:
                self.snapshot, self.version = snap, self.version + 1
                self._changed.notify_all()

    def body(self, who: Viewer) -> str:
        """The board as JSON for this person: made once per version and per kind of viewer
        (all who see everything alike; a clerk's per unit and branch), not once per stream."""
        scope = None if who.sees_all else (who.unit, who.branch)
        if self._bodies_version != self.version:
            self._bodies, self._bodies_version = {}, self.version
        if scope not in self._bodies:
            self._bodies[scope] = json.dumps(view(self, who), ensure_ascii=False)
        return self._bodies[scope]

    async def wait_newer(self, version: int, timeout: float) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version > version or self.closing),
                    timeout,
                )
            except TimeoutError:
                return False
        return True


BOARD: web.AppKey[Board] = web.AppKey("board", Board)


def view(board: Board, who: Viewer) -> dict[str, Any]:
    """The snapshot as this person may see it (other units' callers masked)."""
    snap = board.snapshot or {"calls": [], "today": {}, "phones": []}
    calls: list[data.Live] = snap["calls"]
    return {
        "version": board.version,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "today": snap["today"],
        "branches": data.per_branch(calls),
        "calls": [
            {
                "caller": who.number(c.caller, c.unit, c.branch),
                "branch": c.branch,
                "unit": c.unit,
                "state": c.state,
                "started": c.started.isoformat(),
                "since": c.since.isoformat(),
            }
            for c in calls
        ],
        "phones": [  # written by the controllers from AMI (ivr.ami.publish)
            {
                "endpoint": p.endpoint,
                "owner": p.owner,
                "state": p.state,
                "label": PHONE_LABELS.get(p.state, p.state),
                "since": p.since.isoformat(),
            }
            for p in snap["phones"]
        ],
    }


@allow(ALL)
@aiohttp_jinja2.template("wallboard.html")
async def page(request: web.Request) -> dict[str, Any]:
    return {"snap": view(request.app[BOARD], viewer(request))}


@allow(ALL)
async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(view(request.app[BOARD], viewer(request)))


@allow(ALL)
async def events(request: web.Request) -> web.StreamResponse:
    board, who = request.app[BOARD], viewer(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    stream_headers(response)
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the browser went away
        await _push(response, board, who)
    return response


async def _push(response: web.StreamResponse, board: Board, who: Viewer) -> None:
    version = -1
    while not board.closing:
        if board.version > version:
            version = board.version
            body = board.body(who)
            await response.write(f"event: board\ndata: {body}\n\n".encode())
        elif not await board.wait_newer(version, KEEPALIVE_SECONDS):
            await response.write(b": keepalive\n\n")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wallboard", page)
    app.router.add_get("/wallboard/state", snapshot)
    app.router.add_get("/wallboard/events", events)
