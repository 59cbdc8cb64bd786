"""`ivr web`: the web console for supervisors, clerks and admins (ivr.web)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from ivr.cases.rules import RulesError, load_rules
from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import database_url, require_database, settings_of
from ivr.config import ConfigError
from ivr.reports.agency import AgencyError, load_agency
from ivr.store.db import make_engine, require_current
from ivr.store.errors import NotReady
from ivr.web.app import load_secret, make_app
from ivr.web.keys import WebConfig
from ivr.web.routing_desk import RoutingDesk

log = structlog.get_logger("ivr.web")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("web", help="bảng điều khiển web (web_address, mặc định 127.0.0.1:8080)")
    p.add_argument("--address", help="HOST:CỔNG nghe (mặc định web_address trong cấu hình)")
    p.add_argument(
        "--agency",
        type=Path,
        help="tệp thông tin cơ quan cho báo cáo gửi Bộ (như ivr report ministry --agency)",
    )
    p.add_argument(
        "--rules", type=Path, help="tệp quy định hồ sơ PAKN TOML (như ivr cases --rules)"
    )
    p.set_defaults(func=_cmd_web)


def _cmd_web(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    address = args.address or settings.web_address
    if not address:
        raise ConfigError("web_address trống: bảng điều khiển không có địa chỉ để nghe")
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--address '{address}' cần dạng HOST:CỔNG, vd. 127.0.0.1:8080")
    try:  # a file the admin got wrong is said at start, not at the first download
        load_agency(args.agency)
        load_rules(args.rules)  # None: IVR_CASES_RULES or the defaults, as ivr cases reads them
    except (AgencyError, RulesError) as e:
        print(e, file=sys.stderr)
        return USAGE
    url = database_url(settings)
    require_database(url)
    try:
        secret = load_secret(Path(settings.data_dir) / "web_session.key")
    except (OSError, ValueError) as e:
        print(f"không đọc được khoá phiên: {e}", file=sys.stderr)
        return FAILED
    config = WebConfig(
        recordings_dir=Path(settings.recordings_dir),
        secret_key=secret,
        routing=Path(settings.routing),
        prompts=Path(settings.prompts),
        agency=args.agency,
        case_rules=args.rules,
        routing_history=Path(settings.data_dir) / "routing-history",
    )
    try:
        asyncio.run(_serve(url, config, host.strip("[]") or "127.0.0.1", int(port)))
    except NotReady as e:
        print(e, file=sys.stderr)
        return USAGE
    except (SQLAlchemyError, OSError) as e:
        print(f"bảng điều khiển dừng vì lỗi: {str(e).splitlines()[0]}", file=sys.stderr)
        return FAILED
    return DONE


async def _serve(url: str, config: WebConfig, host: str, port: int) -> None:
    engine = make_engine(url, create=False)
    try:
        await require_current(engine)
        desk = (
            RoutingDesk(config.routing, config.prompts, history=config.routing_history)
            if config.routing
            else None
        )
        if desk is not None and not desk.reload():
            log.warning("web_routing_not_loaded", problems=desk.problems[:5])
        app = make_app(engine, config, desk)
        runner = web.AppRunner(app, access_log=None)  # ivr.web.security logs, without queries
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("web_started", address=f"http://{host}:{port}/")
        print(f"Bảng điều khiển: http://{host}:{port}/  (Ctrl-C để dừng)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    finally:
        await engine.dispose()
