"""Cases in the store and through `ivr cases`: numbering under two writers, the CLI round trip
with its timeline, masking and units, the digest by e-mail (a fake SMTP server on loopback),
and survey answers imported once."""

from __future__ import annotations

import asyncio
import json
import smtplib
import threading
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cases.deadlines import deadlines
from ivr.cases.facts import figures_from_store
from ivr.cases.owners import owner_of_unit
from ivr.cases.rules import Rules
from ivr.cases.store import NewCase, open_case
from ivr.cli import main
from ivr.routing.model import Routing
from ivr.store.db import make_engine, sqlite_url, upgrade
from models import Call, CaseCounter, User

from .conftest import ROUTING_FILE, vn_time

AT = vn_time("2027-01-29 10:00")


async def test_two_writers_never_share_a_number(db_url: str, routing: Routing) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    owner = owner_of_unit(routing, "1009", AT.date())
    due = deadlines(routing, Rules(), AT)

    async def writer(i: int) -> list[str]:
        out = []
        for n in range(8):
            new = NewCase(AT, "other", f"việc {i}-{n}", "khác", owner)
            out.append((await open_case(engines[i], routing, new, due, f"w{i}")).number)
        return out

    try:
        a, b = await asyncio.gather(writer(0), writer(1))
        assert len(set(a) | set(b)) == 16
        assert sorted(a + b) == [f"PAKN-2027-{n:04d}" for n in range(1, 17)]
        async with AsyncSession(engines[0]) as s:
            assert (await s.get(CaseCounter, 2027)).last == 16  # type: ignore[union-attr]
        late = NewCase(vn_time("2028-01-01 00:30"), "other", "năm mới", "khác", owner)
        case = await open_case(engines[0], routing, late, due, "w0")
        assert case.number == "PAKN-2028-0001"  # local year, counted afresh
    finally:
        for e in engines:
            await e.dispose()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)

    async def seed() -> None:
        engine = make_engine(url)
        async with AsyncSession(engine) as s, s.begin():
            s.add(
                Call(
                    id="pbx1/1769655600.42",
                    channel_id="1769655600.42",
                    node="pbx1",
                    controller="c1",
                    linked_id="1769655600.42",
                    caller_number="0912345678",
                    started_at=AT,
                    disposition="answered",
                    routing_version="v",
                    branch="4",
                    unit=None,
                    endpoint="PJSIP/cchc-4a",
                )
            )
            s.add(
                User(
                    name="chi",
                    password_hash="x",
                    role="clerk",
                    unit="1003",
                    created_at=AT,
                    disabled=False,
                )
            )
            s.add(
                User(
                    name="bình", password_hash="x", role="supervisor", created_at=AT, disabled=False
                )
            )
        await engine.dispose()

    asyncio.run(seed())
    return url


