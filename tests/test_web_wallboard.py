"""The wallboard's live states, end to end: a call runs through the real flow in one
"controller" (the store writer on its own engine), the console's board polls the same database
on another engine, and sees the caller ringing branch 6, then talking, then gone — the states come from the steps the flow writes as they happen."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.flow.engine import run_call
from ivr.session import CallInfo, DialRequest, DialResult, DialStatus
from ivr.sim.dry_run import FakeSession
from ivr.store.db import make_engine
from ivr.store.writer import StoreWriter
from ivr.web.data.wallboard import ChangeCheck
from ivr.web.pages.wallboard import Board
from ivr.web.roles import Role, Viewer
from ivr.web.routing_desk import RoutingDesk
from models import Call, CallStep
from tests.test_web import ROOT, Site, call, make_site

WAIT = 10.0  # generous, for a loaded machine: never a timing assertion
T_CALL = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)  # 10:00 in Vietnam, a Wednesday


class HeldDesk(FakeSession):
    """A caller who presses 6; the desk rings until the test lets it answer, then the caller
    talks until the test lets them hang up."""

    def __init__(self, info: CallInfo) -> None:
        super().__init__(info, inputs=["6"])
        self.answer_now = asyncio.Event()
        self.hang_up_now = asyncio.Event()
        self.ringing: list[DialRequest] = []

    async def dial(self, request: DialRequest) -> DialResult:
        self.ringing.append(request)
        await self.answer_now.wait()
        endpoint = request.endpoints[0]
        assert request.on_answer is not None
        request.on_answer(endpoint)
        await self.hang_up_now.wait()
        statuses = dict.fromkeys(request.endpoints, DialStatus.NO_ANSWER)
        statuses[endpoint] = DialStatus.ANSWERED
        return DialResult(DialStatus.ANSWERED, endpoint, 4.0, 9.0, "caller", statuses)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await make_site(tmp_path)
    yield s
    await s.engine.dispose()


async def board_until(board: Board, test: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def wait() -> dict[str, Any]:
        while True:
            version = board.version
            if board.snapshot is not None and test(board.snapshot):
                return board.snapshot
            await board.wait_newer(version, WAIT)

    return await asyncio.wait_for(wait(), WAIT)


def states(snap: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(c.state, c.branch) for c in snap["calls"] if c.key == "live-ari"]


async def test_board_follows_a_call_from_menu_to_ringing_to_talking(
    site: Site, tmp_path: Path
) -> None:
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert desk.reload()
    routing = desk.routing()
    assert routing is not None
    controller = make_engine(site.url, create=False)  # the controller's own connection
    writer = StoreWriter(controller, tmp_path / "spool", retry_seconds=0.05)
    await writer.start()
    board = Board(site.engine, 0.05, desk.routing)  # the console, polling
    board.start()
    session = HeldDesk(CallInfo("live-ari", "0933444555"))
    call = asyncio.create_task(run_call(session, routing, writer, clock=lambda: T_CALL))
    try:
        snap = await board_until(board, lambda s: states(s) == [("ringing", "6")])
        assert session.ringing  # the desks are ringing now; nobody answered
        ringing_since = next(c.since for c in snap["calls"] if c.key == "live-ari")
        session.answer_now.set()
        snap = await board_until(board, lambda s: states(s) == [("talking", "6")])
        talking = next(c for c in snap["calls"] if c.key == "live-ari")
        assert talking.since >= ringing_since
        session.hang_up_now.set()
        record = await asyncio.wait_for(call, WAIT)
        await writer.drain()
        await board_until(board, lambda s: states(s) == [])
    finally:
        session.answer_now.set()
        session.hang_up_now.set()
        await board.stop()
        await writer.stop()
        await controller.dispose()
    assert record.disposition.value == "answered"
    async with AsyncSession(site.engine) as s:
        row = await s.get(Call, "live-ari")
        steps = (
            await s.scalars(
                select(CallStep).where(CallStep.call_id == "live-ari").order_by(CallStep.seq)
            )
        ).all()
    assert row is not None
    assert row.disposition == "answered"
    lived = [(st.node, st.kind, st.outcome, st.detail) for st in steps if st.kind == "state"]
    endpoint = session.ringing[0].endpoints[0]
    assert lived == [
        ("branch-6", "state", "ringing", ",".join(session.ringing[0].endpoints)),
        ("branch-6", "state", "talking", endpoint),
    ]
    # the dial step still closes the conversation, after the two state steps
    kinds = [(st.kind, st.outcome) for st in steps]
    assert kinds.index(("dial", "answered")) > kinds.index(("state", "talking"))


async def test_each_viewer_gets_the_board_as_they_may_see_it(site: Site) -> None:
    """The board's JSON is made once per version and kind of viewer: a clerk never receives the
    supervisor's (unmasked) copy, nor another unit's, whatever order the streams ask in."""
    async with AsyncSession(site.engine) as s, s.begin():
        for key, branch, number in (("live-1", "1", "0911222333"), ("live-6", "6", "0933444555")):
            s.add(call(key, T_CALL, branch=branch, disposition="in_progress", ended_at=None,
                       caller_number=number))  # fmt: skip
    board = Board(site.engine, 60.0)
    await board.refresh()
    boss = Viewer("giamsat", Role.SUPERVISOR)
    six = Viewer("sotaichinh", Role.CLERK, branch="6")
    one = Viewer("so1", Role.CLERK, branch="1")

    def callers(who: Viewer) -> list[str]:
        return [c["caller"] for c in json.loads(board.body(who))["calls"]]

    for _ in range(2):  # the second round is served from what the first made
        assert callers(six) == ["0911***333", "0933444555"]
        assert callers(boss) == ["0911222333", "0933444555"]
        assert callers(one) == ["0911222333", "0933***555"]
    async with AsyncSession(site.engine) as s, s.begin():
        s.add(call("live-1b", T_CALL + dt.timedelta(seconds=1), branch="1",
                   disposition="in_progress", ended_at=None, caller_number="0900000001"))  # fmt: skip
    await board.refresh()  # a new version: made anew
    assert callers(six) == ["0911***333", "0933444555", "0900***001"]


async def test_change_check_moves_on_every_commit_and_only_then(site: Site) -> None:
    """The board's cheap question (SQLite's data_version on a connection of its own) moves when
    a controller on its own engine commits, or the console itself through another connection,
    and stays put while nothing is committed; where there is no such check it says None."""
    check = ChangeCheck(site.engine)
    controller = make_engine(site.url, create=False)
    try:
        first = await check.version()
        assert first is not None
        assert await check.version() == first  # nothing committed
        async with AsyncSession(controller) as s, s.begin():
            s.add(call("live-c", T_CALL, disposition="in_progress", ended_at=None))
        second = await check.version()
        assert second is not None
        assert second != first
        assert await check.version() == second
        async with AsyncSession(site.engine) as s, s.begin():
            s.add(CallStep(call_id="live-c", seq=0, node="entry", kind="hours", outcome="open",
                           input="", detail="", at=T_CALL))  # fmt: skip
        assert await check.version() not in (None, second)
    finally:
        await check.close()
        await controller.dispose()
    memory = make_engine("sqlite+aiosqlite://")
    try:
        assert await ChangeCheck(memory).version() is None  # no check: the board reads each poll
    finally:
        await memory.dispose()
