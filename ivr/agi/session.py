"""The FastAGI implementation of :class:`ivr.session.CallSession`.

One command at a time; each reply may be preceded by Asterisk's unsolicited "HANGUP" line. A
reply of -1 or 511 ("not permitted on a dead channel") means the caller is gone, and so does a
peer that closes the connection mid-command.

Each reply is awaited for the command's own duration (the digit wait, the recording's limit, the
ringing and the conversation of a Dial) plus ``reply_timeout``: a peer that stops answering costs
its connection that long, no more. After such a silence the session sends nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from ivr.agi.protocol import (
    AgiPeerGone,
    AgiProtocolError,
    Reply,
    command_line,
    parse_reply,
    read_line,
)
from ivr.asterisk.moh import class_name, uses_class
from ivr.flow.callerid import clerk_caller_id
from ivr.metrics import DtmfLatency
from ivr.session import (
    CallerHangup,
    CallInfo,
    DialRequest,
    DialResult,
    DialStatus,
    HangupWhileRinging,
    RecordRequest,
    RecordResult,
    SessionError,
)

log = structlog.get_logger("ivr.agi")

REPLY_TIMEOUT = 30.0  # seconds a peer may take beyond the command's own duration
TALK_LIMIT = 4 * 3600.0  # an answered Dial lasts the whole conversation
PROMPT_LIMIT = 300.0  # the longest prompt an admin could reasonably record
DIGITS = "0123456789*#"
KEYS = DIGITS + "ABCD"  # what Asterisk may report as pressed (RFC 4733 has A to D too)
_DIAL_STATUS = {
    "ANSWER": DialStatus.ANSWERED,
    "BUSY": DialStatus.BUSY,
    "NOANSWER": DialStatus.NO_ANSWER,
    "CHANUNAVAIL": DialStatus.UNREACHABLE,
    "CONGESTION": DialStatus.UNREACHABLE,
}


class AgiCallSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: CallInfo,
        *,
        sound_prefix: str = "hotline",
        recordings_dir: str = "/var/spool/asterisk/recording",
        timer_scale: float = 1.0,
        reply_timeout: float = REPLY_TIMEOUT,
        latency: DtmfLatency | None = None,
        moh_classes: frozenset[str] | None = None,
    ) -> None:
        self.latency = latency  # set-up and key-press latencies, as over ARI (ivr.metrics)
        # the announcing classes Asterisk was configured with (those of the routing `ivr agi`
        # started with); None: every one is taken to exist
        self.moh_classes = moh_classes
        self.timer_scale = timer_scale  # as in the ARI session: <1 against a fast simulator
        self.reply_timeout = reply_timeout
        self.reader = reader
        self.writer = writer
        self._info = info
        self.sound_prefix = sound_prefix
        self.recordings_dir = recordings_dir
        self._digits = ""
        self._gone = False
        self._ended = False
        self._vanished = False  # the peer closed the connection
        self._silent: str | None = None  # why the peer is no longer listened to

    @property
    def info(self) -> CallInfo:
        return self._info

    async def command(self, verb: str, *args: str, lasts: float = 0.0) -> Reply:
        """Send one command and read its reply; ``lasts``: its own nominal duration, if any."""
        if self._vanished:
            raise CallerHangup()
        if self._silent is not None:
            raise AgiProtocolError(self._silent)
        text = command_line(verb, *args)
        bound = lasts * self.timer_scale + self.reply_timeout
        try:
            return await self._exchange(text, bound)
        except (AgiPeerGone, ConnectionError) as e:
            self._vanished = self._gone = True
            log.warning("FastAGI peer closed the connection mid-command", command=verb, why=str(e))
            raise CallerHangup() from None
        except TimeoutError:
            self._silent = f"no reply to {verb} within {bound:g} s"
            raise AgiProtocolError(self._silent) from None
        except AgiProtocolError as e:  # garbage: the replies are out of step from here on
            self._silent = str(e)
            raise

    async def _exchange(self, text: str, bound: float) -> Reply:
        if self.latency is not None:
            self.latency.sent(self._info.channel_id)
        self.writer.write(text.encode() + b"\n")
        async with asyncio.timeout(bound):
            await self.writer.drain()
            while True:
                line = await read_line(self.reader, None)
                if line == "HANGUP":
                    self._gone = True
                    continue
                reply = parse_reply(line)
                if reply.code == 520:  # usage text follows until "520 End of proper usage."
                    while not line.startswith("520 "):
                        line = await read_line(self.reader, None)
                    raise SessionError(f"Asterisk refused {text!r}")
                if reply.code == 511:
                    self._gone = True
                    raise CallerHangup()
                return reply

    async def _live(self, verb: str, *args: str, lasts: float = 0.0) -> Reply:
        """A command that only makes sense on a live channel."""
        if self._gone or self._ended:
            raise CallerHangup()
        reply = await self.command(verb, *args, lasts=lasts)
        if reply.result == -1:
            self._gone = True
            raise CallerHangup()
        return reply

    def caller_gone(self) -> bool:
        """Asterisk said HANGUP (it may say so between any two replies)."""
        return self._gone

    async def variable(self, name: str) -> str:
        reply = await self.command("GET VARIABLE", name)
        return reply.data if reply.result == 1 else ""

    # --- CallSession --------------------------------------------------------------------------

    async def answer(self) -> None:
        await self._live("ANSWER")
        await self._live("SET VARIABLE", "CHANNEL(language)", "vi")

    async def play(self, prompts: Sequence[str], *, interruptible: bool = True) -> None:
        for prompt in prompts:
            if interruptible and self._digits:
                return
            escape = DIGITS if interruptible else ""
            file = f"{self.sound_prefix}/{prompt}"
            reply = await self._live("STREAM FILE", file, escape, lasts=PROMPT_LIMIT)
            if reply.result > 0:
                self._digits += self._key(reply)

    async def read_digits(
        self,
        max_digits: int,
        first_timeout: float,
        inter_digit_timeout: float,
        terminators: str = "#",
    ) -> str:
        got = ""
        timeout = first_timeout
        while len(got) < max_digits:
            if self._digits:
                digit, self._digits = self._digits[0], self._digits[1:]
            else:
                ms = int(timeout * 1000)
                reply = await self._live("WAIT FOR DIGIT", str(ms), lasts=timeout)
                if reply.result == 0:
                    return got
                digit = self._key(reply)
            if digit in terminators:
                return got
            got += digit
            timeout = inter_digit_timeout
        return got

    def _key(self, reply: Reply) -> str:
        key = chr(reply.result) if 0 < reply.result < 0x80 else ""
        if key and key in KEYS:
            if self.latency is not None:  # the reply came as the key was pressed
                self.latency.dtmf(self._info.channel_id)
            return key
        self._silent = f"not a key: {reply.raw[:60]!r}"
        raise AgiProtocolError(self._silent)

    def flush_digits(self) -> None:
        self._digits = ""

    async def dial(self, request: DialRequest) -> DialResult:
        caller_id = clerk_caller_id(request.caller_id_name, request.caller_id_number)
        for variable, value in caller_id.variables:
            await self._live("SET VARIABLE", variable, value)
        options = "U(hotline-answered)" + await self._entertainment(request)
        target = "&".join(request.endpoints)
        started = time.monotonic()
        if self._gone or self._ended:
            raise CallerHangup()
        data = f"{target},{int(request.ring_seconds)},{options}"
        await self.command("EXEC Dial", data, lasts=request.ring_seconds + TALK_LIMIT)
        status_text = await self.variable("DIALSTATUS")
        waited = (time.monotonic() - started) / self.timer_scale
        if status_text == "CANCEL" or (self.caller_gone() and status_text != "ANSWER"):
            self._gone = True
            raise HangupWhileRinging(waited)
        status = _DIAL_STATUS.get(status_text, DialStatus.UNREACHABLE)
        if status is not DialStatus.ANSWERED:
            failed: dict[str, DialStatus] = dict.fromkeys(request.endpoints, status)
            return DialResult(status, None, waited, 0.0, None, failed)
        talk = await self._talk_seconds()
        peer = await self.variable("DIALEDPEERNUMBER")
        endpoint = next((e for e in request.endpoints if e.endswith("/" + peer)), peer or None)
        ended_by = "caller" if self.caller_gone() else "callee"
        per = {
            e: (DialStatus.ANSWERED if e == endpoint else DialStatus.NO_ANSWER)
            for e in request.endpoints
        }
        return DialResult(
            DialStatus.ANSWERED, endpoint, max(0.0, waited - talk), talk, ended_by, per
        )

    async def _entertainment(self, request: DialRequest) -> str:
        """What the caller hears while the desks ring, as Dial options. Dial cannot play a file
        then, but its m() plays a music-on-hold class from the moment the desks are called: the
        class of ivr.asterisk.moh says the announcement, then ringback. With a node's own music
        class, the announcement is played before the Dial (README)."""
        if request.announce and uses_class("while_ringing", request.music, request.announce):
            name = class_name(request.announce)
            if self.moh_classes is None or name in self.moh_classes:
                return f"m({name})"
            # a list the routing gained since: Asterisk has no class for it (silence while the
            # desks ring), so it is said before the Dial until asterisk-config is run again
            log.warning("no music-on-hold class for these prompts yet", moh_class=name)
        if request.announce:
            await self.play(request.announce, interruptible=False)
        if request.music != "ringback":
            return f"m({request.music.removeprefix('moh:')})"
        return ""  # Dial passes the desks' ringing on: the tone zone's ringback

    async def _alive(self) -> bool:
        try:
            reply = await self.command("CHANNEL STATUS")
        except CallerHangup:
            return False
        return reply.result > 0 and not self.caller_gone()

    async def _talk_seconds(self) -> float:
        answered_at = await self.variable("IVR_ANSWERED_AT")
        now = await self.variable("EPOCH")
        try:
            return max(0.0, float(now) - float(answered_at))
        except ValueError:  # a dialplan without [hotline-answered]
            return 0.0

    async def record(self, request: RecordRequest) -> RecordResult:
        path = f"{self.recordings_dir}/{request.name}"
        beep = ["BEEP"] if request.beep else []
        args = [path, "wav", request.terminate_on, str(request.max_seconds * 1000), "0", *beep]
        args.append(f"s={request.max_silence_seconds}")
        if self._gone or self._ended:
            raise CallerHangup()
        reply = await self.command("RECORD FILE", *args, lasts=request.max_seconds + 2.0)
        # -1 is a hang-up *or* a failed recording ("(writefile)": the file could not be made,
        # "(waitfor)": no audio from the channel): ask the channel which
        hung_up = self.caller_gone() or (reply.result == -1 and not await self._alive())
        self._gone = self._gone or hung_up
        if reply.result == -1 and not hung_up:
            why = reply.data or "?"
            log.error("recording failed", recording=path, why=why)
            raise SessionError(f"RECORD FILE {path} failed: {why}")
        samples = reply.endpos or 0
        spoken = samples
        if reply.data == "timeout" and reply.result > 0 and request.max_silence_seconds:
            # ended on silence (time was left): res_agi rewinds the file by s= minus one second,
            # so its last second is silence (endpos 8160 for a caller who never spoke, in
            # shared/agi/traces/agi-full-session); ARI's RecordingFinished does not count it
            spoken = max(0, samples - 8000)
        data = _read_local(Path(f"{path}.wav"))
        return RecordResult(
            name=request.name,
            duration_seconds=float(spoken // 8000),
            size_bytes=len(data) if data is not None else 44 + 2 * samples,
            sha256=hashlib.sha256(data).hexdigest() if data is not None else "",
            location=f"{path}.wav",
            caller_hung_up=hung_up,
            audio=data,
        )

    async def set_variable(self, name: str, value: str) -> None:
        await self._live("SET VARIABLE", name, value)

    async def hangup(self, cause: str = "normal") -> None:
        if self._gone or self._ended or self._silent is not None:
            return  # a silent peer is not asked again: closing the socket ends the AGI
        self._ended = True
        with contextlib.suppress(CallerHangup):
            await self.command("HANGUP")

    async def continue_in_dialplan(
        self, context: str | None = None, extension: str | None = None, priority: int | None = None
    ) -> None:
        """Leave the AGI; the dialplan goes to IVR_CONTINUE when set (dialplan/hotline.conf)."""
        if self._gone or self._ended:
            raise CallerHangup()
        if self._silent is not None:
            return  # nothing more is sent; the dialplan carries on when the socket closes
        where = ",".join(str(x) for x in (context, extension, priority) if x is not None)
        await self._live("SET VARIABLE", "IVR_CONTINUE", where)
        self._ended = True


def _read_local(path: Path) -> bytes | None:
    """The recording, when the controller shares the PBX's disk; None otherwise."""
    try:
        return path.read_bytes()
    except OSError:
        return None
