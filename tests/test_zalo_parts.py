"""Zalo survey parts that need no fake ZNS: phone numbers, the token file, the answer webhook."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.survey.zalo import tokens
from ivr.survey.zalo.codes import Verdict, reason, verdict
from ivr.survey.zalo.phone import BadPhone, normalise
from ivr.survey.zalo.webhook import HEADER, PATH, app, signature
from models import Call, SurveyAnswer

from .conftest import vn_time


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "+84912345678",
        "+84 912-345-678",
        "84912345678",
        "912345678",
        "(091) 234 5678",
    ],
)
def test_mobile_numbers_in_every_usual_form_become_84_and_nine_digits(raw: str) -> None:
    assert normalise(raw) == "84912345678"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("02438261234", "không phải số di động"),
        ("0912345", "không phải số di động"),
        ("091234567890", "không phải số di động"),
        ("", "không có số"),
        ("anonymous", "không phải chữ số"),
        ("0912a45678", "không phải chữ số"),
        ("+1 212 555 0100", "không phải số Việt Nam"),
        ("01234567890", "không phải số di động"),
    ],
)
def test_other_numbers_are_refused_with_the_reason(raw: str, why: str) -> None:
    with pytest.raises(BadPhone, match=why):
        normalise(raw)


def test_the_token_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "zalo" / "token.json"
    at = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    tokens.write(path, tokens.Tokens("A1", "R1", at))
    tokens.write(path, tokens.Tokens("A2", "R2", at))
    assert tokens.read(path) == tokens.Tokens("A2", "R2", at)
    assert sorted(p.name for p in path.parent.iterdir()) == ["token.json"]  # no temporary left
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    with pytest.raises(tokens.TokenError, match="hỏng"):
        tokens.read(path)
    with pytest.raises(tokens.TokenError, match="không có tệp"):
        tokens.read(tmp_path / "missing.json")


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)
    return url


@pytest.fixture
async def hook(db: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    engine = make_engine(db)
    async with AsyncSession(engine) as s, s.begin():
        s.add(
            Call(
                id="pbx1/9.1",
                channel_id="9.1",
                node="pbx1",
                controller="c1",
                linked_id="9.1",
                caller_number="0912345678",
                started_at=vn_time("2026-11-25 10:00"),
                disposition="answered",
                routing_version="v1",
                branch="4",
                unit="1004",
                endpoint="PJSIP/cchc-4a",
            )
        )
    runner = web.AppRunner(app(engine, "app1", "oa-secret"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{PATH}", engine
    finally:
        await runner.cleanup()
        await engine.dispose()


def rating(tracking: str, rate: object) -> bytes:
    event = {
        "app_id": "app1",
        "event_name": "user_feedback",
        "timestamp": "1764054000000",
        "message": {
            "tracking_id": tracking,
            "rate": rate,
            "note": "",
            "submit_time": "1764054000000",
            "msg_id": "m1",
        },
    }
    return json.dumps(event).encode()


async def post(url: str, body: bytes, sign: str | None = None) -> int:
    mac = sign if sign is not None else signature("app1", body, "1764054000000", "oa-secret")
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={HEADER: mac}) as r,
    ):
        return r.status


async def answers(engine: AsyncEngine) -> list[tuple[str | None, str, int, str | None, str | None]]:
    async with AsyncSession(engine) as s:
        rows = (await s.scalars(select(SurveyAnswer))).all()
    return [(a.call_id, a.source, a.score, a.branch, a.external_id) for a in rows]


async def test_a_signed_rating_is_stored_with_the_call_once(
    hook: tuple[str, AsyncEngine],
) -> None:
    url, engine = hook
    assert await post(url, rating("pbx1/9.1", 4)) == 200
    assert await post(url, rating("pbx1/9.1", 4)) == 200  # Zalo delivers it again
    assert await answers(engine) == [("pbx1/9.1", "zalo", 4, "4", "pbx1/9.1")]


async def test_a_forged_or_bad_rating_is_refused_and_nothing_stored(
    hook: tuple[str, AsyncEngine],
) -> None:
    url, engine = hook
    body = rating("pbx1/9.1", 5)
    assert await post(url, body, sign="mac=" + "0" * 64) == 401
    assert (
        await post(
            url,
            body.replace(b'"rate": 5', b'"rate": 1'),
            sign=signature("app1", body, "1764054000000", "oa-secret"),
        )
        == 401
    )
    assert await post(url, rating("pbx1/9.1", 9)) == 400
    assert await post(url, b"[1, 2]", sign="") == 400
    assert await answers(engine) == []
    other = json.dumps({"event_name": "user_received_message", "timestamp": "1"}).encode()
    assert await post(url, other, sign=signature("app1", other, "1", "oa-secret")) == 200
    assert await answers(engine) == []


async def test_the_signature_is_taken_with_or_without_its_mac_prefix(
    hook: tuple[str, AsyncEngine],
) -> None:
    """Zalo's docs as read give sha256(app id + body + timestamp + OA secret); whether the header
    says ``mac=`` first is unconfirmed, so both forms (and upper-case hex) are accepted."""
    url, engine = hook
    body = rating("pbx1/9.2", 3)
    digest = hashlib.sha256(b"app1" + body + b"1764054000000" + b"oa-secret").hexdigest()
    assert signature("app1", body, "1764054000000", "oa-secret") == "mac=" + digest
    assert await post(url, body, sign=digest.upper()) == 200
    assert await post(url, rating("pbx1/9.3", 2), sign="MAC=" + hashlib.sha256(
        b"app1" + rating("pbx1/9.3", 2) + b"1764054000000" + b"oa-secret").hexdigest()) == 200  # fmt: skip
    assert await post(url, rating("pbx1/9.4", 2), sign=digest) == 401  # another body's digest
    assert sorted(a[4] or "" for a in await answers(engine)) == ["pbx1/9.2", "pbx1/9.3"]


@pytest.mark.parametrize(("code", "message", "expected"), [
    (0, "Success", Verdict.SENT),
    (-100, "Unknown error", Verdict.RETRY),
    (-108, "Phone number invalid", Verdict.FAILED),
    (-118, "Zalo account not existed", Verdict.FAILED),
    (-124, "Access token invalid", Verdict.REFRESH),
    (-220, "access_token is expired or removed", Verdict.REFRESH),  # the number is not ours
    (-144, "", Verdict.QUOTA),
    (-115, "Out of quota", Verdict.QUOTA),  # whatever its number: nothing more today
    (-114, "User is inactive, or reject the message", Verdict.FAILED),
    (-999, "", Verdict.FAILED),
])  # fmt: skip
def test_each_zns_answer_is_read_by_its_code_and_its_message(
    code: int, message: str, expected: Verdict
) -> None:
    assert verdict(code, message) is expected


def test_a_failure_s_reason_is_told_in_vietnamese_with_zalo_s_words() -> None:
    assert reason(-118, "Zalo account not existed") == "số này không có tài khoản Zalo"
    assert reason(-114, "User is inactive, or reject the message").startswith(
        "người dùng không nhận tin ZNS (mã -114: User is inactive"
    )
    assert reason(-115, "Out of quota").startswith("hết hạn mức hoặc số dư ZNS")
    assert reason(-131, "") == "Zalo trả mã lỗi -131"
