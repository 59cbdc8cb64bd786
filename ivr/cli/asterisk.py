"""`ivr asterisk-config`, `ivr pjsip`, `ivr endpoints`: the PBX's configuration and its phones."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ivr.ari.client import describe
from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import settings_of
from ivr.cli.terminal import escape, json_text
from ivr.config import PROJECT_ROOT, Settings
from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing


def add_commands(sub: Any) -> None:
    conf = sub.add_parser(
        "asterisk-config", help="ghi các tệp cấu hình Asterisk (http, ari, pjsip, dialplan)"
    )
    conf.add_argument("directory", type=Path, help="thư mục đích, vd. /etc/asterisk")
    conf.add_argument("--routing", type=Path, help="mặc định routing trong cấu hình")
    conf.add_argument("--example", type=Path, default=PROJECT_ROOT / "asterisk.conf.example")
    conf.add_argument("--dialplan", type=Path, default=PROJECT_ROOT / "dialplan" / "hotline.conf")
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
    conf.add_argument(
        "--cluster",
        action="store_true",
        help="nhiều bộ điều khiển (cluster = true): trung kế vào [hotline-cluster], không phải "
        "[hotline-inbound]",
    )
    conf.set_defaults(func=_cmd_asterisk_config)

    pjsip = sub.add_parser("pjsip", help="sinh cấu hình pjsip.conf cho mọi máy trong định tuyến")
    pjsip.add_argument("file", type=Path, nargs="?", help="mặc định routing trong cấu hình")
    pjsip.set_defaults(func=_cmd_pjsip)

    eps = sub.add_parser("endpoints", help="trạng thái máy các nhánh và đơn vị (qua AMI)")
    eps.add_argument("--json", action="store_true")
    eps.set_defaults(func=_cmd_endpoints)


def _cmd_pjsip(args: argparse.Namespace) -> int:
    from ivr.asterisk.pjsip import render

    try:
        routing = load_routing(args.file or Path(settings_of(args).routing), None)
    except RoutingError as e:
        print(e, file=sys.stderr)
        return USAGE
    sys.stdout.write(render(routing))
    return DONE


def _cmd_asterisk_config(args: argparse.Namespace) -> int:
    from ivr.asterisk.config import write_config

    contacts = None
    if args.static_contacts:
        host, _, port = args.static_contacts.rpartition(":")
        if not host or not port.isdigit():
            print("--static-contacts cần dạng HOST:PORT, vd. 127.0.0.1:5070", file=sys.stderr)
            return USAGE
        contacts = (host, int(port))
    try:
        routing = load_routing(args.routing or Path(settings_of(args).routing), None)
        written = write_config(
            args.directory,
            args.example,
            args.dialplan,
            routing,
            overwrite=args.overwrite,
            static_contacts=contacts,
            qualify=not args.no_qualify,
            cluster=args.cluster,
        )
    except RoutingError as e:
        print(e, file=sys.stderr)
        return USAGE
    except OSError as e:
        print(f"không ghi được cấu hình: {e}", file=sys.stderr)
        return FAILED
    for path in written:
        print(path)
    return DONE


def _cmd_endpoints(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    try:
        routing = load_routing(Path(settings.routing), None)
    except RoutingError as e:
        print(e, file=sys.stderr)
        return USAGE
    if not settings.ami_address:
        print(
            "chưa cấu hình AMI: đặt ami_address (vd. 127.0.0.1:5038) và ami_secret", file=sys.stderr
        )
        return USAGE
    try:
        rows = asyncio.run(_endpoint_states(settings, routing))
    except (OSError, TimeoutError) as e:
        print(f"không kết nối được AMI {settings.ami_address}: {describe(e)}", file=sys.stderr)
        return FAILED
    if args.json:
        print(
            json_text([{"endpoint": f"PJSIP/{n}", "owner": c, "state": s} for n, c, s, _ in rows])
        )
        return DONE
    for name, comment, _state, label in rows:  # names and owners from the routing file
        print(f"  PJSIP/{escape(name):<12} {label:<20} {escape(comment)}")
    down = sum(1 for _, _, s, _ in rows if s != "reachable")
    print(f"{len(rows)} máy, {down} không sẵn sàng")
    return DONE


async def _endpoint_states(settings: Settings, routing: Routing) -> list[tuple[str, str, str, str]]:
    from ivr.ami.watch import LABELS
    from ivr.asterisk.pjsip import phones

    watch = new_watch(settings)
    try:
        await watch.start()
    finally:
        watch.close()
    out = []
    for phone in phones(routing):
        state = watch.state(phone.name)
        out.append((phone.name, phone.comment, state.value, LABELS[state]))
    return out


def new_watch(settings: Settings) -> Any:
    from ivr.ami.watch import EndpointWatch

    host, port = settings.ami_endpoint
    return EndpointWatch(host, port, settings.ami_user, settings.ami_secret)
