"""Engines and migrations. SQLite runs in WAL mode with foreign keys on.

Migrations run only through `ivr db upgrade`; every other command opens the database as it is
and refuses a missing or out-of-date schema (:func:`require_current`), and never creates a
database file (``make_engine(url, create=False)``).

Migrations take turns: two controllers starting together on a fresh database must not both
create its tables. PostgreSQL serialises them with an advisory lock (migrations/env.py); a SQLite
file with an exclusive lock on ``<database>.migrate.lock`` beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ivr.store.errors import NotReady

ROOT = Path(__file__).resolve().parent.parent.parent
MIGRATIONS = ROOT / "migrations"
MIGRATION_LOCK_KEY = 0x1F7A_0014  # pg_advisory_xact_lock key: "ivr migrations"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'ivr.db').resolve()}"


UPGRADE_HINT = "chạy `ivr db upgrade`"


class SchemaNotCurrent(NotReady):
    """The database is missing, empty, older or newer than this program."""


def make_engine(url: str, *, create: bool = True, **kwargs: Any) -> AsyncEngine:
    """An engine; ``create=False`` (every command but `ivr db upgrade`): a SQLite file that does
    not exist is SchemaNotCurrent, never an empty new file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = not parsed.database or parsed.database == ":memory:"
        if not create and not memory and not Path(parsed.database or "").is_file():
            raise SchemaNotCurrent(
                f"không có cơ sở dữ liệu {parsed.database}: {UPGRADE_HINT} để tạo"
            )
        if create and not memory:
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or upgrade the database (blocking: run it in a thread from async code). Safe to
    run at the same time from several processes: they take turns, the later ones find it done."""
    with _sqlite_migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    with _sqlite_migration_lock(url):
        command.downgrade(alembic_config(url), revision)


@contextlib.contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """An exclusive lock on a file beside a SQLite database (nothing for other backends)."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        yield
        return
    lock = Path(parsed.database).with_name(Path(parsed.database).name + ".migrate.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def require_current(engine: AsyncEngine) -> None:
    """SchemaNotCurrent (one line naming `ivr db upgrade`) unless the schema is the latest."""
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).has_table("alembic_version"))
        version = (
            await conn.scalar(text("SELECT version_num FROM alembic_version")) if found else None
        )
    head = head_revision()
    if version == head:
        return
    if version is None:
        raise SchemaNotCurrent(f"cơ sở dữ liệu chưa có bảng nào: {UPGRADE_HINT}")
    try:
        known = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(version)
    except Exception:
        known = None
    if known is None:
        raise SchemaNotCurrent(
            f"cơ sở dữ liệu ở phiên bản {version}, mới hơn chương trình này ({head}): "
            "cập nhật chương trình"
        )
    raise SchemaNotCurrent(f"cơ sở dữ liệu ở phiên bản {version}, cần {head}: {UPGRADE_HINT}")


def check(url: str) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(url))
