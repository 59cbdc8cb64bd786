"""One configuration for every command: --config or IVR_CONFIG, then IVR_* variables; relative
paths resolve against the config file's folder; a reader never creates a database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_settings
from ivr.store.db import sqlite_url

from .conftest import ROOT, ROUTING_FILE

MANIFEST = ROOT / "prompts" / "manifest.yaml"


def ivr(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, **env},
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site folder whose ivr.toml names the project's files relative to itself."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "ivr.toml").write_text(
        f'routing = "{os.path.relpath(ROUTING_FILE, folder)}"\n'
        f'prompts = "{os.path.relpath(MANIFEST, folder)}"\n'
        'data_dir = "data"\n',
        encoding="utf-8",
    )
    (tmp_path / "elsewhere").mkdir()
    return folder


def test_relative_paths_follow_the_file_and_variables_follow_the_current_folder(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = site / "ivr.toml"
    s = load_settings(config, {}, require_ari=False)
    assert Path(s.routing) == site / os.path.relpath(ROUTING_FILE, site)
    assert Path(s.routing).resolve() == ROUTING_FILE.resolve()
    assert s.data_dir == str(site / "data")
    assert s.spool_path == site / "data" / "spool"
    env = {"IVR_DATA_DIR": "mine", "IVR_DATABASE_URL": "sqlite+aiosqlite:///x.db"}
    s = load_settings(config, env, require_ari=False)
    assert s.data_dir == str(tmp_path / "elsewhere" / "mine")
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'elsewhere' / 'x.db'}"
    s = load_settings(None, {}, require_ari=False)  # no file: the current folder, as before
    assert s.routing == str(tmp_path / "elsewhere" / "routing" / "hotline.yaml")
    s = load_settings(None, {"IVR_CONFIG": str(config)}, require_ari=False)
    assert s.data_dir == str(site / "data")


def test_a_relative_sqlite_url_in_the_file_is_beside_it(tmp_path: Path) -> None:
    config = tmp_path / "ivr.toml"
    config.write_text('database_url = "sqlite+aiosqlite:///db/ivr.db"\n')
    s = load_settings(config, {}, require_ari=False)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'db' / 'ivr.db'}"
    config.write_text('database_url = "postgresql+asyncpg://u:secret@127.0.0.1/ivr"\n')
    assert load_settings(config, {}, require_ari=False).database_url.endswith("@127.0.0.1/ivr")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'data_dir = "d\xe0"\n', "không phải UTF-8"),
        (b"data_dir = \n", "cấu hình TOML sai"),
        (b'metrics_address = "9108"\n', "cần dạng HOST:CỔNG"),
        (b"data_dir = 3\n", "'data_dir' phải là chuỗi"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(site: Path, content: bytes, message: str) -> None:
    config = site / "bad.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, {}, require_ari=False)
    proc = ivr(site.parent / "elsewhere", "calls", "--config", str(config))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_commands_give_the_same_answer_from_another_folder(site: Path) -> None:
    elsewhere = site.parent / "elsewhere"
    config = str(site / "ivr.toml")
    here = ivr(ROOT, "prompts", "check", "--config", config)
    there = ivr(elsewhere, "prompts", "check", IVR_CONFIG=config)
    assert here.returncode == there.returncode == 0, there.stderr
    assert here.stdout == there.stdout
    pjsip = ivr(elsewhere, "pjsip", "--config", config)
    assert pjsip.returncode == 0, pjsip.stderr
    assert "[cchc-4a](hotline-phone)" in pjsip.stdout


def test_the_store_is_where_the_config_says_from_any_folder(site: Path) -> None:
    elsewhere = site.parent / "elsewhere"
    up = ivr(elsewhere, "db", "upgrade", IVR_CONFIG=str(site / "ivr.toml"))
    assert up.returncode == 0, up.stderr
    assert (site / "data" / "ivr.db").is_file()
    assert not (elsewhere / "data").exists()
    listed = ivr(elsewhere, "calls", "--config", str(site / "ivr.toml"))
    assert listed.returncode == 0, listed.stderr
    assert "(0 cuộc gọi)" in listed.stdout
    by_variable = ivr(elsewhere, "voicemails", IVR_DATA_DIR=str(site / "data"))
    assert by_variable.returncode == 0, by_variable.stderr
    assert "(0 lời nhắn)" in by_variable.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["calls"],
        ["calls", "show", "x.1"],
        ["voicemails"],
        ["voicemails", "mark", "1", "heard"],
        ["db", "purge", "--older-than", "2y"],
    ],
)
def test_readers_on_a_missing_database_create_nothing(tmp_path: Path, args: list[str]) -> None:
    data = tmp_path / "data"
    proc = ivr(tmp_path, *args, IVR_DATA_DIR=str(data))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"chưa có cơ sở dữ liệu ở {data / 'ivr.db'}: "
        "tạo bằng `ivr db upgrade` (cùng --config/biến IVR_*)"
    )
    assert not data.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_database_file_is_named_not_used(tmp_path: Path) -> None:
    (tmp_path / "ivr.db").write_bytes(b"")
    proc = ivr(tmp_path, "calls", "--db", sqlite_url(tmp_path))
    assert proc.returncode == 2
    assert "chưa có cơ sở dữ liệu" in proc.stderr
    (tmp_path / "ivr.db").unlink()
    conn = sqlite3.connect(tmp_path / "ivr.db")  # a real SQLite file, without any table
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    proc = ivr(tmp_path, "voicemails", "--db", sqlite_url(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "còn trống: tạo bằng `ivr db upgrade` (cùng --config/biến IVR_*)"
    )
