"""The Zalo survey outbox against a fake ZNS on loopback that answers as Zalo's docs say.

The fake: POST /message/template wants the current access token in the ``access_token`` header
(else error -124), a phone 84xxxxxxxxx (else -108), and counts a daily quota (then -144); every
answer is HTTP 200 with ``error`` in the body, unless a phone is scripted to answer 503 or to
hang. POST /oauth exchanges a refresh token once (single use) for a new pair. No real Zalo.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.config import ConfigError, load_settings
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.survey.zalo import service
from ivr.survey.zalo import tokens as token_file
from ivr.survey.zalo.client import ZnsClient
from ivr.survey.zalo.sender import BACKOFF, LEASE, Sender, next_day
from ivr.survey.zalo.tokens import Tokens, TokenStore
from models import Call, CallStep
from models.survey import ZaloOutbox

from .conftest import vn_time

START = vn_time("2026-11-25 10:00")
WAIT = 10.0  # generous: only reached when something is broken


@dataclass
class FakeZns:
    quota: int = 100
    access: str = "AT-1"
    refresh: str = "RT-1"
    issued: int = 1
    script: dict[str, list[str]] = field(default_factory=dict)  # phone → "503" | "hang" | "-100"
    sends: list[dict[str, object]] = field(default_factory=list)
    refreshes: list[str] = field(default_factory=list)
    sent_today: int = 0
    got: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def expire_token(self) -> None:
        self.access = f"AT-expired-{self.issued}"

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.sends.append({**body, "token": request.headers.get("access_token")})
        self.got.set()
        if request.headers.get("access_token") != self.access:
            return web.json_response({"error": -124, "message": "Access token is invalid"})
        phone = str(body.get("phone", ""))
        planned = self.script.get(phone)
        if planned:
            step = planned.pop(0)
            if step == "503":
                return web.Response(status=503, text="Service Unavailable")
            if step == "hang":
                await self.release.wait()
            else:
                return web.json_response({"error": int(step), "message": "scripted"})
        if not re.fullmatch(r"84\d{9}", phone):
            return web.json_response({"error": -108, "message": "Phone number is invalid"})
        if self.sent_today >= self.quota:
            return web.json_response({"error": -144, "message": "OA exceeded daily quota"})
        self.sent_today += 1
        data = {"msg_id": f"m{len(self.sends)}", "sent_time": "0", "quota": {}}
        return web.json_response({"error": 0, "message": "Success", "data": data})

    async def oauth(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.refreshes.append(str(form.get("refresh_token")))
        if request.headers.get("secret_key") != "app-secret" or form.get("app_id") != "app1":
            return web.json_response({"error": -14002, "error_description": "invalid app"})
        if form.get("refresh_token") != self.refresh or form.get("grant_type") != "refresh_token":
            return web.json_response(
                {"error": -14014, "error_description": "Invalid refresh token"}
            )
        self.issued += 1
        self.access, self.refresh = f"AT-{self.issued}", f"RT-{self.issued}"
        pair = {"access_token": self.access, "refresh_token": self.refresh, "expires_in": "90000"}
        return web.json_response(pair)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Rig:
    zns: FakeZns
    engine: AsyncEngine
    clock: Clock
    token_path: Path
    make_sender: Callable[..., Sender]
    base: str

    async def outbox(self) -> dict[str, tuple[str, int, int | None]]:
        async with AsyncSession(self.engine) as s:
            rows = (await s.scalars(select(ZaloOutbox))).all()
        return {r.tracking_id: (r.status, r.attempts, r.error_code) for r in rows}


async def add_call(engine: AsyncEngine, key: str, number: str, agreed: bool = True) -> None:
    async with AsyncSession(engine) as s, s.begin():
        s.add(
            Call(
                id=key,
                channel_id=key.split("/")[-1],
                node="pbx1",
                controller="c1",
                linked_id=key,
                caller_number=number,
                started_at=START - dt.timedelta(minutes=5),
                disposition="answered",
                routing_version="v1",
            )
        )
        outcome = "zalo_consent" if agreed else "zalo_declined"
        s.add(
            CallStep(
                call_id=key,
                seq=0,
                node="survey",
                kind="survey",
                outcome=outcome,
                input="1" if agreed else "2",
                at=START - dt.timedelta(minutes=1),
            )
        )


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)  # the migrations, 0009's outbox included
    return url


@pytest.fixture
async def rig(tmp_path: Path, db: str) -> AsyncIterator[Rig]:
    zns = FakeZns()
    web_app = web.Application()
    web_app.router.add_post("/message/template", zns.send)
    web_app.router.add_post("/oauth", zns.oauth)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    engine = make_engine(db)
    clock = Clock(START)
    path = tmp_path / "zalo-token.json"
    token_file.write(path, Tokens("AT-1", "RT-1", START + dt.timedelta(hours=25)))
    sessions: list[aiohttp.ClientSession] = []

    def make_sender(timeout: float = 0.5) -> Sender:  # a fresh process's: nothing kept
        http = aiohttp.ClientSession()
        sessions.append(http)
        base = f"http://127.0.0.1:{port}"
        store = TokenStore(path, "app1", "app-secret", http, clock, oauth_url=f"{base}/oauth")
        client = ZnsClient(http, store, "tpl-1", url=f"{base}/message/template", timeout=timeout)
        return Sender(engine, client, clock)

    try:
        yield Rig(zns, engine, clock, path, make_sender, f"http://127.0.0.1:{port}")
    finally:
        zns.release.set()
        for http in sessions:
            await http.close()
        await engine.dispose()
        await runner.cleanup()


async def test_a_consent_is_sent_once_with_the_call_key_as_tracking_id(rig: Rig) -> None:
    await add_call(rig.engine, "pbx1/1.1", "0912 345 678")
    await add_call(rig.engine, "pbx1/1.2", "0987654321", agreed=False)
    sender = rig.make_sender()
    assert await sender.round() == 1
    assert [(b["phone"], b["tracking_id"], b["template_id"]) for b in rig.zns.sends] == [
        ("84912345678", "pbx1/1.1", "tpl-1")
    ]
    assert rig.zns.sends[0]["template_data"] == {
        "call_time": "09:55 25/11/2026",
        "tracking_code": "pbx1/1.1",
    }
    assert await rig.outbox() == {"pbx1/1.1": ("sent", 0, None)}
    rig.clock.now += dt.timedelta(hours=1)
    assert await rig.make_sender().round() == 0  # a restart: nothing is sent again
    assert len(rig.zns.sends) == 1


async def test_an_invalid_phone_is_failed_and_never_retried(rig: Rig) -> None:
    await add_call(rig.engine, "pbx1/2.1", "0243 826 1234")  # a Hà Nội landline: not even sent
    await add_call(rig.engine, "pbx1/2.2", "0912000001")
    rig.zns.script["84912000001"] = ["-108"]  # Zalo says the number is invalid
    sender = rig.make_sender()
    assert await sender.round() == 1
    assert await rig.outbox() == {"pbx1/2.1": ("failed", 0, None), "pbx1/2.2": ("failed", 1, -108)}
    rig.clock.now += dt.timedelta(days=1)
    assert await sender.round() == 0
    assert len(rig.zns.sends) == 1


async def test_the_daily_quota_pauses_sending_until_the_next_day(rig: Rig) -> None:
    rig.zns.quota = 1
    for n in range(3):
        await add_call(rig.engine, f"pbx1/3.{n}", f"091200000{n}")
    sender = rig.make_sender()
    assert await sender.round() == 2  # one sent, the second hits the quota, the third waits
    assert sender.paused_until == next_day(START) == vn_time("2026-11-26 00:00")
    states = await rig.outbox()
    assert sorted(s for s, _, _ in states.values()) == ["pending", "pending", "sent"]
    rig.clock.now = vn_time("2026-11-25 23:59")
    assert await sender.round() == 0  # still today: not one request
    assert len(rig.zns.sends) == 2
    rig.zns.sent_today = 0  # Zalo's new day
    rig.clock.now = vn_time("2026-11-26 00:01")
    assert await sender.round() == 2  # quota 1 again: one sent, the next one paused again
    rig.clock.now = vn_time("2026-11-27 00:01")
    rig.zns.sent_today = 0
    assert await sender.round() == 1
    assert sorted(s for s, _, _ in (await rig.outbox()).values()) == ["sent"] * 3
    assert [b["tracking_id"] for b in rig.zns.sends] == [
        "pbx1/3.0",
        "pbx1/3.1",  # -144
        "pbx1/3.1",
        "pbx1/3.2",  # -144
        "pbx1/3.2",
    ]


async def test_an_invalid_token_is_refreshed_once_and_the_pair_kept(rig: Rig) -> None:
    await add_call(rig.engine, "pbx1/4.1", "0912000004")
    rig.zns.expire_token()  # Zalo no longer takes AT-1
    assert await rig.make_sender().round() == 1
    assert [b["token"] for b in rig.zns.sends] == ["AT-1", "AT-2"]
    assert rig.zns.refreshes == ["RT-1"]
    assert await rig.outbox() == {"pbx1/4.1": ("sent", 0, None)}
    saved = json.loads(rig.token_path.read_text())
    assert (saved["access_token"], saved["refresh_token"]) == ("AT-2", "RT-2")
    assert [p.name for p in rig.token_path.parent.iterdir() if p.name.startswith(".")] == []
    # a restart reads the new pair: the spent RT-1 is never offered again
    await add_call(rig.engine, "pbx1/4.2", "0912000005")
    rig.zns.expire_token()
    assert await rig.make_sender().round() == 1
    assert rig.zns.refreshes == ["RT-1", "RT-2"]


async def test_a_refused_refresh_pauses_sending_and_keeps_the_row(rig: Rig) -> None:
    await add_call(rig.engine, "pbx1/5.1", "0912000006")
    rig.zns.expire_token()
    rig.zns.refresh = "RT-someone-else"  # our refresh token was spent elsewhere
    sender = rig.make_sender()
    assert await sender.round() == 1
    assert sender.paused_until is not None
    assert await rig.outbox() == {"pbx1/5.1": ("pending", 0, None)}
    assert json.loads(rig.token_path.read_text())["refresh_token"] == "RT-1"


@pytest.mark.parametrize("trouble", ["503", "-100", "hang"])
async def test_server_trouble_is_retried_with_backoff(rig: Rig, trouble: str) -> None:
    await add_call(rig.engine, "pbx1/6.1", "0912000007")
    rig.zns.script["84912000007"] = [trouble, trouble]
    sender = rig.make_sender()
    assert await sender.round() == 1
    assert await rig.outbox() == {"pbx1/6.1": ("pending", 1, None)}
    assert await sender.round() == 0  # not before its time
    rig.clock.now += BACKOFF[0] + dt.timedelta(seconds=1)
    assert await sender.round() == 1
    assert await rig.outbox() == {"pbx1/6.1": ("pending", 2, None)}
    rig.clock.now += BACKOFF[0] + dt.timedelta(seconds=1)
    assert await sender.round() == 0  # the second wait is longer
    rig.clock.now += BACKOFF[1]
    assert await sender.round() == 1
    assert await rig.outbox() == {"pbx1/6.1": ("sent", 2, None)}
    assert len(rig.zns.sends) == 3


async def test_retries_end_in_failed(rig: Rig) -> None:
    await add_call(rig.engine, "pbx1/7.1", "0912000008")
    rig.zns.script["84912000008"] = ["503"] * (len(BACKOFF) + 1)
    sender = rig.make_sender()
    for wait in (dt.timedelta(0), *BACKOFF):
        rig.clock.now += wait
        assert await sender.round() == 1
    assert await rig.outbox() == {"pbx1/7.1": ("failed", len(BACKOFF) + 1, None)}


async def test_a_restart_mid_send_never_sends_twice(rig: Rig) -> None:
    await add_call(rig.engine, "pbx1/8.1", "0912000009")
    rig.zns.script["84912000009"] = ["hang"]
    rig.zns.release.clear()
    first = rig.make_sender(timeout=WAIT * 10)  # killed while Zalo holds the request
    running = asyncio.create_task(first.round())
    await asyncio.wait_for(rig.zns.got.wait(), WAIT)
    running.cancel()  # the kill: Zalo may have accepted it, we never heard
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await rig.outbox() == {"pbx1/8.1": ("sending", 0, None)}
    again = rig.make_sender()
    assert await again.round() == 0  # its claim still holds: left alone
    rig.clock.now += LEASE + dt.timedelta(seconds=1)
    assert await again.round() == 0
    assert await rig.outbox() == {"pbx1/8.1": ("unsure", 0, None)}
    assert len(rig.zns.sends) == 1


async def test_ivr_run_starts_the_sender_when_zalo_is_configured(rig: Rig, tmp_path: Path) -> None:
    await add_call(rig.engine, "pbx1/9.1", "0912000010")
    env = {
        "IVR_ZALO_APP_ID": "app1",
        "IVR_ZALO_SECRET_KEY": "app-secret",
        "IVR_ZALO_TEMPLATE_ID": "tpl-1",
        "IVR_ZALO_TOKEN_FILE": str(rig.token_path),
        "IVR_ZALO_API_URL": f"{rig.base}/message/template",
        "IVR_ZALO_OAUTH_URL": f"{rig.base}/oauth",
    }
    settings = load_settings(None, env, require_ari=False)
    assert settings.zalo_enabled
    assert settings.redacted()["zalo_secret_key"] == "***"
    running = await service.start(settings, rig.engine, clock=rig.clock)
    try:
        await asyncio.wait_for(rig.zns.got.wait(), WAIT)
    finally:
        await running.stop()
    assert [b["tracking_id"] for b in rig.zns.sends] == ["pbx1/9.1"]


def test_the_zalo_secrets_are_refused_in_the_settings_file(tmp_path: Path) -> None:
    conf = tmp_path / "ivr.toml"
    conf.write_text('zalo_app_id = "app1"\nzalo_secret_key = "s"\n')
    with pytest.raises(ConfigError, match="IVR_ZALO_SECRET_KEY"):
        load_settings(conf, {}, require_ari=False)
    conf.write_text('zalo_app_id = "app1"\nzalo_template_id = "t"\n')
    with pytest.raises(ConfigError, match="IVR_ZALO_SECRET_KEY"):
        load_settings(conf, {}, require_ari=False)
    ok = load_settings(conf, {"IVR_ZALO_SECRET_KEY": "s3cr3t-zalo"}, require_ari=False)
    assert ok.zalo_token_path == tmp_path / "data" / "zalo-token.json"
    assert "s3cr3t-zalo" not in repr(ok)
