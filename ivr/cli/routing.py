"""`ivr routing check` and `ivr routing simulate`: the routing file, before it goes live."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.prompts.manifest import ManifestError, default_manifest_path, load_manifest
from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import HANGUP, SILENCE, FakeSession
from ivr.sim.scripts import ClerkKind


def add_commands(sub: Any) -> None:
    routing = sub.add_parser("routing", help="kiểm tra và thử tệp định tuyến").add_subparsers()
    check = routing.add_parser("check", help="kiểm tra một tệp định tuyến")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--prompts", type=Path, help="danh mục lời nhắc (mặc định prompts/manifest.yaml)"
    )
    check.set_defaults(func=_cmd_check)
    sim = routing.add_parser("simulate", help="in đường đi của một cuộc gọi giả định")
    sim.add_argument("file", type=Path)
    sim.add_argument("--at", required=True, help='thời điểm gọi, giờ Việt Nam: "2026-02-17 09:00"')
    sim.add_argument(
        "--digits",
        default="",
        help='phím bấm, mỗi lần nhập cách nhau dấu cách: "0 3002#"; "_" là im lặng',
    )
    sim.add_argument(
        "--clerk",
        choices=[c.value for c in ClerkKind],
        default=ClerkKind.ANSWER.value,
        help="máy cán bộ: nghe máy, bận, không trả lời, không liên lạc được",
    )
    sim.add_argument("--caller", default="0912345678", help="số người gọi")
    sim.add_argument(
        "--message",
        type=float,
        default=0.0,
        help="người gọi để lại lời nhắn dài bao nhiêu giây (mặc định 0: không)",
    )
    sim.add_argument("--prompts", type=Path)
    sim.set_defaults(func=_cmd_simulate, log_level="WARNING")


def _prompt_ids(routing_file: Path, manifest: Path | None) -> list[str]:
    path = manifest or default_manifest_path(routing_file)
    return list(load_manifest(path))


def _load(routing_file: Path, manifest: Path | None) -> Routing:
    return load_routing(routing_file, _prompt_ids(routing_file, manifest))


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        prompt_ids = _prompt_ids(args.file, args.prompts)
    except ManifestError as e:
        print(e, file=sys.stderr)
        return USAGE
    try:
        routing = load_routing(args.file, prompt_ids)
    except RoutingError as e:
        print(e, file=sys.stderr)
        print(f"\n{args.file}: {len(e.problems)} lỗi, tệp không được dùng.", file=sys.stderr)
        return FAILED
    print(
        f"{args.file}: hợp lệ — {len(routing.nodes)} nút, {len(routing.branches)} nhánh, "
        f"{len(routing.units)} đơn vị; phiên bản {routing.version}"
    )
    ended = sum(1 for u in routing.units if u.valid_until is not None)
    replaced = sum(1 for u in routing.units if u.replaced_by is not None)
    changes = sum(len(b.changes) for b in routing.branches.values())
    if ended or changes:
        print(
            f"  thay đổi theo ngày: {ended} đơn vị có ngày thôi hoạt động ({replaced} có đơn vị "
            f"thay thế), {changes} thay đổi của nhánh"
        )
    return DONE


def _cmd_simulate(args: argparse.Namespace) -> int:
    try:
        routing = _load(args.file, args.prompts)
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return USAGE
    try:
        local = dt.datetime.strptime(args.at, "%Y-%m-%d %H:%M")
    except ValueError:
        print(f'--at "{args.at}": cần dạng "YYYY-MM-DD HH:MM"', file=sys.stderr)
        return USAGE
    bad = [d for d in args.digits.split() if d != "_" and not set(d) <= set("0123456789*#")]
    if bad:
        print(
            f"--digits: '{bad[0]}' không phải phím điện thoại (0-9, *, #, _ là im lặng)",
            file=sys.stderr,
        )
        return USAGE
    at = local.replace(tzinfo=ZoneInfo(routing.hotline.timezone))
    inputs = [SILENCE if d == "_" else d for d in args.digits.split()]
    record = asyncio.run(
        _simulate(routing, at, inputs, ClerkKind(args.clerk), args.caller, args.message)
    )
    print(
        f"Cuộc gọi từ {args.caller} lúc {args.at} ({routing.hotline.timezone}), "
        f"định tuyến {routing.version}:"
    )
    for step in record.steps:
        extra = f" [{step.input}]" if step.input else ""
        detail = f" — {step.detail}" if step.detail else ""
        print(f"  {step.node:<14} {step.kind:<10} {step.outcome}{extra}{detail}")
    print(
        f"Kết quả: {record.disposition.value}"
        + (f", nhánh {record.branch}" if record.branch else "")
        + (f", đơn vị {record.unit}" if record.unit else "")
        + (f", máy {record.endpoint}" if record.endpoint else "")
    )
    if record.branch:
        branch = routing.branches[record.branch]
        owner = branch.on(at.date()).owner  # owners change on dates (the branch's `changes`)
        print(f"Nhánh {record.branch} ({branch.name}) ngày {at:%d/%m/%Y} do {owner} phụ trách")
    return DONE


async def _simulate(
    routing: Routing,
    at: dt.datetime,
    inputs: list[str],
    clerk: ClerkKind,
    caller: str,
    message_seconds: float,
) -> CallRecord:
    session = FakeSession(
        CallInfo("simulate.1", caller),
        inputs=[*inputs, HANGUP],
        default_clerk=clerk,
        voicemail_seconds=message_seconds,
    )
    return await run_call(session, routing, MemoryObserver(), clock=lambda: at)
