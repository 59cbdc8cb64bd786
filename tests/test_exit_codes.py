"""One exit-code convention for every command: 0 done, 1 failed, 2 bad usage or configuration.

Each command is run in-process with a failure of each kind it can meet before doing any real
work; a command added without a row here fails `test_every_command_is_covered`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ivr.cli import _parser, main
from ivr.cli.codes import FAILED, USAGE
from ivr.store.db import sqlite_url

from .conftest import ROOT, ROUTING_FILE

MISSING = "{tmp}/missing.yaml"
MANIFEST = str(ROOT / "prompts" / "manifest.yaml")

# (command path, arguments after it, expected code, what stderr must say)
CASES: list[tuple[str, list[str], int, str]] = [
    ("run", ["--config", "{tmp}/ivr.toml"], USAGE, "không đọc được tệp"),
    ("agi", ["--config", "{tmp}/ivr.toml", "--port", "0"], USAGE, "không đọc được tệp"),
    ("demo", ["--speed", "0"], USAGE, "--speed"),
    ("demo", ["--root", "{tmp}"], USAGE, "không đọc được"),
    ("routing check", ["{tmp}/bad.yaml", "--prompts", MANIFEST], FAILED, "tệp không được dùng"),
    ("routing check", [str(ROUTING_FILE), "--prompts", MISSING], USAGE, "missing.yaml"),
    ("routing simulate", [str(ROUTING_FILE), "--at", "9h sáng"], USAGE, "--at"),
    (
        "routing simulate",
        [MISSING, "--at", "2026-02-17 09:00", "--prompts", MANIFEST],
        USAGE,
        "không đọc được tệp",
    ),
    ("asterisk-config", ["{tmp}/etc", "--static-contacts", "nowhere"], USAGE, "HOST:PORT"),
    ("asterisk-config", ["{tmp}/etc", "--routing", MISSING], USAGE, "không đọc được tệp"),
    ("asterisk-config", ["{tmp}/file", "--routing", str(ROUTING_FILE)], FAILED, "không ghi được"),
    ("pjsip", [MISSING], USAGE, "không đọc được tệp"),
    ("pjsip", ["--config", "{tmp}/latin1.toml"], USAGE, "không phải UTF-8"),
    ("endpoints", ["--config", "{tmp}/no-ami.toml"], USAGE, "chưa cấu hình AMI"),
    ("db upgrade", ["--db", "{file_db}"], FAILED, "không nâng cấp được"),
    ("db purge", ["--older-than", "soon", "--db", "{empty_db}"], USAGE, "soon"),
    ("calls", ["--from", "hôm qua", "--db", "{empty_db}"], USAGE, "--from"),
    ("calls", ["--db", "{empty_db}"], USAGE, "ivr db upgrade"),  # a missing database: config
    ("voicemails", ["mark", "--db", "{empty_db}"], USAGE, "cách dùng"),
    ("prompts build", ["--manifest", MISSING, "--out", "{tmp}/out"], USAGE, "missing.yaml"),
    ("prompts check", ["--manifest", MISSING], USAGE, "missing.yaml"),
    ("prompts check", ["--out", "{tmp}/out"], FAILED, "lời nhắc còn thiếu"),
    (
        "cases open",
        ["--subject", "x", "--category", "khác", "--by", "an", "--db", "{empty_db}"],
        USAGE,
        "ivr db upgrade",
    ),
    ("cases list", ["--rules", "{tmp}/missing.toml"], USAGE, "không đọc được tệp quy định"),
    ("cases list", ["--today", "mai", "--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("cases show", ["PAKN-2026-0001", "--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    (
        "cases assign",
        ["PAKN-2026-0001", "lan", "--by", "an", "--db", "{empty_db}"],
        USAGE,
        "ivr db upgrade",
    ),
    (
        "cases forward",
        ["PAKN-2026-0001", "--by", "an", "--rules", "{tmp}/missing.toml"],
        USAGE,
        "không đọc được tệp quy định",
    ),
    (
        "cases verify",
        ["PAKN-2026-0001", "--by", "an", "--db", "{empty_db}"],
        USAGE,
        "ivr db upgrade",
    ),
    (
        "cases reply",
        ["PAKN-2026-0001", "--answer", "x", "--by", "an", "--db", "{empty_db}"],
        USAGE,
        "ivr db upgrade",
    ),
    (
        "cases close",
        ["PAKN-2026-0001", "--by", "an", "--db", "{empty_db}"],
        USAGE,
        "ivr db upgrade",
    ),
    (
        "cases reject",
        ["PAKN-2026-0001", "--reason", "x", "--by", "an", "--db", "{empty_db}"],
        USAGE,
        "ivr db upgrade",
    ),
    ("cases digest", ["--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("survey import", ["{tmp}/zalo.csv", "--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("report", ["--period", "soon", "--db", "{empty_db}"], USAGE, "soon"),
    ("report", ["--period", "2026-10", "--format", "xlsx"], USAGE, "--out"),
    ("report", ["--period", "2026-10", "--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("web", ["--address", "nowhere"], USAGE, "HOST:CỔNG"),
    ("web", ["--config", "{tmp}/empty.toml"], USAGE, "ivr db upgrade"),
    ("users list", ["--config", "{tmp}/empty.toml"], USAGE, "ivr db upgrade"),
    ("users disable", ["an", "--config", "{tmp}/empty.toml"], USAGE, "ivr db upgrade"),
    ("users enable", ["an", "--config", "{tmp}/empty.toml"], USAGE, "ivr db upgrade"),
    ("users add", ["an", "--role", "admin", "--password-file", MISSING], USAGE, "missing"),
    ("users password", ["an", "--password-file", MISSING], USAGE, "missing"),
    ("db reconcile", ["--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("db rollups rebuild", ["--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("db backup", ["{tmp}/copy.db", "--db", "{empty_db}"], USAGE, "ivr db upgrade"),
    ("db backup", ["{tmp}/file", "--db", "sqlite+aiosqlite:///{tmp}/file"], USAGE, "đã có tệp"),
    (  # not a database: the copy fails, nothing is left
        "db backup",
        ["{tmp}/copy.db", "--db", "sqlite+aiosqlite:///{tmp}/file"],
        FAILED,
        "không sao lưu được",
    ),
    ("service-units", ["{tmp}/units"], USAGE, "--config"),
    ("service-units", ["{tmp}/units", "--config", "{tmp}/latin1.toml"], USAGE, "UTF-8"),
    ("service-units", ["{tmp}/file", "--config", "{tmp}/empty.toml"], FAILED, "không ghi được"),
    # issue 14 row 18: bad flags are one line from argparse, exit 2
    ("demo", ["--speed", "nan"], USAGE, "--speed"),
    ("agi", ["--port", "99999"], USAGE, "--port"),
    ("calls", ["--db", "mysql://ivr:pw@127.0.0.1/ivr"], USAGE, "không hỗ trợ"),
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ivr.toml").write_text(
        'ari_url = "http://127.0.0.1:8088/ari"\nari_password = "x"\n'
        f'routing = "{tmp_path}/missing.yaml"\ndata_dir = "{tmp_path}/data"\n'
        f'prompts = "{MANIFEST}"\n'
    )
    (tmp_path / "no-ami.toml").write_text(f'routing = "{ROUTING_FILE}"\n')
    (tmp_path / "empty.toml").write_text(f'data_dir = "{tmp_path}/empty"\n')
    (tmp_path / "latin1.toml").write_bytes(b'data_dir = "caf\xe9"\n')
    bad = ROUTING_FILE.read_text().replace("next: main-menu", "next: main-menuu")
    (tmp_path / "bad.yaml").write_text(bad)
    (tmp_path / "file").write_text("a file where a directory should be\n")
    (tmp_path / "empty").mkdir()
    return {
        "tmp": str(tmp_path),
        "file_db": sqlite_url(tmp_path / "file"),
        "empty_db": sqlite_url(tmp_path / "empty"),
    }


@pytest.mark.parametrize(
    ("command", "args", "expected", "message"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_exit_code(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    command: str,
    args: list[str],
    expected: int,
    message: str,
) -> None:
    monkeypatch.chdir(ROOT)
    for var in ("IVR_DATABASE_URL", "IVR_CONFIG", "IVR_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    try:
        code = main([*command.split(), *(a.format(**files) for a in args)])
    except SystemExit as e:  # argparse's own refusal of a flag
        code = int(e.code or 0)
    _, err = capsys.readouterr()
    assert code == expected, err
    assert message in err


def test_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["routing", "simulate", str(ROUTING_FILE)])  # --at is required
    assert exited.value.code == USAGE
    assert main([]) == USAGE
    out, _ = capsys.readouterr()
    assert "mã thoát" in out


def test_help_explains_the_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out, _ = capsys.readouterr()
    for line in ("0    xong", "1    thất bại", "2    sai cách dùng hoặc cấu hình"):
        assert line in out


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                found |= _commands(sub, path) or {path}
    return found


def test_every_command_is_covered() -> None:
    assert _commands(_parser()) == {c[0] for c in CASES}
