"""`ivr run` and `ivr agi`: the long-running services (ARI and FastAGI)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import logs
from ivr.cli.asterisk import new_watch
from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.config import ConfigError, Settings, load_settings
from ivr.prompts.manifest import ManifestError, load_manifest
from ivr.routing.live import LiveRouting
from ivr.routing.load import RoutingError
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.writer import StoreWriter

log = structlog.get_logger("ivr")


def add_commands(sub: Any) -> None:
    run = sub.add_parser("run", help="điều khiển một Asterisk thật qua ARI")
    run.add_argument("--config", type=Path, help="tệp cấu hình TOML (xem ivr.toml.example)")
    run.add_argument("--log-json", action="store_true", help="ghi nhật ký dạng JSON")
    run.set_defaults(func=_cmd_run)

    agi = sub.add_parser(
        "agi", help="máy chủ FastAGI cho dialplan gọi AGI(agi://host:4573/hotline)"
    )
    agi.add_argument("--config", type=Path, help="tệp cấu hình TOML")
    agi.add_argument("--host", default="127.0.0.1")
    agi.add_argument("--port", type=int, default=4573)
    agi.add_argument("--log-json", action="store_true")
    agi.set_defaults(func=_cmd_agi)


def _cmd_agi(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, require_ari=False)
    except ConfigError as e:
        print(f"cấu hình: {e}", file=sys.stderr)
        return USAGE
    logs.configure(json=settings.log_json or args.log_json, level=args.log_level)
    try:
        return asyncio.run(_agi(settings, args.host, args.port))
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return USAGE
    except OSError as e:
        print(f"không mở được cổng {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return FAILED


async def _agi(settings: Settings, host: str, port: int) -> int:
    from ivr.agi.server import AgiServer
    from ivr.routing.live import LiveRouting

    live = LiveRouting(Path(settings.routing), lambda: list(load_manifest(Path(settings.prompts))))
    engine, writer = await _open_store(settings)
    server = AgiServer(
        live, writer, sound_prefix=settings.sound_prefix, recordings_dir=settings.recordings_dir
    )
    bound = await server.start(host, port)
    log.info("FastAGI listening", host=host, port=bound, routing=live.current.version)
    await _serve_until_signal(live)
    await server.stop()
    await server.idle()
    await writer.stop()
    await engine.dispose()
    return DONE


async def _watch_phones(settings: Settings) -> Any:
    """AMI's view of the phones when configured; the call flow goes on without it."""
    if not settings.ami_address:
        return None
    watch = new_watch(settings)
    try:
        await watch.start()
    except (OSError, TimeoutError) as e:
        log.warning("AMI not available yet; it will keep trying", error=repr(e))
    return watch


async def _open_store(settings: Settings) -> tuple[AsyncEngine, StoreWriter]:
    url = settings.database_url or sqlite_url(Path(settings.data_dir))
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    writer = StoreWriter(engine, Path(settings.spool_dir or Path(settings.data_dir) / "spool"))
    await writer.start()
    return engine, writer


async def _serve_until_signal(live: LiveRouting) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, live.request_reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    watcher = asyncio.create_task(live.watch())
    await stop.wait()
    watcher.cancel()


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        print(f"cấu hình: {e}", file=sys.stderr)
        return USAGE
    logs.configure(json=settings.log_json or args.log_json, level=args.log_level)
    try:
        return asyncio.run(_run(settings))
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return USAGE


async def _run(settings: Settings) -> int:
    from ivr.ari.app import StasisApp
    from ivr.ari.client import AriClient
    from ivr.routing.live import LiveRouting

    live = LiveRouting(Path(settings.routing), lambda: list(load_manifest(Path(settings.prompts))))
    log.info("starting", settings=settings.redacted(), routing=live.current.version)
    engine, writer = await _open_store(settings)
    watch = await _watch_phones(settings)
    if watch is not None:
        watch.on_hangup = writer.call_cause  # the record gets the caller's hang-up cause
    client = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app)
    app = StasisApp(
        client,
        live,
        writer,
        sound_prefix=settings.sound_prefix,
        recordings_dir=settings.recordings_dir,
        unreachable=watch.unreachable if watch else None,
    )
    task = asyncio.create_task(app.run())
    await _serve_until_signal(live)
    log.info("stopping: letting calls in progress finish", calls=len(app.calls))
    await app.stop(drain_seconds=30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    await writer.stop()
    await engine.dispose()
    return DONE
