"""`ivr agi`: a FastAGI server running the same call flow as the ARI application.

For dialplans that run `AGI(agi://host:4573/hotline)`. Each connection is one call and one task;
a bad peer costs only its own connection, and at most ``max_connections`` are served at once.
Asterisk never closes the socket itself, so the server closes it when the call's flow is done.

The environment is checked at the edge: a missing, malformed or already-used ``agi_uniqueid`` is
replaced by a generated id (with a log line), so two calls are never merged into one record and
nothing from the peer reaches a file name unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from ivr.agi.listener import Listener
from ivr.agi.protocol import ENV_TIMEOUT, MAX_LINE, AgiProtocolError, read_environment
from ivr.agi.session import REPLY_TIMEOUT, AgiCallSession
from ivr.asterisk.moh import announced, class_name
from ivr.flow.context import Clock, utc_now
from ivr.flow.engine import run_call
from ivr.flow.record import CallObserver, Identified
from ivr.metrics import DtmfLatency
from ivr.routing.model import Routing
from ivr.session import CallInfo

log = structlog.get_logger("ivr.agi")

MAX_CONNECTIONS = 200
_NODE = re.compile(r"node=([A-Za-z0-9:._@-]{1,64})")
_UNIQUEID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,149}")  # Asterisk's: [system-]epoch.n


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
        reply_timeout: float = REPLY_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.timer_scale = timer_scale
        self.env_timeout = env_timeout
        self.reply_timeout = reply_timeout
        self.routing = routing
        # the announcing classes `ivr asterisk-config` wrote for the routing in force now; a
        # prompt list added by a later reload has none until the config is written again
        self.moh_classes = frozenset(class_name(p) for p in announced(routing()))
        self.observer = observer
        self.script = script
        self.clock_for = clock_for or (lambda _info: clock)
        self.sound_prefix = sound_prefix
        self.recordings_dir = recordings_dir
        self.calls: set[asyncio.Task[Any]] = set()
        self.rejected = 0
        self._channels: set[str] = set()  # the ids of the calls in progress
        self.latency = DtmfLatency()  # ivr_call_setup_seconds, ivr_dtmf_to_request_seconds
        self._listener = Listener(self._handle, max_connections=max_connections, limit=MAX_LINE)

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> int:
        return await self._listener.start(host, port)

    async def stop(self) -> None:
        """Stop taking connections; calls in progress go on (see :meth:`idle`)."""
        await self._listener.stop()

    async def idle(self) -> None:
        while self.calls:
            await asyncio.gather(*list(self.calls), return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.calls.add(task)
        peer = writer.get_extra_info("peername")
        info: CallInfo | None = None
        try:
            env = await read_environment(reader, self.env_timeout)
            script = env.get("agi_network_script", "")
            if script != self.script:
                raise AgiProtocolError(f"unknown script {script!r}")
            info = self._call_info(env)
            self._channels.add(info.channel_id)
            self.latency.call_started(info.channel_id)  # the environment is read: set-up starts
            session = AgiCallSession(
                reader,
                writer,
                info,
                sound_prefix=self.sound_prefix,
                recordings_dir=self.recordings_dir,
                timer_scale=self.timer_scale,
                reply_timeout=self.reply_timeout,
                latency=self.latency,
                moh_classes=self.moh_classes,
            )
            observer = Identified(self.observer, _node(env, peer))
            await run_call(session, self.routing(), observer, self.clock_for(info))
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
            if info is not None:
                self._channels.discard(info.channel_id)
                self.latency.forget(info.channel_id)

    def _call_info(self, env: Mapping[str, str]) -> CallInfo:
        channel = env.get("agi_uniqueid")
        if channel is None or not _UNIQUEID.fullmatch(channel) or channel in self._channels:
            why = "missing" if channel is None else "in use" if channel in self._channels else "bad"
            new = f"agi-{uuid.uuid4().hex}"
            log.warning(
                "FastAGI call with an unusable agi_uniqueid; using a generated id",
                why=why,
                got=(channel or "")[:80],
                channel=new,
            )
            channel = new
        return CallInfo(
            channel_id=channel,
            caller_number=env.get("agi_callerid", ""),
            caller_name=env.get("agi_calleridname", ""),
            dialed=env.get("agi_extension", ""),
            linked_id=channel,
        )


def _node(env: Mapping[str, str], peer: object) -> str:
    """The Asterisk that connected, for the call's key: a ``node=`` AGI argument (the dialplan
    can pass ``${ENTITYID}``), else the peer's address (one Asterisk per address)."""
    for name, value in env.items():
        if name.startswith("agi_arg_") and _NODE.fullmatch(value):
            return value[5:]
    host = peer[0] if isinstance(peer, tuple) and peer else ""
    return f"agi@{host}" if host else ""
