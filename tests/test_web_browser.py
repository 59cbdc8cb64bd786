"""The console in a real browser: Debian's chromium, headless, driven by selenium (no browser
downloads), as issue 11 asks.

A supervisor signs in and watches the wallboard while two controllers (each the real flow,
`run_call`, with its own store writer on its own connection to the shared database) take calls:
one caller moves from the menu to a ringing desk to a conversation, the other waits in the menu.
Each state must be in the page within 2 s of the event that caused it — the time of the step
the controller wrote, read back from the database — measured in the browser itself (a
MutationObserver notes when each row first shows a state) and printed. Then the call is searched
on Cuộc gọi and opened, a voicemail plays (the audio element loads and has a duration) and is
marked handled, and a clerk of branch 6 gets 403 on Sở Nội vụ's message. Every page is saved as a
screenshot in the test's folder (the supervisor's, the admin's, the clerk's refusal).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from selenium.webdriver.common.by import By
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord
from ivr.session import CallInfo, DialRequest, DialResult, DialStatus
from ivr.sim.dry_run import HANGUP, FakeSession
from ivr.store.db import make_engine
from ivr.store.writer import StoreWriter
from ivr.web.app import make_app
from ivr.web.data.wallboard import state_of
from ivr.web.keys import WebConfig
from ivr.web.routing_desk import RoutingDesk
from models import Call, CallStep, Voicemail
from tests.test_web import PASSWORD, ROOT, T0, Site, make_site, web_config

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="cần gói Debian chromium và chromium-driver"
)
VN = ZoneInfo("Asia/Ho_Chi_Minh")
WAIT = 15.0  # generous: how long the test waits for the page (a loaded machine)
PUSH_LIMIT = 2.0  # issue 11: a state is on the wallboard within 2 s of its event
CALLER, WAITER = "0933444555", "0911222333"  # the call that moves; the one left in the menu
ALWAYS_OPEN = """schedules:
  office:
    weekly: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"],
             thu: ["00:00-24:00"], fri: ["00:00-24:00"], sat: ["00:00-24:00"],
             sun: ["00:00-24:00"]}
    public_holidays: null

branches:"""
SEEN_JS = """
window.seen = {};
const rows = document.querySelector('#calls tbody');
const note = () => {
  const now = Date.now();
  for (const tr of rows.querySelectorAll('tr.call')) {
    const key = tr.firstChild.textContent + '|' + tr.dataset.state;
    if (!(key in window.seen)) window.seen[key] = now;
  }
};
new MutationObserver(note).observe(rows, {childList: true});
note();
"""
FETCH_STATUS_JS = "const done = arguments[1]; fetch(arguments[0]).then(r => done(r.status));"


@dataclasses.dataclass
class Served:
    site: Site
    base: str
    desk: RoutingDesk
    vm_other_unit: int  # Sở Nội vụ's message: not for branch 6's clerk


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The console as `ivr web` serves it (the wallboard polls at its default pace), on a
    routing whose office never closes: the live calls run at the machine's real time."""
    site = await make_site(tmp_path)
    text = site.routing_file.read_text(encoding="utf-8")
    site.routing_file.write_text(
        re.sub(r"^schedules:\n.*?\n\nbranches:", ALWAYS_OPEN, text, count=1, flags=re.M | re.S),
        encoding="utf-8",
    )
    async with AsyncSession(site.engine) as s, s.begin():
        s.add(
            Voicemail(
                call_id="c-unit",
                name="c-unit",
                location=str(site.recordings / "vm-6.wav"),
                duration_seconds=2.0,
                size_bytes=len(site.audio),
                sha256="0" * 64,
                branch=None,
                unit="1001",
                recorded_at=T0,
                status="new",
            )
        )
    async with AsyncSession(site.engine) as s:
        other = await s.scalar(select(Voicemail.id).where(Voicemail.call_id == "c-unit"))
    assert other is not None
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert desk.reload(), desk.problems
    config = dataclasses.replace(
        web_config(site), poll_seconds=WebConfig.poll_seconds
    )  # as ivr web
    runner = web.AppRunner(make_app(site.engine, config, desk), access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Served(site, f"http://127.0.0.1:{port}", desk, other)
    await runner.cleanup()
    await site.engine.dispose()


def browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_script_timeout(WAIT)
    return driver


def until(driver: Any, test: Callable[[Any], Any]) -> Any:
    """Wait for ``test``; an element read while the page is being replaced (after a form is
    sent) is looked up again on the next poll."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, WAIT, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(test)


def sign_in(driver: Any, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    until(driver, lambda d: d.current_url.endswith("/wallboard"))


def shoot(driver: Any, shots: Path, name: str) -> None:
    """The whole page, not only the window (the DevTools protocol draws beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 5000)}
    png = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    (shots / f"{name}.png").write_bytes(base64.b64decode(png["data"]))


