"""The console in a real browser: Debian's chromium, headless, driven by selenium (no browser
downloads). Sign in, see a call another controller starts appear on the wallboard, search it,
play a voicemail (the audio element loads and has a duration), mark it handled. Each page is
saved as a screenshot in the test's folder."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.db import make_engine
from ivr.web.app import make_app
from ivr.web.routing_desk import RoutingDesk
from models import CallStep
from tests.test_web import PASSWORD, ROOT, Site, call, make_site, web_config

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="cần gói Debian chromium và chromium-driver"
)
WAIT = 10.0  # generous: a loaded machine, not a timing assertion


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Site, str]]:
    site = await make_site(tmp_path)
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    desk.reload()
    runner = web.AppRunner(make_app(site.engine, web_config(site), desk), access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield site, f"http://127.0.0.1:{port}"
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
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


def until(driver: Any, test: Callable[[Any], Any]) -> Any:
    """Wait for ``test``; an element read while the page is being replaced (after a form is
    sent) is looked up again on the next poll."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, WAIT, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(test)


def walk(
    driver: Any, base: str, shots: Path, started: Callable[[], None], vm: int
) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    seen: dict[str, Any] = {}
    driver.get(base + "/login")
    driver.save_screenshot(str(shots / "login.png"))
    driver.find_element(By.NAME, "name").send_keys("sotaichinh")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    until(driver, lambda d: d.current_url.endswith("/wallboard"))
    until(driver, lambda d: d.find_element(By.ID, "live").get_attribute("data-version"))
    started()  # another controller writes a call in progress
    row = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#calls tr.call"))
    seen["wallboard_row"] = row[0].text
    driver.save_screenshot(str(shots / "wallboard.png"))
    driver.get(base + "/calls?branch=6")
    seen["calls"] = driver.find_element(By.CSS_SELECTOR, "table.list tbody").text
    driver.save_screenshot(str(shots / "calls.png"))
    driver.find_element(By.CSS_SELECTOR, "table.list tbody a").click()
    seen["detail"] = driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    driver.save_screenshot(str(shots / "call.png"))
    driver.get(base + "/voicemails")
    audio = driver.find_element(By.CSS_SELECTOR, f"#vm-{vm} audio")
    until(driver, lambda d: d.execute_script("return arguments[0].readyState >= 1", audio))
    seen["duration"] = driver.execute_script("return arguments[0].duration", audio)
    driver.save_screenshot(str(shots / "voicemails.png"))
    driver.find_element(By.CSS_SELECTOR, f"#vm-{vm} form button").click()
    until(driver, lambda d: "đã xử lý" in d.find_element(By.ID, f"vm-{vm}").text)
    seen["handled"] = driver.find_element(By.ID, f"vm-{vm}").text
    driver.save_screenshot(str(shots / "handled.png"))
    return seen


async def test_console_in_chromium(served: tuple[Site, str], tmp_path: Path) -> None:
    site, base = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    loop = asyncio.get_running_loop()
    now = dt.datetime.now(dt.UTC)

    async def start_call() -> None:
        other = make_engine(site.url, create=False)
        try:
            async with AsyncSession(other) as s, s.begin():
                s.add(
                    call(
                        "live-6",
                        now,
                        branch=None,
                        disposition="in_progress",
                        ended_at=None,
                        caller_number="0933444555",
                    )
                )
                s.add(
                    CallStep(
                        call_id="live-6",
                        seq=0,
                        node="main-menu",
                        kind="menu",
                        outcome="chosen",
                        input="6",
                        at=now,
                    )
                )
        finally:
            await other.dispose()

    def started() -> None:
        asyncio.run_coroutine_threadsafe(start_call(), loop).result(WAIT)

    def run() -> dict[str, Any]:
        driver = browser(tmp_path / "profile")
        try:
            return walk(driver, base, shots, started, site.vm_mine)
        finally:
            driver.quit()

    seen = await asyncio.to_thread(run)
    assert "0933444555" in seen["wallboard_row"]  # branch 6's own caller: not masked
    assert "Đang đổ chuông" in seen["wallboard_row"]
    assert "0987654321" in seen["calls"]
    assert "Người nghe máy" in seen["detail"]
    assert seen["duration"] == pytest.approx(2.0, abs=0.05)
    assert "sotaichinh" in seen["handled"]
    assert sorted(p.name for p in shots.iterdir()) == [
        "call.png",
        "calls.png",
        "handled.png",
        "login.png",
        "voicemails.png",
        "wallboard.png",
    ]


def walk_reports(driver: Any, base: str, shots: Path) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.NAME, "name").send_keys("giamsat")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    until(driver, lambda d: d.current_url.endswith("/wallboard"))
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
    driver.set_window_size(1280, 2200)
    driver.save_screenshot(str(shots / "reports.png"))
    return seen


async def test_reports_page_in_chromium(served: tuple[Site, str], tmp_path: Path) -> None:
    _, base = served
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def run() -> dict[str, Any]:
        driver = browser(tmp_path / "profile")
        try:
            return walk_reports(driver, base, shots)
        finally:
            driver.quit()

    seen = await asyncio.to_thread(run)
    assert seen["drawn"] == ["chart-days", "chart-branches"]
    assert seen["title"].startswith("Kỳ 25/11/2026 – 25/11/2026: 4 cuộc gọi đến")
    assert seen["bars"] == [[1, 2, 1], [0, 0, 0]]  # received, answered per branch (1, 6, none)
    assert seen["errors"] == []  # the vendored script loaded, nothing refused by the CSP
    assert (shots / "reports.png").stat().st_size > 0
