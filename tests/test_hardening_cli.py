"""Issue 14, rows 4, 18 and 19: every command that meets a bad flag, a bad database or a wrong
AMI secret says so in one Vietnamese line with the documented exit code, never a traceback."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from structlog.testing import capture_logs

from ivr.cli import _parser, main
from ivr.cli.codes import FAILED, USAGE
from ivr.cli.serve import _watch_phones
from ivr.cli.settings import database_problem
from ivr.config import ConfigError, Settings, load_settings
from ivr.sim.ami import AmiSim
from ivr.store.db import sqlite_url, upgrade

from .conftest import MANIFEST_FILE, ROUTING_FILE

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT")  # the controller's own log lines on stderr
DOWN_PG = "postgresql+asyncpg://ivr:topsecret@127.0.0.1:1/ivr"  # port 1: refused on loopback


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `ivr` in-process; argparse's own exits count as exit codes."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]
    if err.startswith("usage:"):  # argparse: the usage, then one "ivr …: error: …" line
        lines = [line for line in lines if ": error: " in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def config(tmp_path: Path, database_url: str, **extra: str) -> Path:
    values = {
        "ari_password": "x",
        "routing": str(ROUTING_FILE),
        "prompts": str(MANIFEST_FILE),
        "data_dir": str(tmp_path / "data"),
        "metrics_address": "",
        "database_url": database_url,
        **extra,
    }
    path = tmp_path / "ivr.toml"
    path.write_text("".join(f'{k} = "{v}"\n' for k, v in values.items()))
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("IVR_DATABASE_URL", "IVR_CONFIG", "IVR_DATA_DIR", "IVR_AMI_ADDRESS"):
        monkeypatch.delenv(var, raising=False)


# row 18: bad flags


@pytest.mark.parametrize("level", ["garbage", "", "10"])
def test_a_bad_log_level_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, level: str
) -> None:
    code, err = cli(capsys, "--log-level", level, "calls", "--db", sqlite_url(tmp_path))
    assert code == USAGE
    assert "--log-level" in one_line(err)


def test_log_level_is_case_insensitive() -> None:
    assert _parser().parse_args(["--log-level", "debug", "calls"]).log_level == "DEBUG"


@pytest.mark.parametrize("speed", ["nan", "inf", "-inf", "0", "-1", "101", "fast"])
def test_demo_speed_must_be_a_finite_positive_number(
    capsys: pytest.CaptureFixture[str], speed: str
) -> None:
    with pytest.raises(SystemExit) as exited:  # parsing only: the old code hung on nan
        _parser().parse_args(["demo", "--speed", speed])
    assert exited.value.code == USAGE
    assert "--speed" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http"])
def test_agi_port_must_be_a_port(capsys: pytest.CaptureFixture[str], port: str) -> None:
    code, err = cli(capsys, "agi", "--port", port)
    assert code == USAGE
    assert "--port" in one_line(err)


@pytest.mark.parametrize(
    "url", ["mysql://ivr:topsecret@127.0.0.1/ivr", "postgresql://ivr:topsecret@db/ivr", "oracle"]
)
def test_an_unsupported_database_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    code, err = cli(capsys, "calls", "--db", url)
    assert code == USAGE
    line = one_line(err)
    assert "topsecret" not in line
    assert "postgresql+asyncpg" in line  # says what is supported
    with pytest.raises(ConfigError, match="database_url"):
        load_settings(config(tmp_path, url))


def test_an_unreachable_database_for_a_reader_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = cli(capsys, "calls", "--db", DOWN_PG)
    assert code == FAILED
    line = one_line(err)
    assert "không kết nối được cơ sở dữ liệu" in line
    assert "ivr:***@127.0.0.1:1" in line
    assert "topsecret" not in line


# row 4: the database at start-up of `ivr run` / `ivr agi`


@pytest.mark.parametrize("command", [["run"], ["agi", "--port", "0"]])
def test_a_database_that_is_down_at_start_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    code, err = cli(capsys, *command, "--config", str(config(tmp_path, DOWN_PG)))
    assert code == FAILED
    line = one_line(err)
    assert "không kết nối được cơ sở dữ liệu" in line
    assert "cổng" not in line.split(":")[0]  # row 19: not "cannot open port"
    assert "ivr:***@" in line
    assert "topsecret" not in line


@pytest.mark.parametrize("command", [["run"], ["agi", "--port", "0"]])
@pytest.mark.parametrize("content", [b"garbage " * 20, bytes(range(256)) * 32])
def test_a_corrupt_database_at_start_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], content: bytes
) -> None:
    bad = tmp_path / "data" / "ivr.db"
    bad.parent.mkdir()
    bad.write_bytes(content)
    code, err = cli(capsys, *command, "--config", str(config(tmp_path, sqlite_url(bad.parent))))
    assert code == USAGE
    line = one_line(err)
    assert str(bad) in line
    assert "hỏng" in line
    assert bad.read_bytes() == content  # nothing written over it


def test_a_read_only_database_is_a_configuration_error(tmp_path: Path) -> None:
    # root ignores file modes, so the read-only refusal comes from SQLite's own read-only mode
    path = tmp_path / "ivr.db"
    upgrade(sqlite_url(tmp_path))
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(SQLAlchemyError) as refused, engine.begin() as conn:
        conn.execute(text("DELETE FROM calls"))
    engine.dispose()
    code, line = database_problem(refused.value, sqlite_url(tmp_path))
    assert code == USAGE
    assert "chỉ đọc" in line
    assert str(path) in line


def test_the_wrong_schema_stays_a_configuration_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "data" / "ivr.db"
    path.parent.mkdir()
    sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.commit()
    code, err = cli(capsys, "run", "--config", str(config(tmp_path, sqlite_url(path.parent))))
    assert code == USAGE
    assert "ivr db upgrade" in one_line(err)


def test_run_help_says_what_happens_when_the_database_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    # argparse rewraps the text: compare without line breaks
    assert "mã 1" in " ".join(out.split())
    assert "dialplan" in out


# row 19: AMI


async def test_a_wrong_ami_secret_says_so_and_does_not_hold_up_ari() -> None:
    sim = AmiSim(phones={})
    port = await sim.start()
    settings = Settings(ami_address=f"127.0.0.1:{port}", ami_secret="wrong")
    with capture_logs() as logs:
        watch = await _watch_phones(settings)  # returns at once: ARI starts without waiting
        try:
            assert watch is not None
            assert not watch.ready.is_set()
            assert await asyncio.wait_for(watch.refused.wait(), 10)
            await asyncio.wait_for(watch.starting, 10)
        finally:
            watch.close()
            await sim.stop()
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors
    assert "sai mật khẩu AMI" in errors[0]["event"]
    assert "wrong" not in str(logs)
    assert not any("TimeoutError" in str(e) for e in logs)


def test_a_reader_never_creates_a_new_sqlite_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = tmp_path / "not" / "yet"
    code, err = cli(capsys, "calls", "--db", sqlite_url(where))
    assert code == USAGE
    assert "ivr db upgrade" in one_line(err)
    assert not (tmp_path / "not").exists()


def test_a_report_against_a_database_that_is_down_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = cli(
        capsys, "report", "--period", "2026-10", "--db", DOWN_PG, "--routing", str(ROUTING_FILE)
    )
    assert code == database_problem(ConnectionRefusedError(111, "refused"), DOWN_PG)[0] == FAILED
    line = one_line(err)
    assert "không kết nối được cơ sở dữ liệu" in line
    assert "ivr:***@127.0.0.1:1" in line
    assert "topsecret" not in line


@pytest.mark.parametrize(
    "command", [["users", "add", "an", "--role", "admin"], ["users", "password", "an"]]
)
def test_a_password_prompt_without_a_terminal_is_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    """A script or a service (stdin not a terminal, no controlling terminal) asks for a
    password: no EOFError traceback, one line pointing to --password-file, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATA_DIR"] = str(tmp_path)
    for typed in ("", "một-mật-khẩu-dài\nmột-mật-khẩu-dài\n"):  # nothing, or a pipe
        done = subprocess.run(
            [sys.executable, "-m", "ivr.cli", *command],
            input=typed,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            start_new_session=True,  # no controlling terminal, as under systemd or cron
            timeout=120,
        )
        assert done.returncode == USAGE, done.stderr
        assert "--password-file" in one_line(done.stderr)
        assert "Warning" not in done.stderr


SIMULATE = [sys.executable, "-m", "ivr.cli", "routing", "simulate"]


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path: Path) -> None:
    """`ivr routing simulate … | head -1`: the pipe closes under the command; one exit code,
    no traceback (the read end is closed before the command starts, so its first write fails)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*SIMULATE, str(ROUTING_FILE), "--at", "2026-10-05 09:00", "--digits", "4"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == FAILED, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "BrokenPipe" not in done.stderr, done.stderr