class HeldCaller(FakeSession):
    """A caller who stays in the menu until the test lets them press; the desk rings until the
    test lets it answer; they talk until the test lets them hang up."""

    def __init__(self, info: CallInfo, inputs: list[str]) -> None:
        super().__init__(info, inputs=inputs)
        self.press, self.answer_now, self.hang_up_now = (asyncio.Event() for _ in range(3))

    async def read_digits(
        self,
        max_digits: int,
        first_timeout: float,
        inter_digit_timeout: float,
        terminators: str = "#",
    ) -> str:
        await self.press.wait()
        return await super().read_digits(
            max_digits, first_timeout, inter_digit_timeout, terminators
        )

    async def dial(self, request: DialRequest) -> DialResult:
        await self.answer_now.wait()
        endpoint = request.endpoints[0]
        assert request.on_answer is not None
        request.on_answer(endpoint)
        await self.hang_up_now.wait()
        statuses = dict.fromkeys(request.endpoints, DialStatus.NO_ANSWER)
        statuses[endpoint] = DialStatus.ANSWERED
        return DialResult(DialStatus.ANSWERED, endpoint, 3.0, 8.0, "caller", statuses)

    async def pressed(self) -> None:
        self.press.set()

    async def answered(self) -> None:
        self.answer_now.set()

    def release(self) -> None:
        for event in (self.press, self.answer_now, self.hang_up_now):
            event.set()


class Controllers:
    """Two controllers sharing the console's database, each with its own connection and store
    writer, each running one call through the real flow."""

    def __init__(self, served: Served, spool: Path) -> None:
        self.url, self.spool = served.site.url, spool
        routing = served.desk.routing()
        assert routing is not None
        self.routing = routing
        self.mover = HeldCaller(CallInfo("ctl-a/live-1", CALLER), ["6"])
        self.waiter = HeldCaller(CallInfo("ctl-b/live-2", WAITER), [HANGUP])
        self.tasks: list[asyncio.Task[CallRecord]] = []
        self.writers: list[StoreWriter] = []
        self.engines: list[Any] = []

    async def connect(self) -> None:
        """Each controller up and connected, as a running `ivr run` is before a call comes."""
        for n in range(2):
            engine = make_engine(self.url, create=False)
            async with engine.connect() as db:
                await db.execute(text("SELECT 1"))
            writer = StoreWriter(engine, self.spool / str(n), retry_seconds=0.05)
            await writer.start()
            self.engines.append(engine)
            self.writers.append(writer)

    async def start(self) -> None:
        for session, writer in zip((self.mover, self.waiter), self.writers, strict=True):
            self.tasks.append(asyncio.create_task(run_call(session, self.routing, writer)))

    async def finish(self) -> None:
        """Both callers hang up; their records are written."""
        self.mover.release()
        self.waiter.release()
        await asyncio.wait_for(asyncio.gather(*self.tasks), WAIT)
        for writer in self.writers:
            await writer.drain()

    async def close(self) -> None:
        self.mover.release()
        self.waiter.release()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            await writer.stop()
        for engine in self.engines:
            await engine.dispose()


def watch_call(
    driver: Any, shots: Path, do: Callable[[Callable[[], Awaitable[None]]], None], ctl: Controllers
) -> dict[str, float]:
    """The wallboard as the calls come and move: when (epoch seconds, browser clock) each
    caller's row first showed each state."""

    def seen(state: str, caller: str = CALLER) -> float:
        key = f"{caller}|{state}"
        ms = until(driver, lambda d: d.execute_script("return window.seen[arguments[0]]", key))
        return float(ms) / 1000

    until(driver, lambda d: d.find_element(By.ID, "live").get_attribute("data-version"))
    driver.execute_script(SEEN_JS)
    do(ctl.start)
    at = {"menu": seen("menu"), "waiter menu": seen("menu", WAITER)}
    shoot(driver, shots, "wallboard-menu")
    do(ctl.mover.pressed)
    at["ringing"] = seen("ringing")
    shoot(driver, shots, "wallboard-ringing")
    do(ctl.mover.answered)
    at["talking"] = seen("talking")
    shoot(driver, shots, "wallboard-talking")
    do(ctl.finish)
    until(
        driver,
        lambda d: (
            not [r for r in d.find_elements(By.CSS_SELECTOR, "#calls tr.call") if CALLER in r.text]
        ),
    )
    shoot(driver, shots, "wallboard-after")
    return at


