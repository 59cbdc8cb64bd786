"""`ivr db rollups rebuild`: recompute the call rollups long reports read (ivr.store.rollups)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cli.codes import DONE
from ivr.store.rollups import ZONE, purged_before, rebuild

WithEngine = Callable[[argparse.Namespace, Callable[[AsyncEngine], Awaitable[int]]], int]


def add_rollups(
    db: Any, db_arg: Callable[[argparse.ArgumentParser], None], run: WithEngine
) -> None:
    rollups = db.add_parser("rollups", help="bảng tổng hợp cho báo cáo dài").add_subparsers()
    p = rollups.add_parser(
        "rebuild",
        help="tính lại bảng tổng hợp từ các cuộc gọi đã ghi (sau `ivr db upgrade`; "
        "chạy lại bao nhiêu lần cũng được)",
    )
    db_arg(p)

    async def job(engine: AsyncEngine) -> int:
        counted = await rebuild(engine)
        print(f"đã tính lại bảng tổng hợp từ {counted} cuộc gọi")
        async with engine.connect() as conn:
            cut = await purged_before(conn)
        if cut is not None:
            day = cut.astimezone(ZONE)
            print(f"giữ nguyên số liệu trước {day:%d/%m/%Y}: cuộc gọi đã xoá bằng `ivr db purge`")
        return DONE

    p.set_defaults(func=lambda args: run(args, job))
