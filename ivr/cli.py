"""The `ivr` command. Messages for admins and supervisors are in Vietnamese."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from ivr import logs
from ivr.cli_serve import add_commands as add_serve_commands
from ivr.cli_store import add_commands as add_store_commands
from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.prompts import ManifestError, default_manifest_path, load_manifest
from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.testing.fake import HANGUP, SILENCE, Clerk, FakeSession

log = structlog.get_logger("ivr")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    logs.configure(json=getattr(args, "log_json", False), level=getattr(args, "log_level", "INFO"))
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ivr", description="Tổng đài hỗ trợ công tác CCHC trên Asterisk"
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = p.add_subparsers(title="lệnh")

    add_serve_commands(sub)

    demo = sub.add_parser("demo", help="chạy thử với tổng đài mô phỏng và các cuộc gọi mẫu")
    demo.add_argument(
        "--speed", type=float, default=10.0, help="nhanh gấp bao nhiêu lần (mặc định 10)"
    )
    demo.add_argument("--root", type=Path, default=Path.cwd(), help="thư mục dự án")
    demo.set_defaults(func=_cmd_demo, log_level="WARNING")

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
        choices=[c.value for c in Clerk],
        default=Clerk.ANSWER.value,
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

    pjsip = sub.add_parser("pjsip", help="sinh cấu hình pjsip.conf cho mọi máy trong định tuyến")
    pjsip.add_argument("file", type=Path)
    pjsip.set_defaults(func=_cmd_pjsip)

    add_store_commands(sub)

    prompts = sub.add_parser("prompts", help="tạo và kiểm tra âm thanh lời nhắc").add_subparsers()
    pb = prompts.add_parser("build", help="tạo âm thanh từ lời đọc (espeak-ng) hoặc tệp ghi âm")
    pb.add_argument("--routing", type=Path, default=Path("routing/hotline.yaml"))
    pb.add_argument("--manifest", type=Path, default=Path("prompts/manifest.yaml"))
    pb.add_argument("--out", type=Path, default=Path("prompts/sounds/vi/hotline"))
    pb.add_argument(
        "--install",
        type=Path,
        metavar="SOUNDS_DIR",
        help="chép vào thư mục âm thanh của Asterisk, vd. /var/lib/asterisk/sounds",
    )
    pb.add_argument("--force", action="store_true", help="tạo lại tất cả")
    pb.set_defaults(func=_cmd_prompts_build)
    pc = prompts.add_parser("check", help="mọi lời nhắc định tuyến cần đã có đủ định dạng")
    pc.add_argument("--routing", type=Path, default=Path("routing/hotline.yaml"))
    pc.add_argument("--manifest", type=Path, default=Path("prompts/manifest.yaml"))
    pc.add_argument("--dialplan", type=Path, default=Path("dialplan/hotline.conf"))
    pc.add_argument("--out", type=Path, default=Path("prompts/sounds/vi/hotline"))
    pc.set_defaults(func=_cmd_prompts_check)

    conf = sub.add_parser(
        "asterisk-config", help="ghi các tệp cấu hình Asterisk (http, ari, pjsip, dialplan)"
    )
    conf.add_argument("directory", type=Path, help="thư mục đích, vd. /etc/asterisk")
    conf.add_argument("--routing", type=Path, default=Path("routing/hotline.yaml"))
    conf.add_argument("--example", type=Path, default=Path("asterisk.conf.example"))
    conf.add_argument("--dialplan", type=Path, default=Path("dialplan/hotline.conf"))
    conf.add_argument("--overwrite", action="store_true", help="ghi đè tệp đã có")
    conf.add_argument(
        "--static-contacts",
        metavar="HOST:PORT",
        help="máy có địa chỉ cố định: máy thứ n ở HOST:PORT+n (vd. bàn thử SIPp)",
    )
    conf.add_argument(
        "--no-qualify",
        action="store_true",
        help="không thăm dò máy (máy thử không trả lời OPTIONS)",
    )
    conf.set_defaults(func=_cmd_asterisk_config)
    return p


def _prompt_ids(routing_file: Path, manifest: Path | None) -> list[str]:
    path = manifest or default_manifest_path(routing_file)
    return list(load_manifest(path))


def _load(routing_file: Path, manifest: Path | None) -> Routing:
    return load_routing(routing_file, _prompt_ids(routing_file, manifest))


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        routing = _load(args.file, args.prompts)
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        count = len(e.problems) if isinstance(e, RoutingError) else 1
        print(f"\n{args.file}: {count} lỗi, tệp không được dùng.", file=sys.stderr)
        return 1
    print(
        f"{args.file}: hợp lệ — {len(routing.nodes)} nút, {len(routing.branches)} nhánh, "
        f"{len(routing.units)} đơn vị; phiên bản {routing.version}"
    )
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    try:
        routing = _load(args.file, args.prompts)
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return 1
    try:
        local = dt.datetime.strptime(args.at, "%Y-%m-%d %H:%M")
    except ValueError:
        print(f'--at "{args.at}": cần dạng "YYYY-MM-DD HH:MM"', file=sys.stderr)
        return 2
    bad = [d for d in args.digits.split() if d != "_" and not set(d) <= set("0123456789*#")]
    if bad:
        print(
            f"--digits: '{bad[0]}' không phải phím điện thoại (0-9, *, #, _ là im lặng)",
            file=sys.stderr,
        )
        return 2
    at = local.replace(tzinfo=ZoneInfo(routing.hotline.timezone))
    inputs = [SILENCE if d == "_" else d for d in args.digits.split()]
    record = asyncio.run(
        _simulate(routing, at, inputs, Clerk(args.clerk), args.caller, args.message)
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
    return 0


async def _simulate(
    routing: Routing,
    at: dt.datetime,
    inputs: list[str],
    clerk: Clerk,
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


def _cmd_prompts_build(args: argparse.Namespace) -> int:
    from ivr.prompts import with_units
    from ivr.prompts_build import PromptBuildError, build, install

    try:
        manifest = load_manifest(args.manifest)
        routing = load_routing(args.routing, list(manifest))
        built = build(with_units(manifest, routing), args.manifest.parent, args.out, args.force)
    except (RoutingError, ManifestError, PromptBuildError) as e:
        print(e, file=sys.stderr)
        return 1
    changed = [b for b in built if b.changed]
    for b in changed:
        print(f"  {b.id:<24} {b.seconds:5.1f} s  ({b.source})")
    print(f"{len(changed)} lời nhắc được tạo, {len(built) - len(changed)} không đổi; ở {args.out}")
    if args.install:
        try:
            n = install(args.out, args.install)
        except OSError as e:
            print(f"không chép được vào {args.install}: {e}", file=sys.stderr)
            return 1
        print(f"đã chép {n} tệp vào {args.install / 'vi' / 'hotline'}")
    return 0


def _cmd_prompts_check(args: argparse.Namespace) -> int:
    import re

    from ivr.prompts_build import check
    from ivr.routing.model import node_prompts

    try:
        routing = load_routing(args.routing, list(load_manifest(args.manifest)))
        dialplan = args.dialplan.read_text(encoding="utf-8")
    except (RoutingError, ManifestError, OSError) as e:
        print(e, file=sys.stderr)
        return 1
    needed = {p for node in routing.nodes.values() for _, p in node_prompts(node)}
    needed |= {u.prompt for u in routing.units}
    needed |= set(re.findall(r"hotline/([A-Za-z0-9_-]+)", dialplan))
    present, missing = check(sorted(needed), args.out)
    for pid, seconds in present:
        print(f"  {pid:<24} {seconds:5.1f} s")
    if missing:
        for m in missing:
            print(f"THIẾU {m.id}: {', '.join(m.formats)}", file=sys.stderr)
        print(f"{len(missing)} lời nhắc còn thiếu (chạy `ivr prompts build`)", file=sys.stderr)
        return 1
    total = sum(s for _, s in present)
    print(f"đủ {len(present)} lời nhắc ở mọi định dạng ({total:.0f} s âm thanh)")
    return 0


def _cmd_pjsip(args: argparse.Namespace) -> int:
    from ivr.pjsip import render

    try:
        routing = load_routing(args.file, None)
    except RoutingError as e:
        print(e, file=sys.stderr)
        return 1
    sys.stdout.write(render(routing))
    return 0


def _cmd_asterisk_config(args: argparse.Namespace) -> int:
    from ivr.asterisk_config import write_config

    contacts = None
    if args.static_contacts:
        host, _, port = args.static_contacts.rpartition(":")
        if not host or not port.isdigit():
            print("--static-contacts cần dạng HOST:PORT, vd. 127.0.0.1:5070", file=sys.stderr)
            return 2
        contacts = (host, int(port))
    try:
        routing = load_routing(args.routing, None)
        written = write_config(
            args.directory,
            args.example,
            args.dialplan,
            routing,
            overwrite=args.overwrite,
            static_contacts=contacts,
            qualify=not args.no_qualify,
        )
    except RoutingError as e:
        print(e, file=sys.stderr)
        return 1
    except OSError as e:
        print(f"không ghi được cấu hình: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ivr.demo import run_demo

    if args.speed <= 0 or args.speed > 100:
        print("--speed phải trong khoảng (0, 100]", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_demo(args.root, speed=args.speed))
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
