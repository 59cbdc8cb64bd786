"""The one way every command finds its settings and its database.

Every command takes ``--config FILE`` (else ``IVR_CONFIG``), then the IVR_* variables win; see
ivr.config. A command that only reads the store never creates a database: a missing or empty
one is a configuration error (exit 2) naming the command that creates it.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from ivr.config import ConfigError, Settings, load_settings
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


def settings_of(args: argparse.Namespace, *, require_ari: bool = False) -> Settings:
    return load_settings(getattr(args, "config", None), require_ari=require_ari)


def database_url(settings: Settings, flag: str | None = None) -> str:
    """--db, else database_url (IVR_DATABASE_URL), else SQLite in the data folder."""
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
