"""`ivr db purge`: an old call goes with every copy of its caller's data the store holds (its
row, its CEL events, its Zalo survey row, its voicemail's audio file, the spool's quarantine
files); what is recent or outside the recordings folder stays (a live call stays too:
tests/test_store_hardening.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from ivr.cli import main
from ivr.flow.record import CallRecord
from ivr.store.db import make_engine
from ivr.store.purge import purge
from ivr.store.queries import get_call
from ivr.store.rollups import ZONE as VN
from ivr.store.rollups import rebuild
from ivr.store.rows import dumps
from ivr.store.writer import StoreWriter
from models import Case, CelEvent, Voicemail
from models.survey import ZaloOutbox

from .conftest import rollup_rows
from .test_store_hardening import make_record, one_call

OLD = dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC)
CUT = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
RECENT = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)  # within `--older-than 1d`


def _at(record: CallRecord, when: dt.datetime, location: str | None = None) -> CallRecord:
    shift = when - record.started_at
    vm = record.voicemail
    if vm is not None:
        vm = dataclasses.replace(vm, location=location or vm.location, recorded_at=when)
    return dataclasses.replace(
        record,
        started_at=when,
        answered_at=when,
        ended_at=record.ended_at + shift if record.ended_at else None,
        voicemail=vm,
    )


def _cel(
    kind: str, at: dt.datetime, linkedid: str, number: str = "0912345678"
) -> dict[str, object]:
    return {
        "eventtype": kind,
        "eventtime": at.timestamp(),
        "cid_num": number,
        "uniqueid": linkedid,
        "linkedid": linkedid,
        "channame": "PJSIP/trunk-00000001",
    }


def _zalo(key: str, at: dt.datetime, status: str) -> dict[str, object]:
    return {
        "tracking_id": key,
        "call_id": None,
        "phone": "84912345678",
        "status": status,
        "attempts": 1,
        "created_at": at,
        "next_at": at,
    }


async def _fill(url: str, tmp_path: Path) -> Path:
    """Old calls (one with its audio in the recordings folder, one naming a file outside it), a
    recent one; their CEL events and Zalo rows. Returns the recordings folder."""
    recordings = tmp_path / "recording"
    recordings.mkdir()
    (recordings / "old.wav").write_bytes(b"RIFF")
    (tmp_path / "outside.wav").write_bytes(b"RIFF")
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    one_call(writer, _at(make_record("old.1", voicemail=True), OLD, str(recordings / "old.wav")))
    one_call(writer, _at(make_record("old.2", voicemail=True), OLD, str(tmp_path / "outside.wav")))
    one_call(writer, _at(make_record("new.1", voicemail=True), RECENT, "new.wav"))
    assert await writer.sync()
    await writer.stop()
    hour = dt.timedelta(hours=1)
    async with engine.begin() as conn:
        await conn.execute(
            insert(CelEvent),
            [
                _cel("CHAN_START", OLD, "old.1"),
                _cel("LINKEDID_END", OLD + hour, "old.1"),
                _cel("CHAN_START", CUT - hour, "late.1"),  # a call going on at the cut
                _cel("LINKEDID_END", CUT + hour, "late.1"),
                _cel("CHAN_START", CUT - 2 * hour, "torn.1"),  # no end: within a day of the cut
                _cel("CHAN_START", OLD, "lost.1"),  # no end, long before the cut
                _cel("CHAN_START", RECENT, "new.1"),
                _cel("LINKEDID_END", RECENT + hour, "new.1"),
            ],
        )
        await conn.execute(
            insert(ZaloOutbox),
            [_zalo("z.old", OLD, "sent"), _zalo("z.busy", OLD, "sending"),
             _zalo("z.new", RECENT, "pending")],
        )  # fmt: skip
    await engine.dispose()
    _quarantine(tmp_path / "spool")
    return recordings


def _quarantine(spool: Path) -> None:
    """Records the database refused long ago and today, a damaged file from long ago, a folder
    someone made there, and a batch still waiting in the spool itself: all with callers' numbers."""
    record = dumps([("cause", {"id": "old.9", "hangup_cause": 16, "hangup_cause_text": "x"})])
    folder = spool / "quarantine"
    folder.mkdir(parents=True)
    for path in (folder / "1-old.jsonl", folder / "2-old.jsonl.damaged", spool / "3-old.jsonl",
                 folder / "4-new.jsonl"):  # fmt: skip
        path.write_text(record.replace("old.9", "0912345678"))
    (folder / "5-old.d").mkdir()
    for path in (folder / "1-old.jsonl", folder / "2-old.jsonl.damaged", spool / "3-old.jsonl",
                 folder / "5-old.d"):  # fmt: skip
        os.utime(path, (OLD.timestamp(), OLD.timestamp()))


def _left_in_spool(spool: Path) -> set[str]:
    return {str(p.relative_to(spool)) for p in spool.rglob("*")}


