"""Issue 14 row 13: text from callers reaches a terminal only with its control characters made
visible; and the FastAGI limits as settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from pathlib import Path

import pytest
import structlog

from ivr import logs
from ivr.cli import main
from ivr.cli.terminal import escape, json_text
from ivr.config import ConfigError, load_settings
from ivr.flow.engine import run_call
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import FakeSession
from ivr.sim.scripts import ClerkKind
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter

from .conftest import ROUTING_FILE, vn_time

HOSTILE = "0912\n2026-01-01 00:00:00  0999999999    answered\x1b[2J\x07\x00\x9b31m\u202e"
RAW = ("\x1b", "\x07", "\x00", "\x9b", "\u202e")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("0912345678", "0912345678"),
        ("Nguyễn Văn Á", "Nguyễn Văn Á"),
        ("a\nb", "a\\nb"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\x00\x07\x7f\x9b", "\\x00\\x07\\x7f\\x9b"),
        ("\r\t", "\\r\\t"),
        ("\u202e\u2028", "\\u202e\\u2028"),
        ("a\\x1b", "a\\\\x1b"),  # a typed backslash cannot pass for an escape
    ],
)
def test_escape(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_json_text_is_the_same_data_with_nothing_raw() -> None:
    data = [{"caller_number": HOSTILE, "n": 1}]
    out = json_text(data)
    assert json.loads(out) == data
    assert not any(c in out for c in RAW)
    assert "Nguyễn" in json_text("Nguyễn")  # Vietnamese stays readable


async def _hostile_store(
    tmp_path: Path, routing: Routing, capsys: pytest.CaptureFixture[str]
) -> str:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, tmp_path / "spool")
    await writer.start()
    session = FakeSession(
        CallInfo("evil.1", HOSTILE), inputs=["6"], default_clerk=ClerkKind.BUSY, voicemail_seconds=5
    )
    when = vn_time("2025-11-25 09:00")
    await run_call(session, routing, writer, clock=lambda: when)
    assert await writer.sync()
    await writer.stop()
    await engine.dispose()
    capsys.readouterr()
    return url


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [["calls"], ["calls", "show", "evil.1"], ["voicemails"], ["calls", "--json"],
     ["calls", "show", "evil.1", "--json"], ["voicemails", "--json"]],
)  # fmt: skip
async def test_listings_show_a_hostile_caller_number_escaped(
    tmp_path: Path, routing: Routing, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    url = await _hostile_store(tmp_path, routing, capsys)
    code, out = await asyncio.to_thread(_run, capsys, *command, "--db", url)
    assert code == 0
    assert not any(c in out for c in RAW), repr(out)
    if "--json" in command:
        data = json.loads(out)
        first = data[0] if isinstance(data, list) else data
        # the data as stored (the store turns NUL, which no backend keeps, into U+FFFD)
        assert first["caller_number"] == HOSTILE.replace("\x00", "\ufffd")
    else:
        assert "0912\\n2026-01-01" in out
        if command == ["calls"]:  # a header, one row, the count: no forged row
            assert len(out.splitlines()) == 3


def test_console_log_lines_escape_caller_text(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    logs.configure(json=False, level="INFO")
    structlog.get_logger("t").info("call \x1b[2J started", caller=HOSTILE, n=3)
    line = err.getvalue()
    assert not any(c in line for c in RAW), repr(line)
    assert line.count("\n") == 1
    assert "0912\\n2026" in line
    assert "\\x1b[2J" in line


def test_console_log_line_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    logs.configure(json=False, level="INFO")
    structlog.get_logger("t").warning("desk busy", node="branch-4", n=3, desk="a b", gone=None)
    line = err.getvalue()
    stamp, rest = line.split(" ", 1)
    assert dt.datetime.fromisoformat(stamp).utcoffset() == dt.timedelta(0)
    # the level as wide as "exception", the event as wide as 30, then the keys sorted; a string
    # with a space quoted, other values by repr()
    assert rest == "[warning  ] desk busy" + " " * 21 + " desk='a b' gone=None n=3 node=branch-4\n"


def test_console_log_keeps_a_traceback_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    logs.configure(json=False, level="INFO")
    try:
        raise ValueError("bad \x1b value")
    except ValueError:
        structlog.get_logger("t").exception("failed")
    out = err.getvalue()
    assert "Traceback (most recent call last):\n" in out
    assert "\x1b" not in out
    assert "bad \\x1b value" in out


# FastAGI limits as settings


def test_agi_limits_from_file_and_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("agi_max_connections = 50\nagi_reply_timeout = 12.5\n")
    s = load_settings(cfg, {}, require_ari=False)
    assert (s.agi_max_connections, s.agi_reply_timeout) == (50, 12.5)
    s = load_settings(
        cfg, {"IVR_AGI_MAX_CONNECTIONS": "7", "IVR_AGI_REPLY_TIMEOUT": "3"}, require_ari=False
    )
    assert (s.agi_max_connections, s.agi_reply_timeout) == (7, 3.0)
    d = load_settings(None, {}, require_ari=False)
    assert (d.agi_max_connections, d.agi_reply_timeout) == (200, 30.0)


@pytest.mark.parametrize(
    ("file_text", "env", "message"),
    [
        ('agi_max_connections = "many"\n', {}, "agi_max_connections"),
        ("agi_max_connections = 0\n", {}, "agi_max_connections"),
        ("agi_max_connections = 2.5\n", {}, "agi_max_connections"),
        ("agi_reply_timeout = true\n", {}, "agi_reply_timeout"),
        ("agi_reply_timeout = nan\n", {}, "agi_reply_timeout"),
        ("", {"IVR_AGI_MAX_CONNECTIONS": "lots"}, "IVR_AGI_MAX_CONNECTIONS"),
        ("", {"IVR_AGI_REPLY_TIMEOUT": "-1"}, "IVR_AGI_REPLY_TIMEOUT"),
        ("", {"IVR_AGI_REPLY_TIMEOUT": "inf"}, "IVR_AGI_REPLY_TIMEOUT"),
        ("log_json = 1\n", {}, "log_json"),
        ("ari_user = 5\n", {}, "ari_user"),
    ],
)
def test_bad_agi_limits_are_one_clear_error(
    tmp_path: Path, file_text: str, env: dict[str, str], message: str
) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(file_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, env, require_ari=False)


async def test_agi_passes_the_limits_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.agi.server import AgiServer
    from ivr.cli import serve

    seen: dict[str, object] = {}

    class Recording(AgiServer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            seen.update(kwargs)
            raise RuntimeError("stop here")

    monkeypatch.setattr("ivr.agi.server.AgiServer", Recording)
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    settings = load_settings(
        None,
        {
            "IVR_DATABASE_URL": url,
            "IVR_METRICS_ADDRESS": "",
            "IVR_AGI_MAX_CONNECTIONS": "9",
            "IVR_AGI_REPLY_TIMEOUT": "4.5",
            "IVR_ROUTING": str(Path(__file__).parent.parent / "routing" / "hotline.yaml"),
            "IVR_PROMPTS": str(Path(__file__).parent.parent / "prompts" / "manifest.yaml"),
            "IVR_SPOOL_DIR": str(tmp_path / "spool"),
        },
        require_ari=False,
    )
    with pytest.raises(RuntimeError, match="stop here"):
        await serve._agi(settings, "127.0.0.1", 0)
    assert seen["max_connections"] == 9
    assert seen["reply_timeout"] == 4.5


async def test_the_report_table_shows_a_hostile_phone_name_escaped(
    tmp_path: Path, routing: Routing, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    url = await _hostile_store(tmp_path, routing, capsys)
    db = sqlite3.connect(tmp_path / "ivr.db")  # a reconciled row names the phone Asterisk saw
    with db:
        assert db.execute("UPDATE calls SET endpoint = ?", ("PJSIP/x\x1b[2J\n\u202e",)).rowcount
    db.close()
    args = ["report", "--from", "2025-11-25", "--to", "2025-11-25", "--by", "phone"]
    code, out = await asyncio.to_thread(
        _run, capsys, *args, "--db", url, "--routing", str(ROUTING_FILE)
    )
    assert code == 0
    assert not any(c in out for c in RAW), repr(out)
    assert "PJSIP/x\\x1b[2J\\n\\u202e" in out
