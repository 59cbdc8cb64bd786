"""The floor under a call's CPU: the same call made by the least code that can make it.

    .venv/bin/python -m benchmarks.floor --calls 300 --rate 20 [--runs 3]

A minimal ARI app here does what the controller does in ``benchmarks.calls``, with the same
messages: it answers (unless the dialplan did, as on the real Asterisk), plays the greeting and
the menu, takes the key, rings branch 4's two desks while "please hold" plays, bridges the first
that answers, asks the survey question twice (nobody answers it) and says goodbye: 16 requests
and 24 events a call on the simulator. It shares the
controller's transport (ivr.ari.http for REST, aiohttp's websocket for the events) and one
coroutine per call, and has nothing else: no flow engine, routing, call records, logs, metrics,
watchdog, retries or event checks. It is not a product (a lost event leaves its call waiting);
it measures what that traffic costs this machine's Python and kernel. Each run makes the same
calls twice on fresh simulators, the minimal app then the controller as ``benchmarks.calls``
runs it (without the store), and the medians of the runs are printed side by side.

Also printed: what one message's wake-up costs here. A loopback TCP round trip between two
processes, back to back and then 2 ms apart (each side sleeping in between, as a hotline's
controller does between the messages of calls a few per second): the second is what most of a
call's messages cost at a low rate.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import resource
import signal
import socket
import statistics
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from benchmarks.calls import DEFAULT_LOOP, Stalled, run_once, sim_process
from benchmarks.real_load import machine
from ivr import logs
from ivr.ari.event_types import UNWANTED
from ivr.ari.http import HttpClient
from ivr.cli import loop
from ivr.config import EVENT_LOOPS

APP = "hotline"
DESKS = ("PJSIP/cchc-4a", "PJSIP/cchc-4b")  # branch 4 in routing/hotline.yaml, rung together
SURVEY_TIMEOUT = 5.0  # the routing's survey node: 5 s for a key, asked twice
STALL_SECONDS = 60.0
_LEG_GONE = frozenset({"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"})


class Gone(Exception):
    """The caller hung up, or what a request named is gone (ARI answered 404)."""


@dataclass
class Call:
    id: str
    number: str  # the caller's: the desk sees it (and real_load's capture links by it)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    seq: int = 0
    legs: set[str] = field(default_factory=set)  # dialled, not known to have ended
    bridge: str = ""
    up: bool = False  # answered before Stasis() (dialplan/hotline.conf): no answer to ask for

    def new_id(self, kind: str) -> str:
        self.seq += 1
        return f"{self.id}-{kind}{self.seq}"


class MinimalApp:
    """The benchmark's call and nothing more, over the controller's transport."""

    def __init__(self, url: str, user: str, password: str, app: str = APP) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.http = HttpClient(parts.hostname, parts.port, self.headers)
        self.app = app
        self.base = url.rstrip("/")
        self.path = parts.path.rstrip("/")
        self.routes: dict[str, Call] = {}
        self.ended = 0
        self.failed = 0  # calls that met an error (a request refused): hung up at once
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(
        self, method: str, path: str, params: dict[str, str | int] | None = None, body: Any = None
    ) -> None:
        query = f"?{urlencode(params)}" if params else ""
        data = b"" if body is None else json.dumps(body).encode()
        kind = "" if body is None else "application/json"
        r = await self.http.request(method, f"{self.path}{path}{query}", data, kind, 10.0)
        if r.status == 404:
            raise Gone  # the caller hung up meanwhile (or the leg, or the prompt, had ended)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status}")

    async def run(self) -> None:
        ws_url = self.base.replace("http", "ws", 1) + "/events?"
        ws_url += urlencode({"app": self.app, "subscribeAll": "false"})
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url, headers=self.headers, heartbeat=5.0) as ws,
        ):
            disallowed = [{"type": t} for t in UNWANTED]  # the controller's filter
            body = {"allowed": [], "disallowed": disallowed}
            await self.request("PUT", f"/applications/{self.app}/eventFilter", body=body)
            self.connected.set()
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                self.on_event(json.loads(msg.data))

    def on_event(self, ev: dict[str, Any]) -> None:
        channel = ev.get("channel")
        if ev["type"] == "StasisStart" and channel is not None and not ev.get("args"):
            new = Call(
                channel["id"],
                str((channel.get("caller") or {}).get("number", "")),
                up=channel.get("state") == "Up",
            )
            self.routes[new.id] = new
            self._spawn(self.serve(new))
            return
        if channel is not None:
            target = channel["id"]
        elif "playback" in ev:
            target = ev["playback"].get("target_uri", "").removeprefix("channel:")
        else:
            return
        call = self.routes.get(target)
        if call is not None:
            call.queue.put_nowait(ev)

    async def next_event(self, call: Call, timeout: float | None = None) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                ev = await call.queue.get()
        except TimeoutError:
            return None
        if ev["type"] in _LEG_GONE and ev["channel"]["id"] == call.id:
            raise Gone
        return ev

    async def play(self, call: Call, prompts: list[str], *, cut: bool = False) -> None:
        playback = call.new_id("pb")
        media = ",".join(f"sound:hotline/{p}" for p in prompts)
        path = f"/channels/{quote(call.id)}/play/{quote(playback)}"
        await self.request("POST", path, {"media": media, "lang": "vi"})
        while True:
            ev = await self.next_event(call)
            assert ev is not None
            if ev["type"] == "PlaybackFinished" and ev["playback"]["id"] == playback:
                return
            if cut and ev["type"] == "ChannelDtmfReceived":  # stopped behind, as the controller
                self._spawn(self._quietly("DELETE", f"/playbacks/{quote(playback)}"))
                return

    async def _quietly(self, method: str, path: str) -> None:
        with contextlib.suppress(Exception):  # ended already, or the caller gone
            await self.request(method, path)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def serve(self, call: Call) -> None:
        try:
            await self._serve(call)
        except Gone:
            pass
        except Exception:
            self.failed += 1
            await self._quietly("DELETE", f"/channels/{quote(call.id)}")
        finally:  # nothing left behind: a desk still bridged or ringing, the bridge
            for leg in call.legs:
                await self._quietly("DELETE", f"/channels/{quote(leg)}")
            if call.bridge:
                await self._quietly("DELETE", f"/bridges/{quote(call.bridge)}")
            for key in [k for k, c in self.routes.items() if c is call]:
                del self.routes[key]
            self.ended += 1

    async def _serve(self, call: Call) -> None:
        if not call.up:
            await self.request("POST", f"/channels/{quote(call.id)}/answer")
        await self.play(call, ["greeting"])
        await self.play(call, ["main-menu"], cut=True)
        legs = [call.new_id("leg") for _ in DESKS]
        for leg in legs:
            self.routes[leg] = call
            call.legs.add(leg)
        await asyncio.gather(
            *(
                self.request(
                    "POST",
                    "/channels",
                    {
                        "endpoint": desk,
                        "app": self.app,
                        "appArgs": f"dialed,{call.id}",
                        "callerId": f'"CCHC" <{call.number}>',
                        "timeout": 20,
                        "channelId": leg,
                        "originator": call.id,
                    },
                )
                for desk, leg in zip(DESKS, legs, strict=True)
            )
        )
        hold = call.new_id("pb")
        media = "sound:hotline/please-hold,sound:hotline/branch-4"
        path = f"/channels/{quote(call.id)}/play/{quote(hold)}"
        await self.request("POST", path, {"media": media, "lang": "vi"})
        answered = ""
        while not answered:
            ev = await self.next_event(call)
            if ev is not None and ev["type"] == "StasisStart" and ev["channel"]["id"] in legs:
                answered = ev["channel"]["id"]
        with contextlib.suppress(Gone):  # it may have ended by itself
            await self.request("DELETE", f"/playbacks/{quote(hold)}")
        for leg in legs:
            if leg != answered:
                call.legs.discard(leg)
                with contextlib.suppress(Gone):  # it may have ended by itself
                    await self.request("DELETE", f"/channels/{quote(leg)}")
        call.bridge = call.new_id("br")
        params: dict[str, str | int] = {"bridgeId": call.bridge, "name": f"call-{call.id}"}
        await self.request("POST", "/bridges", params)
        path = f"/bridges/{quote(call.bridge)}/addChannel"
        await self.request("POST", path, {"channel": f"{call.id},{answered}"})
        while True:
            ev = await self.next_event(call)
            if ev is not None and ev["type"] in _LEG_GONE and ev["channel"]["id"] == answered:
                call.legs.discard(answered)
                break
        bridge, call.bridge = call.bridge, ""
        await self.request("DELETE", f"/bridges/{quote(bridge)}")
        for _ in range(2):
            await self.play(call, ["survey-question"])
            await self.next_event(call, SURVEY_TIMEOUT)
        await self.play(call, ["goodbye"])
        await self.request("DELETE", f"/channels/{quote(call.id)}")


async def _measure(url: str, calls: int, conn: Connection) -> dict[str, Any]:
    app = MinimalApp(url, "ivr", "secret")
    task = asyncio.create_task(app.run())
    await app.connected.wait()
    cpu0, times0 = time.process_time(), os.times()
    seen, last = 0, time.perf_counter()
    while app.ended < calls:
        await asyncio.sleep(0.05)
        if app.ended != seen:
            seen, last = app.ended, time.perf_counter()
        elif time.perf_counter() - last > STALL_SECONDS:
            raise Stalled(f"{calls - app.ended} calls never ended in the minimal app")
    cpu, times = time.process_time() - cpu0, os.times()
    sim_stats = conn.recv()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    app.http.close()
    return {
        "cpu_ms_per_call": 1000 * cpu / calls,
        "user_ms_per_call": 1000 * (times.user - times0.user) / calls,
        "system_ms_per_call": 1000 * (times.system - times0.system) / calls,
        "requests_per_call": sim_stats["requests"] / calls,
        "events_per_call": sim_stats["events_sent"] / calls,
    }


def floor_once(calls: int, rate: float, event_loop: str) -> dict[str, Any]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=sim_process, args=(child, calls, rate))
    proc.start()
    try:
        url = parent.recv()
        return loop.run(_measure(url, calls, parent), event_loop)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


def round_trip_us(count: int, gap: float) -> tuple[float, float]:
    """CPU µs per loopback TCP round trip, (this side, the echoing child), ``gap`` s apart."""
    server = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(server.getsockname())
    b, _ = server.accept()
    server.close()
    for s in (a, b):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:  # the echo: no Python objects beyond the buffer, exits with the connection
        a.close()
        while data := b.recv(4096):
            b.sendall(data)
        os._exit(0)
    b.close()
    message = b"x" * 300  # about an ARI event's size
    cpu0 = time.process_time()
    for _ in range(count):
        a.sendall(message)
        a.recv(4096)
        if gap:
            time.sleep(gap)
    cpu = time.process_time() - cpu0
    a.close()
    os.waitpid(pid, 0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return 1e6 * cpu / count, 1e6 * child / count


ROWS = (
    ("CPU ms per call", "cpu_ms_per_call"),
    ("· user", "user_ms_per_call"),
    ("· kernel", "system_ms_per_call"),
    ("requests per call", "requests_per_call"),
    ("events per call", "events_per_call"),
)


async def serve(url: str, user: str, password: str, app_name: str) -> None:
    """The minimal app on a real Asterisk (benchmarks.real_load --floor) until SIGTERM."""
    app = MinimalApp(url, user, password, app_name)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(app.run())
    await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    print(f"minimal app: {app.ended} calls ended, {app.failed} met an error", flush=True)
    if task.done():
        task.result()  # the websocket failed: say why
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    app.http.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--serve", metavar="ARI_URL", help="serve a real Asterisk (for real_load)")
    ap.add_argument("--ari-user", default="ivr")
    ap.add_argument("--ari-password", default="secret")
    ap.add_argument("--app", default=APP)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rate", type=float, default=20.0, help="calls placed per second")
    ap.add_argument("--runs", type=int, default=3, help="runs; the medians are reported")
    ap.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=DEFAULT_LOOP,
        help=f"both sides' loop (default: as `ivr run` ships, {DEFAULT_LOOP})",
    )
    args = ap.parse_args()
    if args.calls < 1 or args.runs < 1 or args.rate <= 0:
        ap.error("--calls and --runs must be 1 or more, --rate more than 0")
    logs.configure(level="WARNING")
    if args.serve:
        loop.run(serve(args.serve, args.ari_user, args.ari_password, args.app), args.event_loop)
        return
    floors: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    for n in range(1, args.runs + 1):
        try:
            floors.append(floor_once(args.calls, args.rate, args.event_loop))
            r = run_once(args.calls, args.rate, False, None, args.event_loop)
        except Stalled as e:
            raise SystemExit(f"run {n}: stuck: {e}") from None
        ours.append(
            {
                **{k: r[k] for k in ("cpu_ms_per_call", "user_ms_per_call", "system_ms_per_call")},
                "requests_per_call": r["requests"] / args.calls,
                "events_per_call": r["events_sent"] / args.calls,
            }
        )
        print(
            f"--- run {n} of {args.runs}: minimal app {floors[-1]['cpu_ms_per_call']:.2f}, "
            f"ivr {ours[-1]['cpu_ms_per_call']:.2f} ms CPU per call"
        )
    back_to_back = round_trip_us(20_000, 0.0)
    apart = round_trip_us(2_000, 0.002)
    m = machine()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{m['cores']} cores, {m['cpu']}; Python {m['python']}; {args.calls} calls at "
        f"{args.rate:g}/s on the simulator; event loop {args.event_loop}; median of {args.runs} "
        f"runs; load average {load}"
    )
    print(f"| {'':20} | {'minimal app':>12} | {'ivr':>12} |")
    print(f"|{'-' * 22}|{'-' * 14}|{'-' * 14}|")
    for label, key in ROWS:
        low = statistics.median(r[key] for r in floors)
        high = statistics.median(r[key] for r in ours)
        print(f"| {label:20} | {low:12.2f} | {high:12.2f} |")
    print(
        "loopback TCP round trip, CPU µs (this side + the echo's): back to back "
        f"{back_to_back[0]:.1f} + {back_to_back[1]:.1f}; 2 ms apart {apart[0]:.1f} + "
        f"{apart[1]:.1f}"
    )


if __name__ == "__main__":
    main()