async def _left(url: str) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    engine = make_engine(url)
    async with engine.connect() as conn:
        cel = {
            (r[0], r[1]) for r in await conn.execute(select(CelEvent.linkedid, CelEvent.eventtype))
        }
        zalo = set((await conn.execute(select(ZaloOutbox.tracking_id))).scalars())
        vms = set((await conn.execute(select(Voicemail.call_id))).scalars())
    await engine.dispose()
    return cel, zalo, vms


async def test_an_old_call_goes_with_its_events_survey_row_and_audio(
    db_url: str, tmp_path: Path
) -> None:
    recordings = await _fill(db_url, tmp_path)
    engine = make_engine(db_url)
    spool = tmp_path / "spool"
    done = await purge(engine, CUT, recordings, spool)
    assert (done.calls, done.voicemails, done.files_removed) == (2, 2, 1)
    assert done.files_missing == [str(tmp_path / "outside.wav")]  # never outside the folder
    assert done.files_failed == done.quarantine_failed == []
    assert done.quarantined == 2
    # what the database refused today stays, as does a batch still waiting to be written
    assert _left_in_spool(spool) == {
        "3-old.jsonl", "quarantine", "quarantine/4-new.jsonl", "quarantine/5-old.d"
    }  # fmt: skip
    assert (done.cel_events, done.zalo_rows) == (3, 1)
    assert await get_call(engine, "old.1") is None
    assert await get_call(engine, "old.2") is None
    assert await get_call(engine, "new.1") is not None
    await engine.dispose()
    assert not (recordings / "old.wav").exists()
    assert (tmp_path / "outside.wav").exists()
    cel, zalo, vms = await _left(db_url)
    assert cel == {
        ("late.1", "CHAN_START"),
        ("late.1", "LINKEDID_END"),
        ("torn.1", "CHAN_START"),
        ("new.1", "CHAN_START"),
        ("new.1", "LINKEDID_END"),
    }
    assert zalo == {"z.busy", "z.new"}
    assert vms == {"new.1"}


async def test_purging_again_removes_nothing_more(db_url: str, tmp_path: Path) -> None:
    recordings = await _fill(db_url, tmp_path)
    engine = make_engine(db_url)
    await purge(engine, CUT, recordings, tmp_path / "spool")
    again = await purge(engine, CUT, recordings, tmp_path / "spool")
    await engine.dispose()
    assert (again.calls, again.voicemails, again.cel_events, again.zalo_rows) == (0, 0, 0, 0)
    assert again.quarantined == 0


def _unlink_fails(
    monkeypatch: pytest.MonkeyPatch, which: Callable[[Path], bool], error: OSError
) -> None:
    """Removing a file ``which`` names raises ``error``; any other goes."""
    unlink = Path.unlink

    def failing(self: Path, missing_ok: bool = False) -> None:
        if which(self):
            raise error
        unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", failing)


