from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
import structlog
import uvloop
from _pytest.runner import runtestprotocol

from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.routing.model import Routing
from ivr.sim.sipp import AsteriskUnavailable, Pbx, calls_lock, shared_asterisk
from ivr.store.db import sqlite_url, upgrade
from ivr.testing.pg import PgServer

if TYPE_CHECKING:
    from ivr.ari.app import StasisApp

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ROUTING_FILE = ROOT / "routing" / "hotline.yaml"
MANIFEST_FILE = ROOT / "prompts" / "manifest.yaml"
IN_CI = os.environ.get("CI", "").lower() == "true"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked ``event_loops`` (the transports and servers the calls go through) run on
    both loops `ivr run` and `ivr agi` may run on (the event_loop setting); the others on
    asyncio's."""
    if item.get_closest_marker("event_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


async def rollup_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every rollup table's rows, in key order: two stores' counts compared whole."""
    from sqlalchemy import select

    from ivr.store.db import make_engine
    from models import call_days, call_hours, call_rollups, lookup_rollups

    engine = make_engine(url)
    found = {}
    async with engine.connect() as conn:
        for table in (call_rollups, call_days, call_hours, lookup_rollups):
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            found[table.name] = [tuple(r) for r in rows]
    await engine.dispose()
    return found


def vn_time(text: str) -> dt.datetime:
    """A wall-clock time in Vietnam, e.g. "2026-11-25 09:00" (a Wednesday)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN)


async def stop_controller(app: StasisApp, task: asyncio.Task[None]) -> None:
    """A test's controller stopped: its calls let go, its task ended, its ARI client closed."""
    await app.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await app.client.close()


@pytest.fixture(scope="session")
def prompt_ids() -> list[str]:
    return list(load_manifest(MANIFEST_FILE))


@pytest.fixture(scope="session")
def routing(prompt_ids: list[str]) -> Routing:
    return load_routing(ROUTING_FILE, prompt_ids)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """`ivr` commands configure structlog onto the captured stderr: undo it after each test."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """One throwaway PostgreSQL cluster for the session (None where PostgreSQL is absent)."""
    folder = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    server = PgServer.create(folder)
    try:
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


_db_counter = itertools.count()


async def pg_database(pg_server: PgServer | None, name: str = "ivr_test") -> str:
    """A new, empty, upgraded call-record database on the session's PostgreSQL (the test is
    skipped where PostgreSQL is absent, which CI counts as a failure)."""
    if pg_server is None:
        pytest.skip(
            "PostgreSQL is not installed (Debian package postgresql; scripts/setup installs it "
            "as root)"
        )
    url = await pg_server.create_database(f"{name}_{os.getpid()}_{next(_db_counter)}")
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer | None) -> str:
    """An empty, upgraded call-record database on each backend."""
    if request.param == "postgresql":
        return await pg_database(pg_server)
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """Under CI (CI=true) a skipped test is a failure: a green run means everything ran."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (CI=true), which must run everything: {reason}"


# Where the real Asterisk of the tests is (IVR_TEST_*): the demo's and the benchmarks' type too.
RealAsterisk = Pbx

_INSTALL = (
    "a real Asterisk is needed: run the tests as root on Debian (scripts/asterisk up builds it "
    "from the Debian archive; scripts/setup installs sip-tester and debootstrap), or set "
    "IVR_TEST_ARI_URL to one"
)


@pytest.fixture(scope="session")
def real_asterisk() -> Iterator[RealAsterisk]:
    """The real Asterisk, for this session alone (the calls lock: sessions of any checkout wait
    for the one before): IVR_TEST_ARI_URL's when given, else the one `scripts/asterisk up`
    starts or shares; `down` lets go of it at the end (the last user stops it)."""
    with calls_lock():
        if os.environ.get("IVR_TEST_ARI_URL"):
            yield _remember(RealAsterisk.from_env(os.environ))
            return
        if os.geteuid() != 0 or shutil.which("debootstrap") is None:
            pytest.skip(_INSTALL)
        try:
            with shared_asterisk(ROOT) as pbx:
                yield _remember(pbx)
        except AsteriskUnavailable as e:
            last = str(e).splitlines()[-2:]
            pytest.skip(f"scripts/asterisk up failed: {' / '.join(last)}")


# --- an Asterisk crash: scripts/asterisk's keeper starts it again ----------------------------
# Asterisk 22.10.1 once died of a segfault (in libjansson) during the suite, and every later
# real-Asterisk test failed against a dead PBX. Now the keeper starts it again on the same
# configuration (as systemd does in production), later tests wait until it has booted, and a test
# that failed while it crashed runs once more. The summary names every such crash: it is never
# silent.

_session_pbx: list[RealAsterisk] = []  # the session's real Asterisk, once a test asked for it
_crashes_before_session: list[int] = []  # how many the keeper had logged when it was found
_crashed_during: list[tuple[str, str, list[str]]] = []  # test, what was done, the keeper's lines


def _remember(pbx: RealAsterisk) -> RealAsterisk:
    _session_pbx.append(pbx)
    _crashes_before_session.append(len(pbx.crashes()))
    return pbx


def _crashes() -> list[str]:
    return _session_pbx[-1].crashes() if _session_pbx else []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if "real_asterisk" not in getattr(item, "fixturenames", ()):
        return None  # pytest's own protocol
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    seen = len(_crashes()) if _session_pbx else None
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    if seen is None:  # this test's set-up found the Asterisk
        seen = _crashes_before_session[-1] if _crashes_before_session else 0
    crashed = _crashes()[seen:]
    if crashed:
        try:
            _session_pbx[-1].wait_booted()
        except AsteriskUnavailable as e:
            _crashed_during.append((item.nodeid, f"failed; Asterisk is not back: {e}", crashed))
        else:
            failed = [r.longreprtext.strip().splitlines() for r in reports if r.failed]
            if failed:
                why = failed[0][-1] if failed[0] else "?"
                _crashed_during.append((item.nodeid, f"failed ({why}); run again", crashed))
                item._initrequest()  # type: ignore[attr-defined]  # fresh function fixtures
                reports = runtestprotocol(item, nextitem=nextitem, log=False)
            else:
                _crashed_during.append((item.nodeid, "passed", crashed))
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _crashed_during:
        return
    terminalreporter.section("Asterisk died during these tests (scripts/asterisk restarted it)")
    for nodeid, done, lines in _crashed_during:
        terminalreporter.write_line(f"{nodeid}: {done}")
        for line in lines:
            terminalreporter.write_line(f"    {line}")
