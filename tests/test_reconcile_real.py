"""On the real Asterisk 22: a call while no controller is connected is answered by
[hotline-fallback] and becomes exactly one `fallback` row after reconciliation from Asterisk's
CEL file (written by the cel_custom.conf of `ivr asterisk-config`); running it again changes
nothing, and the store then holds one row per hotline call Asterisk saw."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.asterisk.pjsip import phones
from ivr.routing.model import Routing
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.reconcile.facts import HOTLINE_CONTEXTS
from ivr.store.reconcile.task import Reconciler
from models import Call

from .conftest import ROOT, RealAsterisk
from .sipp import Bye, Sipp

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]


def cel_file() -> Path:
    if os.environ.get("IVR_TEST_CEL_FILE"):
        return Path(os.environ["IVR_TEST_CEL_FILE"])
    out = subprocess.run(
        [str(ROOT / "scripts" / "asterisk"), "env"], capture_output=True, text=True, check=False
    ).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if "IVR_TEST_CEL_FILE" in env:
        return Path(env["IVR_TEST_CEL_FILE"])
    return Path(env["IVR_TEST_ASTERISK_ROOT"]) / "var/log/asterisk/cel-custom/hotline.csv"


def ended_calls(path: Path) -> dict[str, dict[str, str]]:
    """Straight from the file: linkedid → {event type: its caller number...} of ended calls."""
    seen: dict[str, set[str]] = {}
    hotline: set[str] = set()
    numbers: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            kind, unique, linked, context = row[2], row[12], row[13], row[8]
            seen.setdefault(linked, set()).add(kind)
            if unique == linked and context in HOTLINE_CONTEXTS:
                hotline.add(linked)
            if unique == linked and kind == "CHAN_START":
                numbers[linked] = row[5]
    return {
        linked: {"number": numbers.get(linked, "")}
        for linked, kinds in seen.items()
        if "LINKEDID_END" in kinds and linked in hotline
    }


async def until_ended(path: Path, number: str) -> str:
    """The linkedid of ``number``'s call once Asterisk logged its end (up to 60 s)."""
    for _ in range(600):
        if await asyncio.to_thread(path.is_file):
            for linked, call in (await asyncio.to_thread(ended_calls, path)).items():
                if call["number"] == number:
                    return linked
        await asyncio.sleep(0.1)
    raise AssertionError(f"no LINKEDID_END for {number} in {path}")


async def fallback_call(pbx: RealAsterisk, routing: Routing, folder: Path, cel: Path) -> str:
    """A SIPp caller to the hotline, desk 9a answering; the call's linkedid once it ended."""
    await asyncio.to_thread(folder.mkdir)
    ports = {f"PJSIP/{p.name}": pbx.phone_port + i for i, p in enumerate(phones(routing))}
    number = f"09{os.getpid() % 10**7:07d}{folder.name}"  # folder: the attempt's digit
    sipp = Sipp(folder, pbx.sip, media_port=17400)
    try:
        await sipp.desk("cchc-9a", ports["PJSIP/cchc-9a"], "answer", 1000, 30000)
        caller = await sipp.caller([Bye(12000)], number, pbx.caller_port + 97, pbx.service)
        await asyncio.wait_for(caller.wait(), 90)
        return await until_ended(cel, number)
    finally:
        await sipp.close()


def contexts_of(path: Path, linked: str) -> set[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row[8] for row in csv.reader(f) if row[12] == linked}


async def test_a_call_while_the_controller_is_away_is_one_fallback_row(
    real_asterisk: RealAsterisk, routing: Routing, tmp_path: Path
) -> None:
    cel = cel_file()
    linked = ""
    for attempt in range(4):  # other suites' controllers may hold the ARI app for a moment
        linked = await fallback_call(real_asterisk, routing, tmp_path / str(attempt), cel)
        if "hotline-fallback" in await asyncio.to_thread(contexts_of, cel, linked):
            break
    else:
        pytest.fail("a controller connected to the ARI app took every call: none may be")

    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    try:
        r = Reconciler(engine, cel, settle=0)
        first = await r.once()
        again = await r.once()
        async with engine.connect() as conn:
            rows = (await conn.execute(select(Call))).all()
    finally:
        await engine.dispose()
    mine = [row for row in rows if row.channel_id == linked]
    assert len(mine) == 1, rows
    row = mine[0]
    assert row.disposition == "fallback", "a controller took the call: none may be connected"
    assert row.path == "hotline-inbound>hotline-fallback"
    assert row.endpoint == "PJSIP/cchc-9a"
    assert row.answered_at is not None
    assert row.ended_at is not None
    assert row.ended_at > row.answered_at
    assert row.talk_seconds > 0
    assert row.node
    assert row.id == f"{row.node}/{linked}"
    assert first.written == len(rows)
    assert (again.read, again.written) == (0, 0)
    assert len(rows) == len(ended_calls(cel))  # one row per hotline call Asterisk saw end
