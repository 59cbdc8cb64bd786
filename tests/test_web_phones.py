"""Desk phones on the wallboard: the controller's AMI watch (against the AMI simulator) is
written to the store by ivr.ami.publish, and the console's board, on its own engine, shows the
states with whose desk each phone is; a change shows without a restart, a stopped controller's
rows age out, and a phone two controllers see counts as reachable when one reaches it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.ami.publish import PhonePublisher
from ivr.ami.watch import EndpointWatch
from ivr.sim.ami import AmiSim, SimPhone
from ivr.store.db import make_engine
from ivr.web.data import wallboard as wallboard_data
from ivr.web.pages.wallboard import Board, view
from ivr.web.roles import Role, Viewer
from ivr.web.routing_desk import RoutingDesk
from models import PhoneStatus
from tests.test_web import ROOT, Site, make_site

WAIT = 10.0  # generous: never a timing assertion
SUPERVISOR = Viewer("giamsat", Role.SUPERVISOR)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await make_site(tmp_path)
    yield s
    await s.engine.dispose()


async def board_until(board: Board, test: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    async def wait() -> list[Any]:
        while True:
            version = board.version
            phones: list[dict[str, Any]] = view(board, SUPERVISOR)["phones"]
            if board.snapshot is not None and test(phones):
                return phones
            await board.wait_newer(version, WAIT)

    return await asyncio.wait_for(wait(), WAIT)


def states(phones: list[dict[str, Any]]) -> dict[str, str]:
    return {p["endpoint"]: p["state"] for p in phones}


async def test_phones_from_ami_reach_the_wallboard(site: Site) -> None:
    sim = AmiSim(phones={
        "cchc-6": SimPhone("cchc-6"),
        "cchc-4b": SimPhone("cchc-4b", reachable=False),
        "dv-1001": SimPhone("dv-1001", registered=False),
    })  # fmt: skip
    port = await sim.start()
    watch = EndpointWatch("127.0.0.1", port, "ivr", "secret")
    controller = make_engine(site.url, create=False)
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert desk.reload()
    board = Board(site.engine, 0.05, desk.routing)
    publishing: asyncio.Task[None] | None = None
    try:
        await watch.start()
        publisher = PhonePublisher(controller, watch.phones, "controller-a", every=0.05)
        publishing = asyncio.create_task(publisher.run())
        board.start()
        want = {"cchc-6": "reachable", "cchc-4b": "unreachable", "dv-1001": "unregistered"}
        phones = await board_until(board, lambda p: states(p) == want)
        # the phones in trouble first; each with whose desk it is and a Vietnamese label
        assert [p["endpoint"] for p in phones] == ["cchc-4b", "dv-1001", "cchc-6"]
        six = phones[2]
        assert six["owner"].startswith("nhánh 6 · ")
        assert six["label"] == "sẵn sàng"
        assert phones[0]["label"] == "không liên lạc được"
        sim.set_reachable("cchc-6", False)
        phones = await board_until(board, lambda p: states(p).get("cchc-6") == "unreachable")
        changed = next(p for p in phones if p["endpoint"] == "cchc-6")
        assert dt.datetime.fromisoformat(changed["since"]) >= dt.datetime.fromisoformat(
            six["since"]
        )
    finally:
        if publishing is not None:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
        await board.stop()
        watch.close()
        await sim.stop()
        await controller.dispose()


class Known:
    def __init__(self, state: str) -> None:
        self.state = state


async def test_stale_rows_age_out_and_any_reachable_view_wins(site: Site) -> None:
    now = dt.datetime.now(dt.UTC)
    clock = [now]
    phones_a = {"cchc-1": Known("unreachable"), "cchc-2": Known("reachable")}
    a = PhonePublisher(site.engine, phones_a, "node-a", heartbeat=15, clock=lambda: clock[0])
    b = PhonePublisher(site.engine, {"cchc-1": Known("reachable")}, "node-b", clock=lambda: now)
    assert await a.publish() == 2
    assert await b.publish() == 1
    assert await a.publish() == 0  # nothing changed, heartbeat not due: no write
    board = Board(site.engine, 60.0)
    await board.refresh()
    assert states(view(board, SUPERVISOR)["phones"]) == {
        "cchc-1": "reachable",
        "cchc-2": "reachable",
    }
    # node-b stops; 70 s later node-a's heartbeat touches its rows, node-b's stay old
    clock[0] = now + dt.timedelta(seconds=70)
    phones_a["cchc-2"] = Known("unregistered")
    assert await a.publish() == 1
    async with AsyncSession(site.engine) as s:
        rows = {(r.node, r.endpoint): r for r in (await s.scalars(select(PhoneStatus))).all()}
    assert rows[("node-a", "cchc-1")].seen_at == clock[0]
    assert rows[("node-a", "cchc-1")].since == now  # its state did not change
    assert rows[("node-a", "cchc-2")].since == clock[0]
    assert rows[("node-b", "cchc-1")].seen_at == now
    fresh = await wallboard_data.phones(site.engine, clock[0], None)
    assert {p.endpoint: p.state for p in fresh} == {
        "cchc-1": "unreachable",
        "cchc-2": "unregistered",
    }
