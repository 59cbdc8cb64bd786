"""`ivr run` in cluster mode, as an admin starts it: the settings it needs (one line, exit 2,
otherwise), the real command against the simulator as ARI app ``hotline-<controller_id>`` holding
its presence in PostgreSQL, and `ivr asterisk-config --cluster` pointing the trunk at
[hotline-cluster]."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ivr.asterisk.config import split_example
from ivr.cli import main
from ivr.cluster.presence import session_name
from ivr.sim.http import AsteriskSim
from ivr.sim.scripts import CallerScript, Hangup
from ivr.store.db import make_engine, upgrade
from ivr.testing.pg import PgServer
from models import Call, Controller

from .conftest import ROOT

PG = "postgresql+asyncpg://ivr:pw@127.0.0.1:5432/ivr"


def _cfg(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('ari_password = "x"\n' + body, encoding="utf-8")
    return cfg


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (f'cluster = true\ndatabase_url = "{PG}"\n', "cần controller_id"),
        (f'cluster = true\ncontroller_id = "a b"\ndatabase_url = "{PG}"\n', "'a b'"),
        ('cluster = true\ncontroller_id = "ctl-a"\n', "cần database_url PostgreSQL"),
        (
            'cluster = true\ncontroller_id = "ctl-a"\ndatabase_url = "sqlite+aiosqlite:///x.db"\n',
            "cần database_url PostgreSQL",
        ),
        ("cluster = 1\n", "true/false"),
    ],
)
def test_cluster_settings_missing_or_wrong_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    says: str,
) -> None:
    for var in ("IVR_CLUSTER", "IVR_CONTROLLER_ID", "IVR_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    code = main(["run", "--config", str(_cfg(tmp_path, body))])
    err = capsys.readouterr().err
    assert code == 2
    assert says in err
    assert len(err.strip().splitlines()) == 1


def test_cluster_from_the_environment_is_checked_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_CLUSTER", "true")
    monkeypatch.delenv("IVR_CONTROLLER_ID", raising=False)
    monkeypatch.delenv("IVR_DATABASE_URL", raising=False)
    assert main(["run", "--config", str(_cfg(tmp_path, ""))]) == 2
    assert "IVR_CONTROLLER_ID" in capsys.readouterr().err


def test_asterisk_config_cluster_points_the_trunk_at_hotline_cluster(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    routing = str(ROOT / "routing" / "hotline.yaml")
    single, cluster = tmp_path / "one", tmp_path / "many"
    assert main(["asterisk-config", str(single), "--routing", routing]) == 0
    assert main(["asterisk-config", str(cluster), "--routing", routing, "--cluster"]) == 0
    capsys.readouterr()
    example = split_example((ROOT / "asterisk.conf.example").read_text(encoding="utf-8"))
    (trunk_file,) = [n for n, body in example.items() if "context=hotline-inbound" in body]
    one = (single / trunk_file).read_text(encoding="utf-8")
    many = (cluster / trunk_file).read_text(encoding="utf-8")
    assert "context=hotline-inbound" in one  # the single controller's default is unchanged
    assert "context=hotline-cluster" not in one
    assert "context=hotline-cluster" in many
    assert "context=hotline-inbound" not in many
    assert "[hotline-cluster]" in (cluster / "hotline.conf").read_text(encoding="utf-8")


@pytest.fixture
async def pg_url(pg_server: PgServer | None) -> str:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed (cluster mode needs it)")
    url = await pg_server.create_database(f"ivr_cli_cluster_{os.getpid()}_{time.monotonic_ns()}")
    await asyncio.to_thread(upgrade, url)
    return url


async def _final_row(url: str, number: str) -> Call:
    engine = make_engine(url)
    try:
        async with asyncio.timeout(60):
            while True:
                async with engine.connect() as conn:
                    rows = (
                        await conn.execute(select(Call).where(Call.caller_number == number))
                    ).all()
                assert len(rows) <= 1
                if rows and rows[0].disposition != "in_progress":
                    return rows[0]  # type: ignore[return-value]
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def _presence_and_lease(url: str, me: str) -> tuple[set[str], list[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.scalars(text("SELECT application_name FROM pg_stat_activity"))
            leases = await conn.scalars(select(Controller.id))
            return set(names), list(leases)
    finally:
        await engine.dispose()


async def test_ivr_run_in_cluster_mode_serves_as_its_own_app(pg_url: str, tmp_path: Path) -> None:
    me = "t1"
    sim = AsteriskSim(app=f"hotline-{me}", speed=1.0)  # refuses any other app's websocket
    url = await sim.start()
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(
        f'ari_url = "{url}"\nari_user = "{sim.user}"\nari_password = "{sim.password}"\n'
        f'routing = "{ROOT / "routing" / "hotline.yaml"}"\n'
        f'prompts = "{ROOT / "prompts" / "manifest.yaml"}"\n'
        f'database_url = "{pg_url}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'metrics_address = ""\ncel_file = "none"\n'
        f'cluster = true\ncontroller_id = "{me}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    log = (tmp_path / "run.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from ivr.cli import main; sys.exit(main())",
        "run",
        "--config",
        str(cfg),
        "--log-json",
        cwd=tmp_path,
        env=env,
        stderr=log,
        stdout=log,
    )
    try:
        async with asyncio.timeout(60):
            await sim.wait_connected()
        names, leases = await _presence_and_lease(pg_url, me)
        assert session_name(me) in names  # its presence lock, for the others to watch
        assert leases == [me]  # the lease is the controller id: the survivors' key to its calls
        number = "0912000016"
        call = sim.call(CallerScript((Hangup(after=3.0),), number=number))
        await asyncio.wait_for(call.done, 60)
        row = await _final_row(pg_url, number)
        assert row.controller == me
        assert any(r.path.startswith("/ari/channels/") for r in sim.requests)  # it drove the call
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        names, _ = await _presence_and_lease(pg_url, me)
        assert session_name(me) not in names  # let go on the way out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        await sim.stop()
        print((tmp_path / "run.log").read_text(errors="replace")[-3000:])
