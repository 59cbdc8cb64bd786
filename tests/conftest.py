from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.routing.model import Routing
from ivr.sim.sipp import AsteriskUnavailable, Pbx, calls_lock, shared_asterisk
from ivr.store.db import sqlite_url, upgrade
from ivr.testing.pg import PgServer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ROUTING_FILE = ROOT / "routing" / "hotline.yaml"
MANIFEST_FILE = ROOT / "prompts" / "manifest.yaml"
IN_CI = os.environ.get("CI", "").lower() == "true"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn_time(text: str) -> dt.datetime:
    """A wall-clock time in Vietnam, e.g. "2026-11-25 09:00" (a Wednesday)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN)


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


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer | None) -> str:
    """An empty, upgraded call-record database on each backend."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        if pg_server is None:
            pytest.skip(
                "PostgreSQL is not installed (Debian package postgresql; scripts/setup "
                "installs it as root)"
            )
        url = await pg_server.create_database(f"ivr_test_{os.getpid()}_{next(_db_counter)}")
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
            yield RealAsterisk.from_env(os.environ)
            return
        if os.geteuid() != 0 or shutil.which("debootstrap") is None:
            pytest.skip(_INSTALL)
        try:
            with shared_asterisk(ROOT) as pbx:
                yield pbx
        except AsteriskUnavailable as e:
            last = str(e).splitlines()[-2:]
            pytest.skip(f"scripts/asterisk up failed: {' / '.join(last)}")
