"""`ivr db reconcile`: one pass of reconciliation, for the calls no controller recorded."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cli.codes import DONE, FAILED
from ivr.cli.settings import settings_of
from ivr.store.reconcile.task import SETTLE_SECONDS, Reconciler

WithEngine = Callable[[argparse.Namespace, Callable[[AsyncEngine], Awaitable[int]]], int]


def add_reconcile(
    db: Any, db_arg: Callable[[argparse.ArgumentParser], None], run: WithEngine
) -> None:
    p = db.add_parser(
        "reconcile",
        help="ghi bổ sung các cuộc gọi Asterisk đã thấy mà bộ điều khiển không ghi (CEL)",
    )
    db_arg(p)
    p.add_argument(
        "--cel",
        type=Path,
        help="tệp CSV của cel_custom (mặc định cel_file trong cấu hình, IVR_CEL_FILE, hoặc "
        "/var/log/asterisk/cel-custom/hotline.csv; 'none': chỉ bảng cel của cel_pgsql)",
    )
    p.add_argument("--node", default="", help="mã Asterisk khi sự kiện CEL không ghi (cel_pgsql)")
    p.add_argument(
        "--settle",
        type=float,
        default=SETTLE_SECONDS,
        help=f"chỉ xét cuộc gọi đã kết thúc ít nhất chừng này giây (mặc định {SETTLE_SECONDS:g})",
    )
    p.set_defaults(func=lambda args: run(args, lambda engine: _reconcile(engine, args)))


async def _reconcile(engine: AsyncEngine, args: argparse.Namespace) -> int:
    if args.cel is None:
        path = settings_of(args).cel_path
    else:
        path = None if str(args.cel) == "none" else args.cel
    if path is not None and not path.is_file():
        print(f"không có tệp CEL {path} (Asterisk chưa ghi, hoặc đặt --cel)", file=sys.stderr)
        return FAILED
    out = await Reconciler(engine, path, settle=args.settle, node=args.node).once()
    print(
        f"đã đọc {out.read} sự kiện CEL, xét {out.looked_at} cuộc gọi đã kết thúc, "
        f"ghi bổ sung {out.written} cuộc gọi (fallback)"
    )
    return DONE
