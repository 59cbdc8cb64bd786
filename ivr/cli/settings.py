"""The one way every command finds its settings and its database.

Every command takes ``--config FILE`` (else ``IVR_CONFIG``), then the IVR_* variables win; see
ivr.config. A command that only reads the store never creates a database: a missing or empty
one is a configuration error (exit 2) naming the command that creates it.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from ivr.cli.codes import FAILED, USAGE
from ivr.cli.terminal import escape
from ivr.config import ConfigError, Settings, check_database_url, load_settings
from ivr.redact import redact
from ivr.store.db import sqlite_url

CONFIG_HELP = "tệp cấu hình TOML (mặc định biến IVR_CONFIG; xem ivr.toml.example)"


class MissingDatabase(ConfigError):
    """The store to read does not exist yet (or holds nothing)."""


def add_config_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every command (each leaf of the parser tree) the same --config flag."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        if not any("--config" in a.option_strings for a in parser._actions):
            parser.add_argument("--config", type=Path, help=CONFIG_HELP)
        return
    for action in subs:
        for child in action.choices.values():
            add_config_everywhere(child)


def log_level(text: str) -> str:
    """--log-level: DEBUG, INFO, WARNING, ERROR or CRITICAL, in any case."""
    from ivr.logs import level_name

    try:
        return level_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def port(text: str) -> int:
    """--port: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"'{escape(text)}' không phải cổng (0–65535)")
    return value


def speed(text: str) -> float:
    """--speed: a finite number above 0, at most 100."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 100):
        raise argparse.ArgumentTypeError(f"'{escape(text)}': cần một số trong khoảng (0, 100]")
    return value


def settings_of(args: argparse.Namespace, *, require_ari: bool = False) -> Settings:
    return load_settings(getattr(args, "config", None), require_ari=require_ari)


def database_url(settings: Settings, flag: str | None = None) -> str:
    """--db, else database_url (IVR_DATABASE_URL), else SQLite in the data folder."""
    if flag:
        check_database_url(flag, "--db")  # an unsupported backend: ConfigError, exit 2
    return flag or settings.database_url or sqlite_url(Path(settings.data_dir))


def require_database(url: str) -> None:
    """Raise MissingDatabase when a SQLite store is absent or empty; never creates it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    hint = "tạo bằng `ivr db upgrade` (cùng --config/biến IVR_*)"
    if not path.is_file() or path.stat().st_size == 0:
        raise MissingDatabase(f"chưa có cơ sở dữ liệu ở {path}: {hint}")
    if not _has_tables(path):
        raise MissingDatabase(f"cơ sở dữ liệu {path} còn trống: {hint}")


def _has_tables(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return True  # let the real connection report what is wrong
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        return bool(row and row[0])
    except sqlite3.Error:
        return True
    finally:
        conn.close()


def database_problem(e: BaseException, url: str) -> tuple[int, str]:
    """The exit code and the one line to print for a database that failed to open or answer.

    Down (refused, unknown host, timeout): exit 1, it may come back. Corrupt, read-only, a
    refused login or a missing database: exit 2, the settings or the file must be fixed.
    The URL's password never appears."""
    where = escape(redact(url))
    messages = [escape(redact(" ".join(str(link).split())))[:200] for link in _chain(e)]
    lowered = " ".join(messages).lower()
    down = [link for link in _chain(e) if isinstance(link, OSError)]
    if down:
        reason = escape(redact(str(down[0].strerror or down[0]) or type(down[0]).__name__))
        return FAILED, (
            f"không kết nối được cơ sở dữ liệu {where}: {reason}; kiểm tra máy chủ cơ sở dữ "
            "liệu đang chạy và database_url (IVR_DATABASE_URL)"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return USAGE, (
            f"cơ sở dữ liệu {where} bị hỏng hoặc không phải SQLite ({messages[-1]}): khôi phục "
            "từ bản sao lưu, hoặc đặt database_url tới đúng tệp"
        )
    if "readonly" in lowered or "read-only" in lowered or _sqlstate(e) == "25006":
        return USAGE, (
            f"cơ sở dữ liệu {where} chỉ đọc, không ghi được: cấp quyền ghi cho tệp và thư mục "
            "của nó (hoặc dùng máy chủ chính, không phải bản sao chỉ đọc)"
        )
    if (_sqlstate(e) or "").startswith(("28", "3D")):  # login refused, no such database
        return USAGE, f"cơ sở dữ liệu {where} từ chối: {messages[-1]}; kiểm tra database_url"
    return FAILED, f"lỗi cơ sở dữ liệu {where}: {messages[0] if messages else type(e).__name__}"


def _sqlstate(e: BaseException) -> str | None:
    for link in _chain(e):
        code = getattr(link, "sqlstate", None) or getattr(link, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _chain(e: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped and their causes, each once."""
    seen: set[int] = set()
    todo: list[object] = [e]
    while todo and len(seen) < 16:
        link = todo.pop(0)
        if not isinstance(link, BaseException) or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo += [getattr(link, "orig", None), link.__cause__]
