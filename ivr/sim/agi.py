"""The simulator's FastAGI side: Asterisk running `AGI(agi://…/hotline)` for scripted callers.

It connects to the FastAGI server, sends the environment block and answers each command the way
Asterisk 22 does in shared/agi/traces (result codes, endpos, the unsolicited HANGUP line, 511 on
a dead channel). Callers and clerks use the same scripts as the ARI simulator; times are nominal
seconds divided by ``speed``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.asterisk.moh import PREFIX, prompts_of
from ivr.sim.media import recording_wav
from ivr.sim.scripts import (
    CallerScript,
    ClerkKind,
    Clerks,
    ClerkScript,
    Hangup,
    Press,
    Speak,
)

_ids = itertools.count(1)
_ARGS = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


def _args(text: str) -> list[str]:
    return [q.replace('\\"', '"') if q or not u else u for q, u in _ARGS.findall(text)]


@dataclass
class AgiCall:
    script: CallerScript
    channel_id: str
    log: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=lambda: {"HANGUPCAUSE": "0"})
    answered_at: float | None = None  # nominal
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    speech: list[tuple[float, float]] = field(default_factory=list)
    recorded: tuple[float, float] = (0.0, 0.0)  # the latest recording's (start, end), nominal

    def mark(self, trigger: str) -> None:
        self.marks.append(trigger)
        self.log.append(trigger)
        self.changed.set()


class AgiSim:
    def __init__(
        self,
        port: int,
        *,
        speed: float = 1.0,
        clerks: Clerks | None = None,
        prompt_seconds: Callable[[str], float] | None = None,
        host: str = "127.0.0.1",
        recordings_fail: bool = False,
    ) -> None:
        self.recordings_fail = recordings_fail  # like a spool Asterisk cannot write
        self.host, self.port, self.speed = host, port, speed
        self.clerks = clerks or Clerks()
        self.prompt_seconds = prompt_seconds or (lambda _p: 2.0)
        self._t0 = time.monotonic()
        self._epoch = int(time.time()) + 50_000 + next(_ids) * 1000
        self._tasks: set[asyncio.Task[None]] = set()

    def nominal(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def call(self, script: CallerScript) -> AgiCall:
        call = AgiCall(script, f"{self._epoch}.{next(_ids)}")
        task = asyncio.create_task(self._call(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    # --- one call -----------------------------------------------------------------------------

    async def _call(self, call: AgiCall) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        env = {
            "agi_network": "yes",
            "agi_network_script": "hotline",
            "agi_request": f"agi://{self.host}:{self.port}/hotline",
            "agi_channel": f"PJSIP/caller-{next(_ids):08x}",
            "agi_language": "vi",
            "agi_type": "PJSIP",
            "agi_uniqueid": call.channel_id,
            "agi_version": "22.10.1",
            "agi_callerid": call.script.number,
            "agi_calleridname": call.script.name or call.script.number,
            "agi_callingpres": "0",
            "agi_callingani2": "0",
            "agi_callington": "0",
            "agi_callingtns": "0",
            "agi_dnid": call.script.exten,
            "agi_rdnis": "unknown",
            "agi_context": "hotline-agi",
            "agi_extension": call.script.exten,
            "agi_priority": "2",
            "agi_enhanced": "0.0",
            "agi_accountcode": "",
            "agi_threadid": str(140003211175616 + next(_ids)),
        }  # fmt: skip  (the 22 lines of Asterisk 22, in its order)
        writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        runner = asyncio.create_task(self._script(call))
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                for out in await self._command(call, line.decode().strip()):
                    writer.write(out.encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            runner.cancel()
            writer.close()
            if "IVR_CONTINUE" in call.variables:
                call.log.append(f"dialplan:{call.variables['IVR_CONTINUE'].split(',')[0]}")
            if not call.done.done():
                call.done.set_result(None)

    async def _script(self, call: AgiCall) -> None:
        cursor = 0
        for action in call.script.actions:
            if action.on is not None:
                while action.on not in call.marks[cursor:]:
                    call.changed.clear()
                    await call.changed.wait()
                cursor += call.marks[cursor:].index(action.on) + 1
            await self.sleep(action.after)
            if call.hung_up.is_set():
                return
            if isinstance(action, Press):
                for i, d in enumerate(action.digits):
                    if i:
                        await self.sleep(0.4)
                    call.log.append(f"dtmf:{d}")
                    call.digits.put_nowait(d)
            elif isinstance(action, Speak):
                now = self.nominal()
                call.speech.append((now, now + action.seconds))
                call.changed.set()
                await self.sleep(action.seconds)
            elif isinstance(action, Hangup):
                call.log.append("hangup:caller")
                call.hung_up.set()
                return

    async def _wait(self, call: AgiCall, seconds: float, *, digits: bool) -> str | None:
        """Until a digit (when asked), the caller hangs up ("-"), or the time is up (None)."""
        waits: set[asyncio.Future[object]] = {asyncio.ensure_future(call.hung_up.wait())}
        if digits:
            waits.add(asyncio.ensure_future(call.digits.get()))
        done, pending = await asyncio.wait(
            waits, timeout=max(0.0, seconds) / self.speed, return_when=asyncio.FIRST_COMPLETED
        )
        for p in pending:
            p.cancel()
        for d in done:
            result = d.result()
            if isinstance(result, str):
                return result
        return "-" if call.hung_up.is_set() else None

    async def _command(self, call: AgiCall, line: str) -> list[str]:
        verb = line.split(" ", 2)
        name = " ".join(verb[:2]).upper()
        args = _args(line.split(" ", 2)[2]) if len(verb) > 2 else []
        if name == "GET VARIABLE":
            if args and args[0] == "EPOCH":
                return [f"200 result=1 ({int(self.nominal())})"]
            value = call.variables.get(args[0]) if args else None
            return ["200 result=0" if value is None else f"200 result=1 ({value})"]
        if name == "GET FULL":  # GET FULL VARIABLE <expression>
            value = self._expand(call, args[1] if len(args) > 1 else "")
            return ["200 result=0" if value is None else f"200 result=1 ({value})"]
        if verb[0].upper() == "VERBOSE":  # answers on a dead channel too
            return ["200 result=1"]
        if call.hung_up.is_set():
            return [DEAD]
        if name == "SET VARIABLE":
            call.variables[args[0]] = args[1] if len(args) > 1 else ""
            return ["200 result=1"]
        if verb[0].upper() == "ANSWER":
            if call.answered_at is None:
                call.answered_at = self.nominal()
            call.mark("answer")
            return ["200 result=0"]
        if verb[0].upper() == "HANGUP":
            call.log.append("hangup:app")
            call.hung_up.set()
            return ["200 result=1", "HANGUP"]
        if name == "STREAM FILE":
            return await self._stream(call, args[0], args[1] if len(args) > 1 else "")
        if name == "WAIT FOR":  # WAIT FOR DIGIT <ms>
            got = await self._wait(call, int(args[1]) / 1000, digits=True)
            if got == "-":
                return ["200 result=-1", "HANGUP"]
            return [f"200 result={ord(got) if got else 0}"]
        if name == "GET DATA":  # GET DATA <file> [timeout ms] [max digits]
            return await self._get_data(call, args)
        if name == "CHANNEL STATUS":
            return ["200 result=6"]  # Up
        if name == "EXEC DIAL":
            return await self._dial(call, args[0] if args else "")
        if name == "RECORD FILE":
            return await self._record(call, args)
        return ["510 Invalid or unknown command"]

    async def _stream(self, call: AgiCall, file: str, escape: str) -> list[str]:
        prompt = file.rsplit("/", 1)[-1]
        call.heard.append(prompt)
        call.mark(f"prompt:{prompt}")
        start, length = self.nominal(), self.prompt_seconds(f"sound:{file}")
        while True:
            got = await self._wait(call, start + length - self.nominal(), digits=True)
            endpos = int((self.nominal() - start) * 8000)
            if got == "-":
                return [f"200 result=-1 endpos={endpos}", "HANGUP"]
            if got is None:
                return [f"200 result=0 endpos={int(length * 8000)}"]
            if got in escape:
                return [f"200 result={ord(got)} endpos={endpos}"]

    def _expand(self, call: AgiCall, expression: str) -> str | None:
        """``${NAME}`` or ``${CHANNEL(state)}``, as GET FULL VARIABLE evaluates them."""
        inner = expression.removeprefix("${").removesuffix("}")
        if inner == "CHANNEL(state)":
            return "Up" if call.answered_at is not None else "Ring"
        return call.variables.get(inner)

    async def _get_data(self, call: AgiCall, args: list[str]) -> list[str]:
        """The prompt plays until a key; then each further key must come within the timeout
        (Asterisk's default 5 s); it stops at ``max`` keys or ``#``. Result: the keys."""
        timeout = int(args[1]) / 1000 if len(args) > 1 and args[1].isdigit() else 5.0
        most = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        got = await self._stream(call, args[0], "0123456789*#")
        if got[-1] == "HANGUP":
            return ["200 result=-1", "HANGUP"]
        first = int(got[0].split("result=")[1].split()[0])
        keys = chr(first) if first > 0 else ""
        while len(keys) < most and not keys.endswith("#"):
            key = await self._wait(call, timeout, digits=True)
            if key == "-":
                return ["200 result=-1", "HANGUP"]
            if key is None:
                return [f"200 result={keys} (timeout)"]
            keys += key
        return [f"200 result={keys.removesuffix('#')}"]

    async def _dial(self, call: AgiCall, data: str) -> list[str]:
        targets, _, rest = data.partition(",")
        timeout = float(([*rest.split(","), ""])[0] or 30)
        endpoints = [t for t in targets.split("&") if t]
        scripts = {e: self.clerks.for_endpoint(e) for e in endpoints}
        music = re.search(r"m\(([^)]*)\)", rest.partition(",")[2])  # Dial's third field
        said = prompts_of(music.group(1)) if music else None
        if not said:
            call.mark("ringing")  # what the caller hears: ringback (or music) at once
        if music:  # the caller hears this music-on-hold class until a desk answers
            call.mark(f"moh:{music.group(1)}")
        announcing = asyncio.create_task(self._announce(call, said)) if said else None
        try:
            return await self._ring(call, data, timeout, endpoints, scripts)
        finally:
            if announcing is not None:
                announcing.cancel()

    async def _announce(self, call: AgiCall, prompts: list[str]) -> None:
        """An announcing class (ivr.asterisk.moh): its prompts, one after the other, then its
        ringback, until a desk answers."""
        since = len(call.marks)
        for prompt in prompts:
            if "bridged" in call.marks[since:]:
                return
            call.heard.append(prompt)
            call.mark(f"prompt:{prompt}")
            await self.sleep(self.prompt_seconds(f"sound:{PREFIX}/{prompt}"))
        if "bridged" not in call.marks[since:]:
            call.mark("ringing")  # the class's ringback, after its prompts

    async def _ring(
        self,
        call: AgiCall,
        data: str,
        timeout: float,
        endpoints: list[str],
        scripts: dict[str, ClerkScript],
    ) -> list[str]:
        start = self.nominal()
        reachable = {e: c for e, c in scripts.items() if c.kind is not ClerkKind.UNREACHABLE}
        for e in reachable:
            call.log.append(f"ringing:{e}")
        answering = sorted(
            (c.ring_seconds, e)
            for e, c in reachable.items()
            if c.kind is ClerkKind.ANSWER and c.ring_seconds < timeout
        )
        if not reachable:
            status, wait = "CHANUNAVAIL", 0.0
        elif answering:
            status, wait = "ANSWER", answering[0][0]
        elif all(c.kind is ClerkKind.BUSY for c in reachable.values()):
            status, wait = "BUSY", min(c.ring_seconds for c in reachable.values())
        else:
            status, wait = "NOANSWER", timeout
        if await self._wait(call, wait, digits=False) == "-":
            call.variables["DIALSTATUS"] = "CANCEL"
            return ["200 result=-1", "HANGUP"]
        call.variables.update(DIALSTATUS=status, DIALEDTIME=str(int(self.nominal() - start)))
        if status != "ANSWER":
            return ["200 result=0"]
        endpoint = answering[0][1]
        call.variables["DIALEDPEERNUMBER"] = endpoint.partition("/")[2]
        if "U(hotline-answered)" in data:  # the answer subroutine of dialplan/hotline.conf
            call.variables["IVR_ANSWERED_AT"] = str(int(self.nominal()))
        call.mark("bridged")
        call.log.append(f"talking:{endpoint}")
        answered = self.nominal()
        talk = reachable[endpoint].talk_seconds
        ended = await self._wait(call, talk if talk is not None else 1e9, digits=False)
        # app_dial counts ANSWEREDTIME from the *caller's* answer (agi-dial-answered: the desk
        # rang 2 s and talked 4 s, ANSWEREDTIME 6), not from the desk's
        since = call.answered_at if call.answered_at is not None else answered
        call.variables["ANSWEREDTIME"] = str(round(self.nominal() - since))
        if ended == "-":
            return ["200 result=-1", "HANGUP"]
        call.log.append("clerk-hung-up")
        return ["200 result=-1"]  # the called party hung up; the caller is still there

    async def _record(self, call: AgiCall, args: list[str]) -> list[str]:
        lines = await self._record_until(call, args)
        if not self.recordings_fail:
            self._write(call, args[0], args[1])
        return lines

    def _write(self, call: AgiCall, path: str, fmt: str) -> None:
        """Asterisk writes the file; on our disk only when its folder exists here (shared)."""
        file = Path(f"{path}.{fmt}")
        start, end = call.recorded
        if file.parent.is_dir():
            file.write_bytes(recording_wav(start, end, call.speech))

    async def _record_until(self, call: AgiCall, args: list[str]) -> list[str]:
        escape, max_ms = args[2], int(args[3])
        silence = next((float(a[2:]) for a in args if a.startswith("s=")), 0.0)
        call.mark("record")
        start = self.nominal()
        call.recorded = (start, start)
        if self.recordings_fail:  # res_agi: the file could not be opened
            call.log.append("record-failed")
            return ["200 result=-1 (writefile)"]

        def talked() -> float:
            now = self.nominal()
            return sum(max(0.0, min(e, now) - max(s, start)) for s, e in call.speech)

        while True:
            quiet_from = max([start, *(e for _, e in call.speech)])
            deadline = min(start + max_ms / 1000, quiet_from + silence if silence else 1e18)
            call.changed.clear()
            got = await self._wait(call, deadline - self.nominal(), digits=True)
            call.recorded = (start, self.nominal())
            endpos = int((self.nominal() - start) * 8000)  # all that was written, silence too
            if got == "-":
                call.log.append(f"recorded:{int(talked())}s")
                return [f"200 result=-1 endpos={endpos}", "HANGUP"]
            if got is None:
                new_quiet = max([start, *(e for _, e in call.speech)])
                if new_quiet != quiet_from and self.nominal() < start + max_ms / 1000:
                    continue  # the caller spoke meanwhile: the silence starts again
                call.log.append(f"recorded:{int(talked())}s")
                if silence and self.nominal() >= quiet_from + silence:
                    # ended on silence: res_agi rewinds the file by s= minus one second, so one
                    # second of the silence stays (endpos=8160 of a quiet line in
                    # agi-full-session)
                    kept = min(self.nominal(), quiet_from + 1.0)
                    call.recorded = (start, kept)
                    endpos = int((kept - start) * 8000)
                left = int(max(0.0, start + max_ms / 1000 - self.nominal()) * 1000)
                return [f"200 result={left} (timeout) endpos={endpos}"]
            if got in escape:
                call.log.append(f"recorded:{int(talked())}s")
                return [f"200 result={ord(got)} endpos={endpos}"]