def walk(
    driver: Any,
    served: Served,
    shots: Path,
    do: Callable[[Callable[[], Awaitable[None]]], None],
    ctl: Controllers,
) -> dict[str, Any]:
    base, vm = served.base, served.site.vm_mine
    got: dict[str, Any] = {}
    driver.get(base + "/login")
    shoot(driver, shots, "login")
    sign_in(driver, base, "giamsat")
    got["seen"] = watch_call(driver, shots, do, ctl)
    got["board"] = driver.find_element(By.ID, "today").text
    got["updated"] = (driver.find_element(By.ID, "live").text, dt.datetime.now(VN))
    # Cuộc gọi: search it by the caller's number, open it
    driver.get(base + "/calls")
    driver.find_element(By.NAME, "caller").send_keys(CALLER)
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    until(driver, lambda d: "caller=" in d.current_url)
    got["calls"] = driver.find_element(By.CSS_SELECTOR, "table.list tbody").text
    shoot(driver, shots, "calls")
    driver.find_element(By.CSS_SELECTOR, "table.list tbody a").click()
    until(driver, lambda d: "/calls/detail" in d.current_url)
    got["detail"] = driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    got["timeline"] = driver.find_element(By.CSS_SELECTOR, "table.timeline").text
    shoot(driver, shots, "call")
    # Hộp thư thoại: the message plays in the page, then is marked handled
    driver.get(base + "/voicemails")
    audio = driver.find_element(By.CSS_SELECTOR, f"#vm-{vm} audio")
    until(driver, lambda d: d.execute_script("return arguments[0].readyState >= 1", audio))
    got["duration"] = driver.execute_script("return arguments[0].duration", audio)
    shoot(driver, shots, "voicemails")
    driver.find_element(By.CSS_SELECTOR, f"#vm-{vm} form button").click()
    until(driver, lambda d: "đã xử lý" in d.find_element(By.ID, f"vm-{vm}").text)
    got["handled"] = driver.find_element(By.ID, f"vm-{vm}").text
    shoot(driver, shots, "voicemail-handled")
    for page in ("cases", "reports"):
        driver.get(f"{base}/{page}")
        shoot(driver, shots, page)
    # the admin's own pages
    sign_in(driver, base, "admin")
    for page in ("routing", "users"):
        driver.get(f"{base}/{page}")
        shoot(driver, shots, page)
    # a clerk of branch 6: its own message plays; Sở Nội vụ's is refused
    sign_in(driver, base, "sotaichinh")
    mine, other = f"/voicemails/{vm}/audio", f"/voicemails/{served.vm_other_unit}/audio"
    got["clerk own"] = driver.execute_async_script(FETCH_STATUS_JS, mine)
    got["clerk other"] = driver.execute_async_script(FETCH_STATUS_JS, other)
    driver.get(base + other)
    got["clerk other page"] = driver.find_element(By.TAG_NAME, "body").text
    shoot(driver, shots, "clerk-403")
    gone = f"/voicemails/{served.site.vm_outside}/audio"  # its file is outside: 404, listed
    got["errors"] = [
        e["message"]
        for e in driver.get_log("browser")
        if e.get("level") == "SEVERE"
        and not any(known in e["message"] for known in ("favicon.ico", gone, other))
    ]
    return got


async def event_times(served: Served, key: str) -> dict[str, dt.datetime]:
    """When the call entered each wallboard state, by the wallboard's own reading of the steps
    the controller wrote: the call's start (menu), then the first step after which it rings,
    talks."""
    async with AsyncSession(served.site.engine) as s:
        row = await s.get(Call, key)
        steps = list(
            (
                await s.scalars(
                    select(CallStep).where(CallStep.call_id == key).order_by(CallStep.seq)
                )
            ).all()
        )
    assert row is not None
    out = {"menu": row.started_at}
    for n in range(len(steps)):
        state = state_of(steps[: n + 1], served.desk.routing())[0]
        out.setdefault(state, steps[n].at)
    return out


