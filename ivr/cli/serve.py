"""`ivr run` and `ivr agi`: the long-running services (ARI and FastAGI)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import logs
from ivr.ami.publish import PhonePublisher
from ivr.ari.client import AriClient, describe
from ivr.ari.overload import Limits
from ivr.cli import loop
from ivr.cli.asterisk import new_watch
from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import database_problem, port, settings_of
from ivr.config import Settings
from ivr.flow.hours import warm_up
from ivr.flow.record import CallObserver
from ivr.metrics import CallMetrics
from ivr.ops import health
from ivr.ops.http import LiveFigures, OpsServer
from ivr.ops.runtime import settle_gc
from ivr.prompts.manifest import ManifestError, load_manifest
from ivr.routing.live import LiveRouting
from ivr.routing.load import RoutingError
from ivr.store.db import make_engine, require_current, sqlite_url
from ivr.store.errors import NotReady
from ivr.store.lease import Owner, default_instance
from ivr.store.reconcile.task import Reconciler
from ivr.store.writer import StoreWriter
from ivr.survey.offer import calls_routing
from ivr.survey.zalo import service as zalo_survey

if TYPE_CHECKING:
    from ivr.ari.app import StasisApp

log = structlog.get_logger("ivr")


RUN_HELP = """\
Cơ sở dữ liệu khi khởi động: không kết nối được (máy chủ tắt, sai địa chỉ) thì dừng với mã 1
và một dòng lý do; hỏng, chỉ đọc, sai mật khẩu hoặc chưa `ivr db upgrade` thì dừng với mã 2.
Bộ điều khiển không chạy khi chưa có cơ sở dữ liệu, vì nó cần giữ quyền (lease) của mình trong
đó; trong lúc ấy Asterisk chuyển cuộc gọi sang nhánh dự phòng của dialplan. Hãy để trình quản
lý dịch vụ khởi động lại (systemd: Restart=on-failure). Khi đã chạy, cơ sở dữ liệu mất kết nối
thì bản ghi được giữ trong thư mục spool và ghi lại khi kết nối trở lại.
"""


def add_commands(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="điều khiển một Asterisk thật qua ARI",
        epilog=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--log-json", action="store_true", help="ghi nhật ký dạng JSON")
    run.set_defaults(func=_cmd_run)

    agi = sub.add_parser(
        "agi", help="máy chủ FastAGI cho dialplan gọi AGI(agi://host:4573/hotline)"
    )
    agi.add_argument("--host", default="127.0.0.1")
    agi.add_argument("--port", type=port, default=4573, help="cổng 0–65535 (0: cổng trống bất kỳ)")
    agi.add_argument("--log-json", action="store_true")
    agi.set_defaults(func=_cmd_agi)


def _cmd_agi(args: argparse.Namespace) -> int:
    settings = settings_of(args)  # a bad file: ConfigError, exit 2 (ivr.cli.main)
    logs.configure(json=settings.log_json or args.log_json, level=args.log_level)
    try:
        return loop.run(_agi(settings, args.host, args.port), settings.event_loop)
    except (RoutingError, ManifestError, NotReady) as e:
        print(e, file=sys.stderr)
        return USAGE
    except StoreProblem as e:
        print(e, file=sys.stderr)
        return e.code
    except MetricsPortError as e:
        print(e, file=sys.stderr)
        return FAILED
    except OSError as e:
        print(f"không mở được cổng {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return FAILED


async def _agi(settings: Settings, host: str, port: int) -> int:
    from ivr.agi.server import AgiServer
    from ivr.routing.live import LiveRouting

    live = LiveRouting(Path(settings.routing), lambda: list(load_manifest(Path(settings.prompts))))
    listening = False
    engine, writer = await _open_store(settings, f"agi:{port}")
    ops = await _start_ops(
        settings,
        {"asterisk": health.flag(lambda: listening, "FastAGI chưa nghe kết nối")},
        writer,
        engine,
    )
    try:
        server = AgiServer(
            calls_routing(live, settings),  # the survey offers Zalo only where it is configured
            CallMetrics(writer),
            sound_prefix=settings.sound_prefix,
            recordings_dir=settings.recordings_dir,
            max_connections=settings.agi_max_connections,
            reply_timeout=settings.agi_reply_timeout,
        )
        bound = await server.start(host, port)
    except BaseException:
        await _stop_ops(ops)
        await writer.stop()
        await engine.dispose()
        raise
    listening = True
    log.info("FastAGI listening", host=host, port=bound, routing=live.current.version)
    # calls Asterisk saw that no controller recorded (the fallback's), as `ivr run` does
    reconciling = asyncio.create_task(Reconciler(engine, settings.cel_path).run())
    # the Zalo survey outbox, from the stored calls: never part of a call
    zalo = await zalo_survey.start(settings, engine) if settings.zalo_enabled else None
    await _serve_until_signal(live)
    if zalo is not None:
        await zalo.stop()
    reconciling.cancel()
    await asyncio.gather(reconciling, return_exceptions=True)
    listening = False
    await server.stop()
    await server.idle()
    await _stop_ops(ops)
    await writer.stop()
    await engine.dispose()
    return DONE


class StoreProblem(Exception):
    """The database could not be opened at start: one line, and the exit code it deserves."""

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code


class MetricsPortError(Exception):
    """The /metrics and /healthz address cannot be listened on."""


async def _start_ops(
    settings: Settings,
    checks: dict[str, health.Check],
    writer: StoreWriter,
    engine: AsyncEngine,
    reconnects: Callable[[], int] | None = None,
) -> OpsServer | None:
    """/metrics and /healthz on metrics_address (none when it is empty)."""
    if not settings.metrics_address:
        return None
    figures = LiveFigures(reconnects=reconnects, spooled=lambda: len(writer.spool.batches()))
    ops = OpsServer({**checks, "store": health.store(writer, engine)}, figures)
    host, port = settings.metrics_endpoint
    try:
        bound = await ops.start(host, port)
    except OSError as e:
        await writer.stop()
        await engine.dispose()
        raise MetricsPortError(
            f"không mở được cổng metrics {settings.metrics_address}: {e.strerror}; "
            "đặt metrics_address (IVR_METRICS_ADDRESS) khác, hoặc rỗng để tắt"
        ) from e
    log.info("metrics and health served", url=f"http://{host}:{bound}/metrics")
    return ops


async def _stop_ops(ops: OpsServer | None) -> None:
    if ops is not None:
        await ops.stop()


async def _watch_phones(settings: Settings) -> Any:
    """AMI's view of the phones when configured, logging in in the background: ARI never waits
    for it, and the call flow goes on without it (unknown phones are dialled)."""
    if not settings.ami_address:
        return None
    watch = new_watch(settings)
    watch.starting = asyncio.create_task(_start_watch(watch, settings), name="ami-start")
    return watch


async def _start_watch(watch: Any, settings: Settings) -> None:
    from ivr.ami.watch import AmiLoginRefused

    try:
        await watch.start()
    except AmiLoginRefused as e:
        log.error(str(e))
    except (OSError, TimeoutError) as e:
        log.warning(
            "AMI chưa trả lời; vẫn thử lại",
            address=settings.ami_address,
            error=describe(e),
        )


async def _open_store(settings: Settings, role: str = "ari") -> tuple[AsyncEngine, StoreWriter]:
    """The store as `ivr db upgrade` left it (NotReady: missing, out of date, or this
    controller's id held by a live process); the writer holds this instance's lease."""
    url = settings.database_url or sqlite_url(Path(settings.data_dir))
    engine = make_engine(url, create=False)
    # in a cluster the lease is the controller id: the survivors find its calls by that name
    instance = settings.controller_id if settings.cluster and role == "ari" else None
    try:
        await require_current(engine)
        owner = Owner.here(instance or default_instance(role, _serves(settings, role)))
        writer = StoreWriter(engine, settings.spool_path, owner=owner)
        await writer.start()
    except (SQLAlchemyError, OSError) as e:  # down, corrupt, read-only: one line (RUN_HELP)
        await engine.dispose()
        raise StoreProblem(*database_problem(e, url)) from e
    except BaseException:
        await engine.dispose()
        raise
    return engine, writer


def _serves(settings: Settings, role: str) -> str:
    """What makes this controller's default lease id unique on its host: for ARI its app and
    Asterisk (FastAGI's role already carries its port)."""
    if role != "ari":
        return ""
    return f"{app_name(settings)}@{urlsplit(settings.ari_url).netloc}"


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
    settings = settings_of(args, require_ari=True)
    logs.configure(json=settings.log_json or args.log_json, level=args.log_level)
    try:
        return loop.run(_run(settings), settings.event_loop)
    except (RoutingError, ManifestError, NotReady) as e:
        print(e, file=sys.stderr)
        return USAGE
    except StoreProblem as e:
        print(e, file=sys.stderr)
        return e.code
    except MetricsPortError as e:
        print(e, file=sys.stderr)
        return FAILED


def limits(settings: Settings) -> Limits:
    """When a new call is shed to the fallback (max_calls, max_loop_lag_ms, max_ari_latency_ms)."""
    return Limits(
        max_calls=settings.max_calls,
        max_loop_lag=settings.max_loop_lag_ms / 1000,
        max_ari_latency=settings.max_ari_latency_ms / 1000,
    )


def app_name(settings: Settings) -> str:
    """The ARI application: ari_app, or hotline-<controller_id> in a cluster."""
    if settings.cluster:
        from ivr.cluster.app import APP_PREFIX

        return APP_PREFIX + settings.controller_id
    return settings.ari_app


def new_app(
    settings: Settings,
    live: LiveRouting,
    records: CallObserver,
    watch: Any,
    engine: AsyncEngine | None = None,
) -> tuple[AriClient, StasisApp]:
    """The ARI client and the Stasis application `ivr run` serves, from the settings; the
    calls' records go to ``records`` (the store's writer), counted on the way. In a cluster
    (``cluster = true``) it is a ClusterApp on ``engine``, the store's PostgreSQL."""
    from ivr.ari.app import StasisApp

    client = AriClient(
        settings.ari_url, settings.ari_user, settings.ari_password, app_name(settings)
    )
    kwargs: dict[str, Any] = {
        "sound_prefix": settings.sound_prefix,
        "recordings_dir": settings.recordings_dir,
        "unreachable": watch.unreachable if watch else None,
        "limits": limits(settings),
    }
    if not settings.cluster:
        routes = calls_routing(live, settings)  # the survey offers Zalo only where configured
        return client, StasisApp(client, routes, CallMetrics(records), **kwargs)
    from ivr.cluster.app import ClusterApp

    if engine is None:
        raise ValueError("a cluster's app needs the store's engine")
    app = ClusterApp(
        client,
        calls_routing(live, settings),
        CallMetrics(records),
        engine=engine,
        controller=settings.controller_id,
        **kwargs,
    )
    return client, app


async def _run(settings: Settings) -> int:
    from ivr.routing.live import LiveRouting

    live = LiveRouting(Path(settings.routing), lambda: list(load_manifest(Path(settings.prompts))))
    log.info("starting", settings=settings.redacted(), routing=live.current.version)
    engine, writer = await _open_store(settings)
    app: StasisApp | None = None
    ops = await _start_ops(
        settings,
        {
            "asterisk": health.flag(
                lambda: app is not None and app.stream.connected.is_set(),
                "websocket ARI chưa kết nối",
            )
        },
        writer,
        engine,
        reconnects=lambda: max(app.stream.connections - 1, 0) if app is not None else 0,
    )
    watch = await _watch_phones(settings)
    if watch is not None:
        watch.on_hangup = writer.call_cause  # the record gets the caller's hang-up cause
        phones = PhonePublisher(engine, watch.phones, writer.owner.id)  # for `ivr web`
        publishing = asyncio.create_task(phones.run(), name="ami-phones")
    client, app = new_app(settings, live, writer, watch, engine)
    log.info("ARI application", app=client.app, cluster=settings.cluster)
    routing = live.current
    try:  # only a head start: a call builds what is missing by itself
        warm_up(routing.schedules.values(), dt.datetime.now(dt.UTC), routing.hotline.timezone)
    except Exception as e:
        log.warning("không nạp trước được bảng ngày lễ", error=str(e))
    settle_gc()  # all loaded: the collector watches the calls' objects alone from here
    task = asyncio.create_task(app.run())
    # calls Asterisk saw that no controller recorded (the fallback's): at start, then continuously
    reconciling = asyncio.create_task(Reconciler(engine, settings.cel_path).run())
    # the Zalo survey outbox, from the stored calls: never part of a call
    zalo = await zalo_survey.start(settings, engine) if settings.zalo_enabled else None
    await _serve_until_signal(live)
    if zalo is not None:
        await zalo.stop()
    reconciling.cancel()
    await asyncio.gather(reconciling, return_exceptions=True)
    log.info("stopping: letting calls in progress finish", calls=len(app.calls))
    await app.stop(drain_seconds=30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    if watch is not None:
        watch.close()
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
    await _stop_ops(ops)
    await writer.stop()
    await engine.dispose()
    return DONE
