from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing
from ivr.routing.model import Routing
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


@dataclass(frozen=True)
class RealAsterisk:
    """Where the real Asterisk of the tests is, as `scripts/asterisk env` says (IVR_TEST_*)."""

    ari_url: str
    ari_user: str
    ari_password: str
    ari_app: str
    sip: str  # host:port of its SIP transport
    phone_port: int  # the first SIPp desk phone's port (--static-contacts)
    caller_port: int
    service: str  # a number routed to [hotline-inbound] (Stasis)
    agi_service: str  # a number routed to [hotline-agi] ("" when there is none)
    agi_port: int  # where the dialplan's AGI() looks for the suite's FastAGI server
    recordings_dir: str  # the recording folder as Asterisk sees it
    recordings_host: str  # the same folder as the tests see it ("" when not shared)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> RealAsterisk:
        return cls(
            ari_url=env["IVR_TEST_ARI_URL"],
            ari_user=env.get("IVR_TEST_ARI_USER", "ivr"),
            ari_password=env.get("IVR_TEST_ARI_PASSWORD", ""),
            ari_app=env.get("IVR_TEST_ARI_APP", "hotline"),
            sip=env.get("IVR_TEST_SIP", "127.0.0.1:5060"),
            phone_port=int(env.get("IVR_TEST_PHONE_PORT", "5070")),
            caller_port=int(env.get("IVR_TEST_CALLER_PORT", "5300")),
            service=env.get("IVR_TEST_SERVICE", "18001022"),
            agi_service=env.get("IVR_TEST_AGI_SERVICE", ""),
            agi_port=int(env.get("IVR_TEST_AGI_PORT", "4573")),
            recordings_dir=env.get("IVR_TEST_RECORDINGS_DIR", "/var/spool/asterisk/recording"),
            recordings_host=env.get("IVR_TEST_RECORDINGS_HOST", ""),
        )


_INSTALL = (
    "a real Asterisk is needed: run the tests as root on Debian (scripts/asterisk up builds it "
    "from the Debian archive; scripts/setup installs sip-tester and debootstrap), or set "
    "IVR_TEST_ARI_URL to one"
)


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "asterisk"), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


# One test session at a time places calls through the real Asterisk: the SIPp desk phones sit
# on fixed ports (the configuration's static contacts), so two sessions would answer each
# other's calls. Sessions (of any checkout) wait here for the one before to finish.
CALLS_LOCK = Path(os.environ.get("IVR_TEST_ASTERISK_LOCK", "/tmp/ivr-real-asterisk.lock"))


@pytest.fixture(scope="session")
def real_asterisk() -> Iterator[RealAsterisk]:
    """The real Asterisk, for this session alone: IVR_TEST_ARI_URL's when given, else the one
    `scripts/asterisk up` starts or shares; `down` lets go of it at the end (the last user
    stops it)."""
    with CALLS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield from _real_asterisk()


def _real_asterisk() -> Iterator[RealAsterisk]:
    if os.environ.get("IVR_TEST_ARI_URL"):
        yield RealAsterisk.from_env(dict(os.environ))
        return
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip(_INSTALL)
    up = _script("up")
    if up.returncode != 0:
        last = up.stderr.strip().splitlines()[-2:]
        pytest.skip(f"scripts/asterisk up failed: {' / '.join(last)}")
    env = _script("env")
    settings = dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line)
    try:
        yield RealAsterisk.from_env(settings)
    finally:
        _script("down")