def _ivr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--routing", str(ROUTING_FILE)])
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip_with_timeline_and_masking(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _ivr(
        capsys,
        "cases",
        "open",
        "--db",
        db,
        "--call",
        "pbx1/1769655600.42",
        "--subject",
        "Hồ sơ đất đai trễ hẹn",
        "--category",
        "thủ tục hành chính",
        "--name",
        "Nguyễn Văn An",
        "--at",
        "2027-01-29 10:00",
        "--by",
        "an",
    )
    assert code == 0, err
    assert "PAKN-2027-0001" in out
    assert "15/02/2027" in out
    assert "20/02/2027" in out
    n = "PAKN-2027-0001"
    steps = [
        ("assign", n, "lan", "--by", "an", "--at", "2027-01-29 11:00"),
        ("forward", n, "--by", "an", "--at", "2027-02-01 08:00"),
        ("verify", n, "--by", "lan", "--at", "2027-02-02 08:00"),
        (
            "reply",
            n,
            "--answer",
            "Đã trả kết quả ngày 12/02",
            "--by",
            "lan",
            "--at",
            "2027-02-12 09:00",
        ),
        ("close", n, "--by", "an", "--at", "2027-02-15 09:00"),
    ]
    for step in steps:
        code, _, err = _ivr(capsys, "cases", *step, "--db", db)
        assert code == 0, (step, err)
    code, _, err = _ivr(capsys, "cases", "close", n, "--by", "an", "--db", db)
    assert code == 1
    assert "không chuyển được" in err

    code, out, _ = _ivr(capsys, "cases", "show", n, "--db", db, "--json")
    data = json.loads(out)
    assert (data["status"], data["owner"], data["channel"]) == ("closed", "1009", "hotline")
    assert (data["citizen_name"], data["citizen_phone"]) == ("Nguyễn Văn An", "0912345678")
    assert data["call"] == "pbx1/1769655600.42"
    timeline = [(e["who"], e["kind"], e["before"], e["after"]) for e in data["timeline"]]
    assert timeline == [
        ("an", "status", "", "received"),
        ("an", "assign", "", "lan"),
        ("an", "status", "received", "forwarded"),
        ("lan", "status", "forwarded", "verifying"),
        ("lan", "status", "verifying", "answered"),
        ("an", "status", "answered", "closed"),
    ]
    assert data["timeline"][4]["at"] == "2027-02-12T09:00+07:00"
    code, out, _ = _ivr(capsys, "cases", "show", n, "--db", db)
    assert "diễn biến:" in out
    assert "đang xác minh → đã trả lời" in out

    code, out, _ = _ivr(capsys, "cases", "show", n, "--db", db, "--by", "bình", "--json")
    masked = json.loads(out)
    assert (masked["citizen_name"], masked["citizen_phone"]) == ("N. V. A.", "0912***678")
    code, _, err = _ivr(capsys, "cases", "show", n, "--db", db, "--by", "chi")
    assert code == 1
    assert "đơn vị khác" in err
    code, _, err = _ivr(capsys, "cases", "forward", n, "--db", db, "--by", "bình")
    assert code == 1
    assert "không được xử lý" in err


def test_lists_overdue_and_due_soon_and_digest_by_mail(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for unit, at in (("1009", "2027-01-29 10:00"), ("1003", "2027-02-11 10:00")):
        code, _, err = _ivr(
            capsys,
            "cases",
            "open",
            "--db",
            db,
            "--unit",
            unit,
            "--subject",
            f"việc {unit}",
            "--category",
            "khác",
            "--phone",
            "0987654321",
            "--at",
            at,
            "--by",
            "an",
        )
        assert code == 0, err
    # on 16/02/2027 the first (forward by 15/02) is overdue; the second (forward by 18/02)
    # has two working days left: due soon
    code, out, _ = _ivr(capsys, "cases", "list", "--db", db, "--overdue", "--today", "2027-02-16")
    assert "PAKN-2027-0001" in out
    assert "PAKN-2027-0002" not in out
    code, out, _ = _ivr(capsys, "cases", "list", "--db", db, "--due-soon", "--today", "2027-02-16")
    assert "PAKN-2027-0002" in out
    assert "PAKN-2027-0001" not in out
    code, out, _ = _ivr(capsys, "cases", "list", "--db", db, "--by", "chi", "--json")
    assert [c["number"] for c in json.loads(out)] == ["PAKN-2027-0002"]  # her unit's only

    server = FakeSmtp()
    rules = tmp_path / "cases.toml"
    rules.write_text(
        f'[smtp]\naddress = "127.0.0.1:{server.port}"\nsender = "td@example.vn"\n'
        '[recipients]\n"1009" = ["vp@example.vn"]\n'
    )
    try:
        code, out, err = _ivr(
            capsys,
            "cases",
            "digest",
            "--db",
            db,
            "--today",
            "2027-02-16",
            "--rules",
            str(rules),
            "--send",
        )
    finally:
        server.close()
    assert code == 0, err
    assert "QUÁ HẠN" in out
    assert "sắp đến hạn" in out
    assert "đã gửi 1 e-mail" in out
    assert len(server.messages) == 1
    msg = server.messages[0]
    assert msg["To"] == "vp@example.vn"
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "PAKN-2027-0001" in body
    assert "QUÁ HẠN" in body
    assert "0987654321" not in body


def test_open_refuses_bad_input(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("cases", "open", "--db", db, "--subject", "x", "--by", "an")
    code, _, err = _ivr(capsys, *base, "--category", "khiếu nại", "--unit", "1009")
    assert code == 2
    assert "không có trong danh sách" in err
    code, _, err = _ivr(capsys, *base, "--category", "khác")
    assert code == 2
    assert "--unit" in err
    code, _, err = _ivr(capsys, *base, "--category", "khác", "--unit", "2001")
    assert code == 2
    assert "không hoạt động" in err
    code, _, err = _ivr(capsys, *base, "--category", "khác", "--voicemail", "7")
    assert code == 1
    assert "lời nhắn số 7" in err
    code, _, err = _ivr(capsys, *base, "--category", "khác", "--unit", "1009", "--by", "chi")
    assert code == 1
    assert "không được mở" in err
    code, out, _ = _ivr(capsys, "cases", "list", "--db", db)
    assert "(0 hồ sơ)" in out  # nothing was written


def test_survey_import_once_and_figures(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "zalo.csv"
    f.write_text(
        "tracking_id,call,score,answered_at\n"
        "z1,pbx1/1769655600.42,5,2027-01-29 11:00\nz2,,3,2027-01-30T08:00:00+07:00\n"
    )
    code, out, err = _ivr(capsys, "survey", "import", str(f), "--db", db)
    assert code == 0, err
    assert "đã nhập 2" in out
    code, out, _ = _ivr(capsys, "survey", "import", str(f), "--db", db)
    assert "đã nhập 0 câu trả lời (2 đã có" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("tracking_id,call,score,answered_at\nz3,,4,2027-01-30 08:00\nz4,,9,2027-01-30\n")
    code, _, err = _ivr(capsys, "survey", "import", str(bad), "--db", db)
    assert code == 2
    assert "dòng 3" in err

    async def figures() -> None:
        engine = make_engine(db)
        try:
            fig = await figures_from_store(
                engine, vn_time("2027-01-01 00:00"), vn_time("2027-02-01 00:00")
            )
        finally:
            await engine.dispose()
        assert (fig.satisfaction.answers, fig.satisfaction.mean) == (2, 4.0)  # z3 not written
        assert fig.satisfaction_by_branch["4"].answers == 1  # z1 took the call's branch
        assert fig.satisfaction_by_endpoint["PJSIP/cchc-4a"].csat_percent == 100.0

    asyncio.run(figures())


class FakeSmtp:
    """A tiny SMTP server on loopback that keeps what it is sent (one client at a time)."""

    def __init__(self) -> None:
        import socket

        self.messages: list[Message] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                self._session(f)

    def _session(self, f: object) -> None:
        import io

        assert isinstance(f, io.BufferedRWPair)

        def say(line: str) -> None:
            f.write(line.encode() + b"\r\n")
            f.flush()

        say("220 fake")
        while line := f.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "DATA":
                say("354 go")
                data = b""
                while (chunk := f.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.messages.append(message_from_bytes(data))
                say("250 ok")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=10)


def test_fake_smtp_speaks_enough_smtp() -> None:
    server = FakeSmtp()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as c:
            c.sendmail("a@b.vn", ["c@d.vn"], "Subject: x\r\n\r\nhello\r\n")
    finally:
        server.close()
    assert server.messages[0]["Subject"] == "x"
