"""`ivr demo`: the simulated exchange with the sample calls, kept in the data folder."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import settings_of, speed
from ivr.config import PROJECT_ROOT, Settings
from ivr.prompts.manifest import ManifestError
from ivr.routing.load import RoutingError
from ivr.store.db import sqlite_url

_VN = ZoneInfo("Asia/Ho_Chi_Minh")


def add_commands(sub: Any) -> None:
    demo = sub.add_parser("demo", help="chạy thử với tổng đài mô phỏng và các cuộc gọi mẫu")
    demo.add_argument(
        "--speed",
        type=speed,
        default=10.0,
        help="nhanh gấp bao nhiêu lần, tối đa 100 (mặc định 10)",
    )
    demo.add_argument(
        "--root", type=Path, default=PROJECT_ROOT, help="thư mục dự án (định tuyến mẫu)"
    )
    demo.add_argument(
        "--asterisk",
        action="store_true",
        help="gọi qua Asterisk 22 thật (scripts/asterisk, cần root; lần đầu khoảng 3 phút)"
        " với SIPp làm người gọi và máy bàn, thay cho tổng đài mô phỏng",
    )
    demo.set_defaults(func=_cmd_demo, log_level="WARNING")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ivr.sim.demo import run_demo
    from ivr.sim.real_demo import AsteriskUnavailable, run_real_demo

    settings = settings_of(args)
    folder = Path(settings.data_dir)
    try:
        if args.asterisk:
            calls = asyncio.run(run_real_demo(args.root, data_dir=folder))
        else:
            calls = asyncio.run(run_demo(args.root, speed=args.speed, data_dir=folder))
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return USAGE
    except AsteriskUnavailable as e:
        print(e, file=sys.stderr)
        return FAILED
    days = sorted({c.started_at.astimezone(_VN).date() for c in calls})
    where = _store_flags(args, settings, folder)
    print(f"\nCác cuộc gọi thử được giữ trong {folder}; xem lại bằng:")
    if days:
        print(f"  ivr calls --from {days[0]} --to {days[-1]}{where}")
    print(f"  ivr voicemails{where}")
    return DONE


def _store_flags(args: argparse.Namespace, settings: Settings, folder: Path) -> str:
    """What `ivr calls` needs to read the demo's store, as this command found it."""
    flags = []
    if args.config is not None:
        flags += ["--config", str(args.config)]
    if settings.database_url:  # the configured store is elsewhere: name the demo's file
        flags += ["--db", sqlite_url(folder)]
    return "".join(f" {shlex.quote(f)}" for f in flags)
