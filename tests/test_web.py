"""The web console through aiohttp's test client: roles on every route, sign-in and its limits,
CSRF, cookies and headers, escaping, keyset pages, voicemail audio (Range, the recordings
folder), the wallboard's push, the routing page, the users CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.cli import main
from ivr.store.db import make_engine, upgrade
from ivr.web.app import make_app
from ivr.web.data import users
from ivr.web.keys import WebConfig
from ivr.web.passwords import hash_password
from ivr.web.roles import Role
from ivr.web.routing_desk import RoutingDesk
from models import Call, CallStep, Voicemail

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "mật-khẩu-đủ-dài"
T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # 09:00 in Vietnam
EVIL = "<script>alert(1)</script>"


@dataclass
class Site:
    engine: AsyncEngine
    url: str
    recordings: Path
    routing_file: Path
    vm_mine: int  # branch 6's message
    vm_outside: int  # a row whose file lies outside the recordings folder
    audio: bytes


def call(key: str, at: dt.datetime, **kw: object) -> Call:
    values: dict[str, object] = {
        "id": key,
        "channel_id": key,
        "node": "",
        "controller": "",
        "linked_id": key,
        "caller_number": "0912345678",
        "caller_name": "",
        "dialed": "18001022",
        "started_at": at,
        "answered_at": None,
        "ended_at": at + dt.timedelta(seconds=40),
        "path": "",
        "digits": "",
        "branch": "1",
        "unit": None,
        "endpoint": None,
        "disposition": "answered",
        "wait_seconds": 5.0,
        "talk_seconds": 30.0,
        "routing_version": "v1",
    }
    values.update(kw)
    return Call(**values)


def write_wav(path: Path, seconds: float = 2.0) -> bytes:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * int(8000 * seconds))
    return path.read_bytes()


async def make_site(tmp: Path) -> Site:
    url = f"sqlite+aiosqlite:///{tmp / 'ivr.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url, create=False)
    hashed = hash_password(PASSWORD)
    await users.add_user(engine, "admin", Role.ADMIN, hashed)
    await users.add_user(engine, "giamsat", Role.SUPERVISOR, hashed)
    await users.add_user(engine, "sotaichinh", Role.CLERK, hashed, branch="6")
    await users.add_user(engine, "sonoivu", Role.CLERK, hashed, unit="1001")
    recordings = tmp / "recordings"
    recordings.mkdir()
    audio = write_wav(recordings / "vm-6.wav")
    (tmp / "secret.wav").write_bytes(audio)
    async with AsyncSession(engine) as s, s.begin():
        s.add(call("c-6", T0, branch="6", disposition="voicemail", caller_number="0987654321"))
        s.add(call("c-evil", T0 + dt.timedelta(minutes=1), caller_name=EVIL, caller_number=EVIL))
        s.add(call("c-unit", T0 + dt.timedelta(minutes=2), branch=None, unit="1001"))
        s.add(call("c-out", T0 + dt.timedelta(minutes=3), branch="6", disposition="voicemail"))
        s.add(
            CallStep(
                call_id="c-6",
                seq=0,
                node="main-menu",
                kind="menu",
                outcome="chosen",
                input="6",
                at=T0,
            )
        )
        for key, location in (
            ("c-6", str(recordings / "vm-6.wav")),
            ("c-out", str(tmp / "secret.wav")),
        ):
            s.add(
                Voicemail(
                    call_id=key,
                    name=key,
                    location=location,
                    duration_seconds=2.0,
                    size_bytes=len(audio),
                    sha256="0" * 64,
                    branch="6",
                    unit=None,
                    recorded_at=T0,
                    status="new",
                )
            )
    async with AsyncSession(engine) as s:
        vms = {
            v.call_id: v.id
            for v in (await s.scalars(__import__("sqlalchemy").select(Voicemail))).all()
        }
    routing_file = tmp / "hotline.yaml"
    routing_file.write_bytes((ROOT / "routing" / "hotline.yaml").read_bytes())
    return Site(engine, url, recordings, routing_file, vms["c-6"], vms["c-out"], audio)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await make_site(tmp_path)
    yield s
    await s.engine.dispose()


def web_config(site: Site) -> WebConfig:
    return WebConfig(
        recordings_dir=site.recordings,
        secret_key=b"k" * 32,
        routing=site.routing_file,
        prompts=ROOT / "prompts" / "manifest.yaml",
        poll_seconds=0.05,
    )


@pytest.fixture
async def client(site: Site) -> AsyncIterator[TestClient[object, object]]:
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert desk.reload()
    app = make_app(site.engine, web_config(site), desk)
    async with TestClient(TestServer(app)) as c:
        yield c


def token_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def login(
    c: TestClient[object, object], name: str, password: str = PASSWORD
) -> ClientResponse:
    page = await c.get("/login")
    token = token_of(await page.text())
    return await c.post(
        "/login", data={"name": name, "password": password, "csrf": token}, allow_redirects=False
    )


async def signed_in(c: TestClient[object, object], name: str) -> str:
    r = await login(c, name)
    assert r.status == 302, await r.text()
    return token_of(await (await c.get("/calls")).text())


# --- roles -----------------------------------------------------------------------------------

ROUTES = [
    "/wallboard",
    "/wallboard/state",
    "/calls",
    "/calls/detail?id=c-6",
    "/calls/detail?id=c-evil",
    "/voicemails",
    "/reports",
    "/routing",
    "/users",
    "/reports/download/csv?period=2026-11",
    "/cases",
    "/cases/new?call=c-6",
]
EXPECTED = {
    #         wall wst  calls c-6  c-evil vms  reports routing users csv  cases new-case
    None: [302, 401, 302, 302, 302, 302, 302, 302, 302, 302, 302, 302],
    "admin": [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200],
    "giamsat": [200, 200, 200, 200, 200, 200, 200, 403, 403, 200, 200, 403],
    "sotaichinh": [200, 200, 200, 200, 403, 200, 403, 403, 403, 403, 200, 200],
    "sonoivu": [200, 200, 200, 403, 403, 200, 403, 403, 403, 403, 200, 403],
}


@pytest.mark.parametrize("who", list(EXPECTED))
async def test_every_route_for_every_role(
    client: TestClient[object, object], who: str | None
) -> None:
    if who is not None:
        await signed_in(client, who)
    got = []
    for route in ROUTES:
        headers = {"Accept": "application/json"} if route == "/wallboard/state" else {}
        r = await client.get(route, allow_redirects=False, headers=headers)
        got.append(r.status)
    assert dict(zip(ROUTES, got, strict=True)) == dict(zip(ROUTES, EXPECTED[who], strict=True))


async def test_audio_route_by_role(client: TestClient[object, object], site: Site) -> None:
    route = f"/voicemails/{site.vm_mine}/audio"
    assert (await client.get(route, allow_redirects=False)).status == 302  # to the login page
    await signed_in(client, "sonoivu")
    assert (await client.get(route)).status == 403  # another unit's message
    client.session.cookie_jar.clear()
    await signed_in(client, "sotaichinh")
    assert (await client.get(route)).status == 200


async def test_clerk_sees_only_its_branch(client: TestClient[object, object]) -> None:
    await signed_in(client, "sotaichinh")
    html = await (await client.get("/calls")).text()
    assert "c-6" in html
    assert "c-out" in html
    assert "c-evil" not in html
    assert "c-unit" not in html
    # asking for another branch explicitly still shows nothing of it
    html = await (await client.get("/calls?branch=1")).text()
    assert "c-evil" not in html


# --- sign-in ---------------------------------------------------------------------------------


async def test_wrong_password_then_lockout(client: TestClient[object, object]) -> None:
    for _ in range(5):
        r = await login(client, "giamsat", "sai-mật-khẩu-rồi")
        assert r.status == 401
        assert "Sai tên đăng nhập hoặc mật khẩu" in await r.text()
    r = await login(client, "giamsat")  # the right password, but locked out now
    assert r.status == 429
    assert (await client.get("/calls", allow_redirects=False)).status == 302


async def test_cookie_is_secure_behind_an_https_proxy(
    client: TestClient[object, object],
) -> None:
    """`ivr web` behind the HTTPS proxy the README asks for: the proxy says so in
    X-Forwarded-Proto, and the session cookie never travels in clear."""
    page = await client.get("/login")  # (a Secure cookie here would not come back over http)
    form = {"name": "giamsat", "password": PASSWORD, "csrf": token_of(await page.text())}
    r = await client.post(
        "/login", data=form, headers={"X-Forwarded-Proto": "https"}, allow_redirects=False
    )
    assert r.status == 302
    assert "Secure" in r.headers["Set-Cookie"]


async def test_cookie_flags_and_headers(client: TestClient[object, object]) -> None:
    r = await login(client, "giamsat")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never return
    assert PASSWORD not in cookie
    assert "giamsat" not in cookie
    page = await client.get("/calls")
    assert page.headers["X-Frame-Options"] == "DENY"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in (await page.text()).replace('<script src="', "")


async def test_logout_needs_csrf_and_ends_the_session(client: TestClient[object, object]) -> None:
    token = await signed_in(client, "giamsat")
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    r = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert r.status == 302
    assert (await client.get("/calls", allow_redirects=False)).status == 302


async def test_disabled_account_is_out_at_once(
    client: TestClient[object, object], site: Site
) -> None:
    await signed_in(client, "giamsat")
    await users.set_disabled(site.engine, "giamsat", True)
    assert (await client.get("/calls", allow_redirects=False)).status == 302
    assert (await login(client, "giamsat")).status == 401


# --- pages -----------------------------------------------------------------------------------


async def test_caller_id_is_escaped(client: TestClient[object, object]) -> None:
    await signed_in(client, "giamsat")
    html = await (await client.get("/calls")).text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html = await (await client.get("/calls/detail?id=c-evil")).text()
    assert EVIL not in html
    assert "&lt;script&gt;" in html


async def test_keyset_pages_cover_every_call_once(
    client: TestClient[object, object], site: Site
) -> None:
    async with AsyncSession(site.engine) as s, s.begin():
        for i in range(117):  # several share a start time: the key breaks the tie
            s.add(call(f"p-{i:03d}", T0 - dt.timedelta(minutes=i // 3), branch="2"))
    await signed_in(client, "giamsat")
    seen: list[str] = []
    url: str | None = "/calls?branch=2"
    pages = 0
    while url is not None:
        html = await (await client.get(url)).text()
        seen += re.findall(r"detail\?id=(p-\d{3})", html)
        m = re.search(r'id="next" href="([^"]+)"', html)
        url = m.group(1).replace("&amp;", "&") if m else None
        pages += 1
    assert pages == 3
    assert sorted(seen) == [f"p-{i:03d}" for i in range(117)]
    assert len(seen) == len(set(seen))


async def test_search_filters(client: TestClient[object, object]) -> None:
    await signed_in(client, "giamsat")
    html = await (await client.get("/calls?caller=0987654321")).text()
    assert re.findall(r"detail\?id=([\w-]+)", html) == ["c-6"]
    html = await (
        await client.get("/calls?disposition=voicemail&from=2026-11-25&to=2026-11-25")
    ).text()
    assert sorted(re.findall(r"detail\?id=([\w-]+)", html)) == ["c-6", "c-out"]
    html = await (await client.get("/calls?from=2026-11-26")).text()
    assert re.findall(r"detail\?id=([\w-]+)", html) == []
    assert (await client.get("/calls?from=hôm-qua")).status == 400


async def test_clerk_sees_other_callers_masked_on_the_wallboard(
    client: TestClient[object, object], site: Site
) -> None:
    async with AsyncSession(site.engine) as s, s.begin():
        s.add(
            call(
                "live-1",
                T0,
                branch="1",
                disposition="in_progress",
                caller_number="0911222333",
                ended_at=None,
            )
        )
    await signed_in(client, "sotaichinh")
    board = client.app[__import__("ivr.web.pages.wallboard", fromlist=["BOARD"]).BOARD]
    await board.refresh()
    state = await (await client.get("/wallboard/state")).json()
    assert [c["caller"] for c in state["calls"]] == ["0911***333"]


async def test_call_detail_shows_the_timeline(client: TestClient[object, object]) -> None:
    await signed_in(client, "giamsat")
    html = await (await client.get("/calls/detail?id=c-6")).text()
    assert "Diễn biến" in html
    assert "main-menu" in html
    assert "chosen" in html


# --- voicemail -------------------------------------------------------------------------------


async def test_audio_supports_range(client: TestClient[object, object], site: Site) -> None:
    await signed_in(client, "sotaichinh")
    route = f"/voicemails/{site.vm_mine}/audio"
    whole = await client.get(route)
    assert whole.status == 200
    assert await whole.read() == site.audio
    part = await client.get(route, headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(site.audio)}"
    assert await part.read() == site.audio[100:200]


async def test_audio_outside_the_recordings_folder_is_refused(
    client: TestClient[object, object], site: Site
) -> None:
    await signed_in(client, "giamsat")
    r = await client.get(f"/voicemails/{site.vm_outside}/audio")
    assert r.status == 404
    assert (await client.get("/voicemails/..%2F..%2Fetc%2Fpasswd/audio")).status == 404


async def test_mark_handled_needs_csrf_and_records_who(
    client: TestClient[object, object], site: Site
) -> None:
    token = await signed_in(client, "sotaichinh")
    route = f"/voicemails/{site.vm_mine}/mark"
    assert (await client.post(route, data={"status": "handled"})).status == 403
    assert (await client.post(route, data={"status": "handled", "csrf": "sai"})).status == 403
    r = await client.post(route, data={"status": "handled", "csrf": token}, allow_redirects=False)
    assert r.status == 302
    async with AsyncSession(site.engine) as s:
        vm = await s.get(Voicemail, site.vm_mine)
    assert vm is not None
    assert vm.status == "handled"
    assert vm.status_by == "sotaichinh"
    assert vm.status_at is not None


async def test_clerk_cannot_mark_another_units_message(
    client: TestClient[object, object], site: Site
) -> None:
    token = await signed_in(client, "sonoivu")
    r = await client.post(
        f"/voicemails/{site.vm_mine}/mark", data={"status": "handled", "csrf": token}
    )
    assert r.status == 403


# --- wallboard -------------------------------------------------------------------------------


async def test_wallboard_pushes_a_call_written_by_another_controller(
    client: TestClient[object, object], site: Site
) -> None:
    await signed_in(client, "giamsat")
    r = await client.get("/wallboard/events")
    assert r.headers["Content-Type"].startswith("text/event-stream")

    async def next_board() -> dict[str, object]:
        while True:
            line = (await r.content.readline()).decode()
            if line.startswith("data: "):
                board: dict[str, object] = json.loads(line[6:])
                return board

    first = await asyncio.wait_for(next_board(), 10)
    assert first["calls"] == []
    other = make_engine(site.url, create=False)  # another controller's connection
    try:
        async with AsyncSession(other) as s, s.begin():
            s.add(call("live-6", T0, branch=None, disposition="in_progress", ended_at=None))
            s.add(
                CallStep(
                    call_id="live-6",
                    seq=0,
                    node="main-menu",
                    kind="menu",
                    outcome="chosen",
                    input="6",
                    at=T0,
                )
            )
        board = await asyncio.wait_for(next_board(), 10)
    finally:
        await other.dispose()
    calls = board["calls"]
    assert isinstance(calls, list)
    assert len(calls) == 1
    assert calls[0]["state"] == "ringing"  # chosen 6 (branch-6 dials): no state step yet
    assert calls[0]["branch"] == "6"
    assert board["branches"] == {
        "6": {
            "menu": 0,
            "ringing": 1,
            "talking": 0,
            "voicemail": 0,
            "waiting_since": calls[0]["since"],
        }
    }
    r.close()


# --- routing ---------------------------------------------------------------------------------


async def test_routing_reload_keeps_the_old_version_on_a_bad_file(
    client: TestClient[object, object], site: Site
) -> None:
    token = await signed_in(client, "admin")
    old = re.search(r'id="version">([^<]+)<', await (await client.get("/routing")).text())
    assert old
    site.routing_file.write_text(
        site.routing_file.read_text().replace("next: main-menu", "next: nowhere")
    )
    html = await (await client.post("/routing/reload", data={"csrf": token})).text()
    assert "giữ phiên bản cũ" in html
    assert "nowhere" in html
    assert f'id="version">{old.group(1)}<' in html
    site.routing_file.write_text(
        site.routing_file.read_text().replace("next: nowhere", "next: main-menu") + "\n# đổi\n"
    )
    html = await (await client.post("/routing/reload", data={"csrf": token})).text()
    assert "đã nạp phiên bản mới" in html
    assert "+# đổi" in html


async def test_routing_simulate(client: TestClient[object, object]) -> None:
    token = await signed_in(client, "admin")
    r = await client.post(
        "/routing/simulate",
        data={"csrf": token, "at": "2026-11-25T09:00", "keys": "6", "clerk": "no_answer"},
    )
    html = await r.text()
    assert r.status == 200
    assert "branch-6" in html
    assert "vm-6" in html
    bad = await client.post(
        "/routing/simulate", data={"csrf": token, "at": "2026-11-25T09:00", "keys": "x"}
    )
    assert bad.status == 400


# --- the users CLI ---------------------------------------------------------------------------


def test_users_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IVR_DATABASE_URL", raising=False)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    assert main(["db", "upgrade"]) == 0
    pw = tmp_path / "pw"
    pw.write_text("một-mật-khẩu-dài\n")
    assert (
        main(
            ["users", "add", "lan", "--role", "clerk", "--unit", "1003", "--password-file", str(pw)]
        )
        == 0
    )
    assert (
        main(
            ["users", "add", "lan", "--role", "clerk", "--unit", "1003", "--password-file", str(pw)]
        )
        == 1
    )
    assert main(["users", "add", "x", "--role", "clerk", "--password-file", str(pw)]) == 2
    (tmp_path / "short").write_text("ngắn\n")
    assert (
        main(["users", "add", "y", "--role", "admin", "--password-file", str(tmp_path / "short")])
        == 2
    )
    assert main(["users", "disable", "lan"]) == 0
    assert main(["users", "password", "nobody", "--password-file", str(pw)]) == 1
    capsys.readouterr()
    assert main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "lan\tclerk\tđơn vị 1003\tđã khoá" in out
    assert "một-mật-khẩu-dài" not in out
    with pytest.raises(SystemExit):
        main(["users", "add", "z", "--role", "admin", "--password", "lộ"])


def test_the_previous_routing_version_is_known_after_a_restart(tmp_path: Path) -> None:
    """The diff on Định tuyến compares with the version in force before, even when the console
    was restarted in between: each version taken is kept in the data folder's history."""
    routing = tmp_path / "hotline.yaml"
    shipped = (ROOT / "routing" / "hotline.yaml").read_text(encoding="utf-8")
    routing.write_text(shipped, encoding="utf-8")
    manifest, history = ROOT / "prompts" / "manifest.yaml", tmp_path / "data" / "routing-history"
    first = RoutingDesk(routing, manifest, history=history)
    assert first.reload()
    assert first.previous is None
    assert first.diff() == []
    assert first.current is not None
    old_version = first.current.routing.version

    changed = shipped.replace("ring_seconds: 20", "ring_seconds: 25", 1)
    assert changed != shipped
    routing.write_text(changed, encoding="utf-8")
    restarted = RoutingDesk(routing, manifest, history=history)  # a new console process
    assert restarted.reload()
    assert restarted.previous is not None
    assert restarted.previous.version == old_version
    diff = restarted.diff()
    assert any(line.startswith("-") and "ring_seconds: 20" in line for line in diff)
    assert any(line.startswith("+") and "ring_seconds: 25" in line for line in diff)
    assert restarted.current is not None
    kept = sorted(f.stem for f in history.glob("*.yaml"))
    assert kept == sorted([old_version, restarted.current.routing.version])


def test_a_history_folder_that_cannot_be_written_never_stops_a_reload(tmp_path: Path) -> None:
    blocked = tmp_path / "routing-history"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    desk = RoutingDesk(
        ROOT / "routing" / "hotline.yaml", ROOT / "prompts" / "manifest.yaml", history=blocked
    )
    assert desk.reload()
    assert desk.previous is None
