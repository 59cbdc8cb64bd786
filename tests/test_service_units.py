"""`ivr service-units`: the units systemd would run for a site, checked as systemd reads them
(`systemd-analyze verify`), and the nightly backup's command run as systemd would run it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.store.db import sqlite_url, upgrade

ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze (Debian: systemd) is not installed"
)


def _site(tmp_path: Path, database_url: str = "") -> Path:
    config = tmp_path / "etc" / "ivr.toml"
    config.parent.mkdir()
    line = f'database_url = "{database_url}"\n' if database_url else ""
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n{line}', encoding="utf-8")
    return config


def _generate(tmp_path: Path, config: Path, *more: str) -> tuple[int, Path]:
    out = tmp_path / "units"
    args = ["service-units", str(out), "--config", str(config), "--backup-dir"]
    return main([*args, str(tmp_path / "backups"), *more]), out


def _exec_start(unit: str) -> str:
    found = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert found is not None
    return found.group(1)


@needs_systemd
def test_the_units_are_what_systemd_accepts_and_run_this_installation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _site(tmp_path)
    code, out = _generate(tmp_path, config)
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "ivr-agi.service",
        "ivr-backup.service",
        "ivr-backup.timer",
        "ivr-web.service",
        "ivr.service",
    ]
    assert ANALYZE is not None
    checked = subprocess.run(
        [ANALYZE, "verify", *names], cwd=out, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0
    assert checked.stderr == ""  # no directive systemd would ignore or refuse
    ivr = Path(os.path.abspath(sys.executable)).parent / "ivr"
    run = (out / "ivr.service").read_text(encoding="utf-8")
    assert _exec_start(run) == f"{ivr} run"
    assert "Restart=on-failure" in run
    assert f"Environment=IVR_CONFIG={config}" in run
    assert "postgresql.service" not in run  # the store is SQLite
    assert "enable --now ivr.service ivr-web.service ivr-backup.timer" in capsys.readouterr().out


def test_the_nightly_backup_command_makes_a_copy(tmp_path: Path) -> None:
    config = _site(tmp_path)
    upgrade(sqlite_url(tmp_path / "data"))
    code, out = _generate(tmp_path, config)
    assert code == 0
    command = _exec_start((out / "ivr-backup.service").read_text(encoding="utf-8"))
    # what systemd hands the program: its specifiers and variables unescaped
    argv = command.replace("%%", "%").replace("$$", "$")
    (tmp_path / "backups").mkdir()  # ExecStartPre makes it, as root
    env = {**os.environ, "IVR_CONFIG": str(config)}
    done = subprocess.run(argv, shell=True, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    copies = list((tmp_path / "backups").glob("ivr-*.db"))
    assert len(copies) == 1
    assert re.fullmatch(r"ivr-\d{4}-\d{2}-\d{2}\.db", copies[0].name)
    assert "đã sao lưu vào" in done.stdout


def test_a_postgresql_site_waits_for_postgresql_and_has_no_file_backup(tmp_path: Path) -> None:
    config = _site(tmp_path, "postgresql+asyncpg://ivr:secret@127.0.0.1/hotline")
    code, out = _generate(tmp_path, config)
    assert code == 0
    assert not (out / "ivr-backup.service").exists()
    run = (out / "ivr.service").read_text(encoding="utf-8")
    assert "After=network-online.target asterisk.service postgresql.service" in run
    assert "secret" not in run  # secrets come from the environment file, never the unit


def test_existing_units_stay_unless_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _site(tmp_path)
    out = tmp_path / "units"
    out.mkdir()
    (out / "ivr.service").write_text("# the admin's own\n", encoding="utf-8")
    code, _ = _generate(tmp_path, config)
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "ivr.service").read_text(encoding="utf-8") == "# the admin's own\n"
    code, _ = _generate(tmp_path, config, "--overwrite")
    assert code == 0
    assert "ExecStart=" in (out / "ivr.service").read_text(encoding="utf-8")


def test_units_need_a_settings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    assert main(["service-units", str(tmp_path / "units")]) == 2
    assert "--config" in capsys.readouterr().err
    assert not (tmp_path / "units").exists()


@pytest.mark.parametrize(
    "more",
    [("--backup-dir", "/var/backups/ivr copies"), ("--user", "ivr\nExecStartPre=/bin/rm")],
)
def test_what_systemd_would_split_or_expand_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], more: tuple[str, str]
) -> None:
    config = _site(tmp_path)
    code = main(["service-units", str(tmp_path / "units"), "--config", str(config), *more])
    assert code == 2
    assert "không ghi được tệp dịch vụ" in capsys.readouterr().err
    assert not (tmp_path / "units").exists()