async def _purge_command(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    refused: Callable[[Path], bool] | None = None,
) -> tuple[int, str, str]:
    """`ivr db purge --older-than 1d` on the filled store: its code, stdout and stderr; the files
    ``refused`` names cannot be removed."""
    recordings = await _fill(db_url, tmp_path)
    capsys.readouterr()
    if refused is not None:
        _unlink_fails(monkeypatch, refused, PermissionError(13, "Permission denied"))
    monkeypatch.setenv("IVR_RECORDINGS_DIR", str(recordings))
    monkeypatch.setenv("IVR_SPOOL_DIR", str(tmp_path / "spool"))
    code = await asyncio.to_thread(main, ["db", "purge", "--older-than", "1d", "--db", db_url])
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_command_says_what_went_and_which_audio_it_could_not_find(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = await _purge_command(db_url, tmp_path, capsys, monkeypatch)
    assert code == 0
    cut = (dt.datetime.now(VN) - dt.timedelta(days=1)).date()
    assert f"đã xoá 2 cuộc gọi bắt đầu trước {cut:%d/%m/%Y}" in out  # the recent one stays
    # every event but the recent call's: the cut is now a day ago
    assert "2 tin nhắn thoại (1 tệp âm thanh đã xoá), 6 sự kiện CEL, 1 khảo sát Zalo" in out
    assert "cùng 2 tệp cách ly cũ trong thư mục dự phòng (spool_dir)" in out
    assert not (tmp_path / "spool" / "quarantine" / "1-old.jsonl").exists()
    assert "1 tệp âm thanh không có trong" in err
    assert str(tmp_path / "outside.wav") in err
    code = await asyncio.to_thread(main, ["db", "rollups", "rebuild", "--db", db_url])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "từ 1 cuộc gọi" in out
    assert f"giữ nguyên số liệu trước {cut:%d/%m/%Y}: cuộc gọi đã xoá bằng `ivr db purge`" in out


@pytest.mark.parametrize("only_quarantine", [False, True], ids=["every-file", "quarantine"])
async def test_a_file_that_cannot_be_removed_fails_the_command(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    only_quarantine: bool,
) -> None:
    """An audio file or a quarantine file left behind fails the command, each on its own."""
    code, out, err = await _purge_command(
        db_url,
        tmp_path,
        capsys,
        monkeypatch,
        refused=lambda path: path.parent.name == "quarantine" or not only_quarantine,
    )
    assert code == 1
    audio = f"không xoá được tệp âm thanh {tmp_path / 'recording' / 'old.wav'}: Permission denied"
    assert (audio in err) is not only_quarantine
    assert ("(1 tệp âm thanh đã xoá)" in out) is only_quarantine
    old = tmp_path / "spool" / "quarantine" / "1-old.jsonl"
    assert f"thư mục cách ly: không xoá được {old}: Permission denied" in err


async def test_quarantine_files_go_by_the_local_midnight_and_a_vanished_one_is_no_failure(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cut is 1/1/2025, 0:00 in Viet Nam (31/12/2024, 17:00 UTC): a file written a second
    before it goes, one written at it stays; a file gone meanwhile (renamed by a writer, removed
    by another purge) is not a failure."""
    folder = tmp_path / "spool" / "quarantine"
    folder.mkdir(parents=True)
    cut = dt.datetime(2024, 12, 31, 17, tzinfo=dt.UTC).timestamp()
    for name, at in (("a.jsonl", cut - 1), ("b.jsonl", cut), ("c.jsonl", cut - 3600)):
        (folder / name).write_text("{}")
        os.utime(folder / name, (at, at))
    gone = FileNotFoundError(2, "No such file or directory")
    _unlink_fails(monkeypatch, lambda path: path.name == "c.jsonl", gone)
    engine = make_engine(db_url)
    done = await purge(engine, CUT, None, tmp_path / "spool")
    await engine.dispose()
    assert (done.quarantined, done.quarantine_failed) == (1, [])
    assert sorted(p.name for p in folder.iterdir()) == ["b.jsonl", "c.jsonl"]


async def test_a_rebuild_after_a_purge_keeps_the_counts_of_the_purged_days(
    db_url: str, tmp_path: Path
) -> None:
    recordings = await _fill(db_url, tmp_path)
    counted = await rollup_rows(db_url)
    assert sum(r[-1] for r in counted["call_hours"]) == 3  # (slot, calls): the three calls
    engine = make_engine(db_url)
    done = await purge(engine, CUT, recordings)
    assert done.before == dt.datetime(2024, 12, 31, 17, tzinfo=dt.UTC)  # 1/1/2025, 0:00 in VN
    assert await rollup_rows(db_url) == counted  # the purge leaves the counts
    assert await rebuild(engine) == 1  # the call still stored, recounted
    await engine.dispose()
    assert await rollup_rows(db_url) == counted  # the purged calls' counts kept, not lost


def _case(
    number: str, status: str, call_id: str | None, voicemail_id: int | None
) -> dict[str, object]:
    return {
        "number": number,
        "year": 2024,
        "received_at": OLD,
        "channel": "voicemail",
        "subject": "Hồ sơ chứng thực chậm",
        "category": "Thủ tục hành chính",
        "status": status,
        "call_id": call_id,
        "voicemail_id": voicemail_id,
        "forward_due": OLD.date(),
        "answer_due": OLD.date(),
    }


async def test_a_call_an_open_case_refers_to_stays_with_its_audio(
    db_url: str, tmp_path: Path
) -> None:
    recordings = await _fill(db_url, tmp_path)
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        heard = await conn.scalar(select(Voicemail.id).where(Voicemail.call_id == "old.1"))
        await conn.execute(
            insert(Case),
            [
                _case("PAKN-2024-0001", "verifying", None, heard),  # by its voicemail
                _case("PAKN-2024-0002", "closed", "old.2", None),  # closed: no longer needed
            ],
        )
    folder = tmp_path / "spool" / "quarantine"
    for call in ("old.1", "old.2"):  # a step of each call the database refused long ago
        step = {"call_id": call, "seq": 9, "node": "menu", "kind": "menu", "at": OLD}
        (folder / f"{call}.jsonl").write_text(dumps([("step", step)]))
        os.utime(folder / f"{call}.jsonl", (OLD.timestamp(), OLD.timestamp()))
    done = await purge(engine, CUT, recordings, tmp_path / "spool")
    assert (done.calls, done.spared, done.voicemails, done.files_removed) == (1, 1, 1, 0)
    assert (done.spared_files, done.quarantined) == (1, 3)
    assert await get_call(engine, "old.1") is not None
    assert await get_call(engine, "old.2") is None
    await engine.dispose()
    assert (recordings / "old.wav").exists()  # the case's evidence
    assert (folder / "old.1.jsonl").exists()  # and what the database refused of it
    assert not (folder / "old.2.jsonl").exists()
