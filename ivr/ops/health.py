"""Readiness checks for /healthz: each returns None when fine, else the reason (for admins)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.store.writer import StoreWriter

Check = Callable[[], Awaitable[str | None]]

STORE_TIMEOUT = 2.0


def flag(is_up: Callable[[], bool], reason: str) -> Check:
    """Ready while ``is_up()`` holds (the ARI websocket, the FastAGI listener)."""

    async def check() -> str | None:
        return None if is_up() else reason

    return check


def store(writer: StoreWriter, engine: AsyncEngine) -> Check:
    """Ready when the writer keeps nothing back and the database answers."""

    async def check() -> str | None:
        spooled = len(writer.spool.batches())
        if spooled:
            return f"cơ sở dữ liệu chưa nhận: {spooled} lô bản ghi đang chờ trong spool"
        held = writer.held_in_memory()
        if held:
            return f"không ghi được: {held} bản ghi chỉ còn trong bộ nhớ"
        try:
            await asyncio.wait_for(_ping(engine), STORE_TIMEOUT)
        except (SQLAlchemyError, OSError) as e:
            return f"cơ sở dữ liệu không trả lời: {str(e).splitlines()[0]}"
        except TimeoutError:
            return f"cơ sở dữ liệu không trả lời trong {STORE_TIMEOUT:g} s"
        return None

    return check


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
