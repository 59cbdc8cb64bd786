"""`ivr demo`: the simulated exchange with the sample calls."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ivr.cli.codes import DONE, USAGE
from ivr.prompts.manifest import ManifestError
from ivr.routing.load import RoutingError


def add_commands(sub: Any) -> None:
    demo = sub.add_parser("demo", help="chạy thử với tổng đài mô phỏng và các cuộc gọi mẫu")
    demo.add_argument(
        "--speed", type=float, default=10.0, help="nhanh gấp bao nhiêu lần (mặc định 10)"
    )
    demo.add_argument("--root", type=Path, default=Path.cwd(), help="thư mục dự án")
    demo.set_defaults(func=_cmd_demo, log_level="WARNING")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ivr.sim.demo import run_demo

    if args.speed <= 0 or args.speed > 100:
        print("--speed phải trong khoảng (0, 100]", file=sys.stderr)
        return USAGE
    try:
        asyncio.run(run_demo(args.root, speed=args.speed))
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return USAGE
    return DONE
