"""`ivr agi`: a FastAGI server running the same call flow as the ARI application.

For dialplans that run `AGI(agi://host:4573/hotline)`. Each connection is one call and one task;
a bad peer costs only its own connection. Asterisk never closes the socket itself, so the server
closes it when the call's flow is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from ivr.agi.protocol import ENV_TIMEOUT, MAX_LINE, AgiProtocolError, read_environment
from ivr.agi.session import AgiCallSession
from ivr.flow.context import Clock, utc_now
from ivr.flow.engine import run_call
from ivr.flow.record import CallObserver
from ivr.routing.model import Routing
from ivr.session import CallInfo

log = structlog.get_logger("ivr.agi")


class AgiServer:
    def __init__(
        self,
        routing: Callable[[], Routing],
        observer: CallObserver,
        *,
        script: str = "hotline",
        clock: Clock = utc_now,
        clock_for: Callable[[CallInfo], Clock] | None = None,
        sound_prefix: str = "hotline",
        recordings_dir: str = "/var/spool/asterisk/recording",
        timer_scale: float = 1.0,
        env_timeout: float = ENV_TIMEOUT,
    ) -> None:
        self.timer_scale = timer_scale
        self.env_timeout = env_timeout
        self.routing = routing
        self.observer = observer
        self.script = script
        self.clock_for = clock_for or (lambda _info: clock)
        self.sound_prefix = sound_prefix
        self.recordings_dir = recordings_dir
        self.calls: set[asyncio.Task[Any]] = set()
        self.rejected = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> int:
        self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_LINE)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def idle(self) -> None:
        while self.calls:
            await asyncio.gather(*list(self.calls), return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.calls.add(task)
        peer = writer.get_extra_info("peername")
        try:
            env = await read_environment(reader, self.env_timeout)
            script = env.get("agi_network_script", "")
            if script != self.script:
                raise AgiProtocolError(f"unknown script {script!r}")
            info = CallInfo(
                channel_id=env.get("agi_uniqueid", ""),
                caller_number=env.get("agi_callerid", ""),
                caller_name=env.get("agi_calleridname", ""),
                dialed=env.get("agi_extension", ""),
                linked_id=env.get("agi_uniqueid", ""),
            )
            session = AgiCallSession(
                reader,
                writer,
                info,
                sound_prefix=self.sound_prefix,
                recordings_dir=self.recordings_dir,
                timer_scale=self.timer_scale,
            )
            await run_call(session, self.routing(), self.observer, self.clock_for(info))
        except AgiProtocolError as e:
            self.rejected += 1
            log.warning("FastAGI connection dropped", peer=str(peer), reason=str(e))
        except Exception:
            self.rejected += 1
            log.exception("FastAGI connection failed", peer=str(peer))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self.calls.discard(task)