async def test_console_in_chromium(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    loop = asyncio.get_running_loop()
    ctl = Controllers(served, tmp_path / "spool")

    def do(work: Callable[[], Awaitable[None]]) -> None:
        """Run a controllers' step in the test's loop, from the browser's thread."""

        async def step() -> None:
            await work()

        asyncio.run_coroutine_threadsafe(step(), loop).result(WAIT * 2)

    def run() -> dict[str, Any]:
        driver = browser(tmp_path / "profile")
        try:
            return walk(driver, served, shots, do, ctl)
        finally:
            driver.quit()

    try:
        await ctl.connect()
        got = await asyncio.to_thread(run)
    finally:
        await ctl.close()
    events = await event_times(served, "ctl-a/live-1")
    delays = {s: got["seen"][s] - events[s].timestamp() for s in ("menu", "ringing", "talking")}
    with capsys.disabled():
        print(
            "\nwallboard, event → visible in chromium: "
            + ", ".join(f"{s} {d * 1000:.0f} ms" for s, d in delays.items())
            + f" (limit {PUSH_LIMIT:.0f} s); screenshots: {shots}"
        )
    assert got["seen"]["menu"] < got["seen"]["ringing"] < got["seen"]["talking"]
    for state, delay in delays.items():
        assert delay <= PUSH_LIMIT, f"{state}: {delay:.2f} s after the event"
    shown, now_vn = got["updated"]  # the page's clock is Vietnam's, whatever the browser's zone
    hms = re.search(r"(\d{1,2}):(\d{2}):(\d{2})", shown)
    assert hms is not None, shown
    h, m, sec = (int(x) for x in hms.groups())
    drift = (now_vn.hour * 3600 + now_vn.minute * 60 + now_vn.second) - (h * 3600 + m * 60 + sec)
    assert min(drift % 86400, -drift % 86400) <= 120, (shown, now_vn)
    assert "0933444555" in got["calls"]
    assert "đã nghe máy" in got["calls"]
    assert "cchc-6" in got["detail"]  # who answered
    assert "6" in got["timeline"]
    assert got["duration"] == pytest.approx(2.0, abs=0.05)
    assert "giamsat" in got["handled"]
    assert got["clerk own"] in (200, 206)
    assert got["clerk other"] == 403
    assert "Lời nhắn này thuộc đơn vị khác." in got["clerk other page"]
    assert got["errors"] == [], got["errors"]
    pages = {
        "login", "wallboard-menu", "wallboard-ringing", "wallboard-talking", "wallboard-after",
        "calls", "call", "voicemails", "voicemail-handled", "cases", "reports", "routing",
        "users", "clerk-403",
    }  # fmt: skip
    assert {p.stem for p in shots.iterdir()} == pages
    assert all(p.stat().st_size > 2_000 for p in shots.iterdir())


def walk_reports(driver: Any, base: str, shots: Path) -> dict[str, Any]:
    sign_in(driver, base, "giamsat")
    driver.get(base + "/reports?from=2026-11-25&to=2026-11-25&by=branch&by=hour")
    drawn = until(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, "canvas.report-chart[data-drawn]")
    )
    seen = {
        "drawn": [c.get_attribute("id") for c in drawn],
        "title": driver.find_element(By.CSS_SELECTOR, "#report h2").text,
        # Chart.js keeps its charts by canvas: the bars it drew, per series
        "bars": driver.execute_script(
            "return Chart.getChart('chart-branches').data.datasets.map(d => d.data)"
        ),
        "errors": [
            e["message"]
            for e in driver.get_log("browser")
            if e.get("level") == "SEVERE" and "favicon.ico" not in e["message"]
        ],
    }
    shoot(driver, shots, "reports-day")
    return seen


async def test_reports_page_in_chromium(served: Served, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def run() -> dict[str, Any]:
        driver = browser(tmp_path / "profile")
        try:
            return walk_reports(driver, served.base, shots)
        finally:
            driver.quit()

    seen = await asyncio.to_thread(run)
    assert seen["drawn"] == ["chart-days", "chart-branches"]
    assert seen["title"].startswith("Kỳ 25/11/2026 – 25/11/2026: 4 cuộc gọi đến")
    assert seen["bars"] == [[1, 2, 1], [0, 0, 0]]  # received, answered per branch (1, 6, none)
    assert seen["errors"] == []  # the vendored script loaded, nothing refused by the CSP
    assert (shots / "reports-day.png").stat().st_size > 0
