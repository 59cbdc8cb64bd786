"""A call's identity and fields in the store: keys across nodes, the 0003 backfill, the schema
gate, the hang-up cause kept whichever source came first."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from ivr.cli import main
from ivr.cli.codes import USAGE
from ivr.flow.record import CallTrace, Identified
from ivr.session import CallInfo
from ivr.store.db import SchemaNotCurrent, downgrade, make_engine, require_current, upgrade
from ivr.store.lease import Owner
from ivr.store.queries import AmbiguousCall, get_call
from ivr.store.writer import StoreWriter

T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


async def test_0003_keeps_old_rows_with_their_steps_and_a_blank_node(db_url: str) -> None:
    await asyncio.to_thread(downgrade, db_url, "0002")
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO calls (id, linked_id, caller_number, caller_name, dialed, "
                "started_at, path, digits, disposition, wait_seconds, talk_seconds, "
                "routing_version) VALUES ('1764.1', '1764.1', '0912', '', '1022', :t, "
                "'greeting>main-menu', '4', 'answered', 1, 2, 'v1')"
            ),
            {"t": T0.replace(tzinfo=None)},
        )
        await conn.execute(
            text(
                "INSERT INTO call_steps VALUES ('1764.1', 0, 'main-menu', 'menu', 'pressed', "
                "'4', '', :t)"
            ),
            {"t": T0.replace(tzinfo=None)},
        )
    with pytest.raises(SchemaNotCurrent, match="ivr db upgrade"):
        await require_current(engine)
    await asyncio.to_thread(upgrade, db_url)
    await require_current(engine)
    old = await get_call(engine, "1764.1")
    assert old is not None
    assert (old.id, old.channel_id, old.node, old.controller) == ("1764.1", "1764.1", "", "")
    assert [s.node for s in old.steps] == ["main-menu"]
    await engine.dispose()


async def test_same_channel_on_two_nodes_two_rows_and_lookup_by_channel(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", owner=Owner("ctl", "", "may", 1))
    await writer.start()
    for node in ("ast-1", "ast-2"):
        trace = CallTrace(CallInfo("1764.5", "0912"), "v1", T0)
        Identified(writer, node).call_ended(trace.snapshot(T0 + dt.timedelta(seconds=9)))
    trace = CallTrace(CallInfo("1764.6", "0912"), "v1", T0)
    Identified(writer, "ast-1").call_ended(trace.snapshot(T0 + dt.timedelta(seconds=9)))
    assert await writer.sync()
    one = await get_call(engine, "ast-2/1764.5")
    assert one is not None
    assert (one.node, one.channel_id, one.controller) == ("ast-2", "1764.5", "ctl")
    with pytest.raises(AmbiguousCall, match=r"ast-1/1764\.5"):
        await get_call(engine, "1764.5")
    only = await get_call(engine, "1764.6")  # a bare channel id used by one node
    assert only is not None
    assert only.id == "ast-1/1764.6"
    await writer.stop()
    await engine.dispose()


async def test_hangup_cause_is_kept_whichever_source_arrives_first(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    writer = StoreWriter(engine, tmp_path / "spool", owner=Owner("ctl", "", "may", 1))
    await writer.start()
    observer = Identified(writer, "ast-1")
    trace = CallTrace(CallInfo("1764.7", "0912"), "v1", T0)
    observer.call_started(trace.snapshot())
    assert await writer.sync()
    writer.call_cause("1764.7", 16, "Normal Clearing")  # AMI first, by channel id
    assert await writer.sync()
    observer.call_ended(trace.snapshot(T0 + dt.timedelta(seconds=9)))  # then the final write
    writer.call_cause("1764.7", 17, "User busy")  # a later report changes nothing
    assert await writer.sync()
    call = await get_call(engine, "ast-1/1764.7")
    assert call is not None
    assert (call.disposition, call.hangup_cause, call.hangup_cause_text) == (
        "abandoned",
        16,
        "Normal Clearing",
    )
    await writer.stop()
    await engine.dispose()


def test_readers_refuse_a_missing_or_old_schema_in_one_line_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none" / "ivr.db"
    url = f"sqlite+aiosqlite:///{missing}"
    for command in (["calls"], ["voicemails"], ["calls", "show", "1764.1"]):
        assert main([*command, "--db", url]) == USAGE
        err = capsys.readouterr().err.strip()
        assert "ivr db upgrade" in err
        assert len(err.splitlines()) == 1
    assert not missing.exists()
    assert not missing.parent.exists()
    with pytest.raises(SchemaNotCurrent):
        make_engine(url, create=False)

    old = tmp_path / "old.db"
    old_url = f"sqlite+aiosqlite:///{old}"
    upgrade(old_url, "0002")
    assert main(["calls", "--db", old_url]) == USAGE
    err = capsys.readouterr().err.strip()
    assert "0002" in err
    assert "ivr db upgrade" in err
    assert len(err.splitlines()) == 1
    upgrade(old_url)  # `ivr db upgrade` is idempotent: twice is the same as once
    upgrade(old_url)
    assert main(["calls", "--db", old_url]) == 0
    assert "(0 cuộc gọi)" in capsys.readouterr().out
