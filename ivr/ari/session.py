"""The ARI implementation of :class:`ivr.session.CallSession`.

Each call owns a queue; the dispatcher (:mod:`ivr.ari.app`) puts every event about the call's
channel, its playbacks, recordings and dialled legs there, in the order Asterisk sent them. The
operations below read that queue: digits are buffered whenever they arrive (type-ahead), and a
hang-up of the caller raises :class:`CallerHangup` into whatever operation is waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import structlog

from ivr.ari.client import AriClient
from ivr.ari.errors import AriError, AriUnavailable, BadRequest, Conflict, NotFound, ServerError
from ivr.ari.event_types import AriEvent, PlaybackRef, RecordingRef, event_target
from ivr.flow.callerid import clerk_caller_id
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
    overall_status,
)

log = structlog.get_logger("ivr.ari.session")

Event = AriEvent

_CALLER_GONE = {"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}
_LEG_GONE = {"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"}
_LEG_ENDED = {"StasisEnd", "ChannelDestroyed"}  # a leg we hung up: nothing more will come
# Q.850 causes of a leg that ended before it was answered.
_BUSY_CAUSES = {17, 21}  # user busy, call rejected
_NO_ANSWER_CAUSES = {0, 16, 18, 19, 31}  # ...no user responding, user alerting no answer
PLAYBACK_GUARD_SECONDS = 600.0  # a playback that never finishes (unknown scheme) is stopped
# A playback not started after this long is asked about: Asterisk 22 drops a playback asked for
# while the channel is leaving a bridge (res_stasis_playback's play_uri finds the bridge but not
# the channel in it): no event, ever, and GET answers 404 once the command has run. Seen on the
# real Asterisk as a caller left in silence at the survey after the clerk hung up.
PLAYBACK_START_SECONDS = 0.25
RECORD_GRACE_SECONDS = 5.0  # after a hang-up, how long to wait for RecordingFinished
_GONE = (NotFound, Conflict)  # what ARI answers about a channel that has hung up
# A request whose outcome we do not know (a timeout, a dropped connection, a 5xx): try again.
_UNSURE = (AriUnavailable, ServerError)
# Between the attempts of a request that gives a call up (hand-back, hang-up, dropping a leg).
GIVE_UP_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
LEAVE_CONFIRM_SECONDS = 2.0  # after a hand-back, how long to wait for StasisEnd before a GET

T = TypeVar("T")


class LegRegistry(Protocol):
    """The dispatcher: which call gets the events of a channel we originated."""

    def claim(self, channel_id: str, session: AriCallSession) -> None: ...

    def release(self, channel_id: str) -> None: ...


class AriCallSession:
    def __init__(
        self,
        client: AriClient,
        registry: LegRegistry,
        info: CallInfo,
        *,
        language: str = "vi",
        sound_prefix: str = "hotline",
        recordings_dir: str = "/var/spool/asterisk/recording",
        timer_scale: float = 1.0,
        unreachable: Callable[[str], bool] | None = None,
        answered: bool = False,
    ) -> None:
        self.unreachable = unreachable  # what AMI knows of the phones, when it is watched
        self.client = client
        # Against the simulator running N times faster than life, our own timers run N times
        # faster too (timer_scale = 1/N) and durations are reported in nominal seconds.
        self.timer_scale = timer_scale
        self.registry = registry
        self._info = info
        self.id = info.channel_id
        self.language = language
        self.sound_prefix = sound_prefix
        self.recordings_dir = recordings_dir
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self._pending: deque[Event] = deque()
        self._digits = ""
        self._gone = False
        self._ended = False  # we hung up or handed the channel back
        self._seq = 0
        self._answered = answered  # the channel came up: nothing to ask Asterisk for
        self._playing: str | None = None
        self._recording: str | None = None
        self._legs: dict[str, str] = {}  # leg channel id → endpoint
        self._dropping: set[str] = set()  # legs hung up, still routed here until they end
        self._waiting_music: str | None = None  # what the caller hears while desks ring
        self._behind: set[asyncio.Task[None]] = set()  # clean-up requests not waited for
        self.retry_delays: Sequence[float] = GIVE_UP_RETRY_DELAYS

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def released(self) -> bool:
        """The caller's channel is no longer ours: it hung up, was hung up, or went back to the
        dialplan (confirmed). A call that ends without this leaves the channel to the app."""
        return self._gone or self._ended

    def request_resync(self) -> None:
        """After a websocket reconnect: events may have been lost; check what still stands."""
        self.queue.put_nowait({"type": "_Resync"})

    # --- event plumbing -----------------------------------------------------------------------

    async def _next(
        self, timeout: float | None = None, *, raise_on_hangup: bool = True
    ) -> Event | None:
        """The next event for this call (None on timeout), after the common bookkeeping."""
        if self._pending:
            ev = self._pending.popleft()
        elif timeout is None:
            ev = await self._get()
        else:
            got = await self._get_within(timeout)
            if got is None:
                return None
            ev = got
        kind = ev["type"]
        if kind == "_Resync":
            await self._resync()
            return {"type": "_Resynced"}
        channel = ev.get("channel")
        if self._dropping and kind in _LEG_ENDED and channel is not None:
            leg = channel.get("id", "")
            if leg in self._dropping:
                self._dropping.discard(leg)
                self.registry.release(leg)
        if channel is not None and channel.get("id") == self.id:
            if kind == "ChannelDtmfReceived":
                self._digits += str(ev.get("digit", ""))
            elif kind in _CALLER_GONE:
                self._gone = True
                if raise_on_hangup:
                    raise CallerHangup(ev.get("cause"))
        return ev

    async def _get(self) -> Event:
        while True:
            ev = await self.queue.get()
            if ev["type"] != "_Wake":  # a wake-up whose wait had ended already
                return ev

    async def _get_within(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds. A timer that queues a wake-up of
        its own costs less than asyncio.timeout() (its Timeout object, the task's cancel and
        uncancel, an exception), and this runs for nearly every event of a call."""
        if timeout <= 0:
            while not self.queue.empty():
                ev = self.queue.get_nowait()
                if ev["type"] != "_Wake":
                    return ev
            return None
        wake: Event = {"type": "_Wake"}
        timer = asyncio.get_running_loop().call_later(timeout, self.queue.put_nowait, wake)
        try:
            while True:
                ev = await self.queue.get()
                if ev is wake:
                    return None
                if ev["type"] != "_Wake":
                    return ev
        finally:
            timer.cancel()

    def _check(self) -> None:
        if self._gone or self._ended:
            raise CallerHangup()

    def _new_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.id}-{kind}{self._seq}"

    async def _resync(self) -> None:
        """After a reconnection: stand in for the events of what ended while we were away."""
        try:
            await self.client.channel(self.id)
        except NotFound:
            self._lost({"type": "StasisEnd", "channel": {"id": self.id}})
            return
        await self._resync_media()
        await self._resync_legs()

    async def _resync_media(self) -> None:
        if self._playing is not None:
            try:
                await self.client.playback(self._playing)
            except NotFound:
                playback: PlaybackRef = {"id": self._playing, "state": "done"}
                self._lost({"type": "PlaybackFinished", "playback": playback})
        if self._recording is not None:
            try:
                await self.client.live_recording(self._recording)
            except NotFound:
                rec: RecordingRef = {"name": self._recording, "state": "done", "duration": None}
                self._lost({"type": "RecordingFinished", "recording": rec})

    async def _resync_legs(self) -> None:
        for leg in list(self._legs):
            try:
                ch = await self.client.channel(leg)
            except NotFound:
                self._lost({"type": "ChannelDestroyed", "channel": {"id": leg}, "cause": 0})
                continue
            if ch.state == "Up" and ch.app_name == "Stasis":
                self._lost({"type": "StasisStart", "channel": {"id": leg}})

    def _lost(self, event: AriEvent) -> None:
        """Queue an event Asterisk sent while we were away, made up from what GET showed."""
        self._pending.append({**event, "synthetic": True})

    async def _quietly(self, coro: Awaitable[object]) -> None:
        """Run a clean-up request; a channel or object already gone is fine, and a failure
        (an error status, a timeout, Asterisk unreachable) is logged, never raised."""
        try:
            await coro
        except _GONE:
            pass
        except (AriError, AriUnavailable) as e:
            log.warning("clean-up request failed", call=self.id, error=str(e))

    async def _retrying(self, request: Callable[[], Awaitable[T]]) -> T:
        return await retrying(request, self.retry_delays, call=self.id)

    async def _caller_request(self, coro: Awaitable[T]) -> T:
        """A request on the caller's channel; the channel gone means the caller hung up."""
        try:
            return await coro
        except _GONE as e:
            self._gone = True
            raise CallerHangup() from e

    # --- CallSession --------------------------------------------------------------------------

    async def answer(self) -> None:
        """Answer the caller, unless the channel arrived answered: the project's dialplan answers
        before Stasis(), which spares a request a call (a site's own dialplan need not)."""
        self._check()
        if self._answered:
            return
        await self._caller_request(self.client.answer(self.id))
        self._answered = True

    async def play(self, prompts: Sequence[str], *, interruptible: bool = True) -> None:
        self._check()
        if interruptible and self._digits:
            return
        media = [f"sound:{self.sound_prefix}/{p}" for p in prompts]
        playback_id = await self._start_playback(media)
        deadline = time.monotonic() + PLAYBACK_GUARD_SECONDS * self.timer_scale
        start_wait = PLAYBACK_START_SECONDS * self.timer_scale
        check_at = time.monotonic() + start_wait
        started = False
        asked = False  # GET said 404 and no event has come since
        replayed = False
        try:
            while True:
                until = deadline if started else min(deadline, check_at)
                ev = await self._next(until - time.monotonic())
                if ev is None:
                    if started or time.monotonic() >= deadline:
                        log.warning(
                            "playback never finished; stopping it", call=self.id, media=media
                        )
                        await self._quietly(self.client.stop_playback(playback_id))
                        return
                    check_at = time.monotonic() + start_wait
                    if not asked:
                        state = await self._playback_state(playback_id)
                        started = state not in (None, "queued")
                        asked = state is None
                        continue
                    if replayed:  # lost twice: the caller is not kept waiting for it
                        log.error("playback lost by Asterisk twice; going on", call=self.id)
                        return
                    log.warning(
                        "playback lost by Asterisk; asking again", call=self.id, media=media
                    )
                    playback_id = await self._start_playback(media)
                    asked, replayed = False, True
                    continue
                kind = ev["type"]
                about_ours = "playback" in ev and ev["playback"]["id"] == playback_id
                if kind == "PlaybackFinished" and about_ours:
                    return
                if kind == "PlaybackStarted" and about_ours:
                    started = True
                if interruptible and self._digits:
                    self._stop_behind(playback_id)
                    return
        finally:
            self._playing = None

    def _stop_behind(self, playback_id: str) -> None:
        """Stop a prompt the caller's key cut short without waiting for Asterisk's answer: what
        the key leads to (the desks dialled, the next prompt) is asked for at once, one round
        trip sooner. A prompt asked for meanwhile queues behind the one being stopped."""
        task = asyncio.create_task(self._quietly(self.client.stop_playback(playback_id)))
        self._behind.add(task)
        task.add_done_callback(self._behind.discard)

    async def _start_playback(self, media: list[str]) -> str:
        playback_id = self._new_id("pb")
        await self._caller_request(self.client.play(self.id, playback_id, media, self.language))
        self._playing = playback_id
        return playback_id

    async def _playback_state(self, playback_id: str) -> str | None:
        """The playback's state as Asterisk has it, None when it has none (404: ended, its
        events on their way, or lost: the caller waits one more start period for its events,
        then it is asked for again). A failed request counts as playing: the long guard stands."""
        try:
            return (await self.client.playback(playback_id)).state
        except NotFound:
            return None
        except (AriError, AriUnavailable) as e:
            log.warning("could not ask about a playback", call=self.id, error=str(e))
            return "unknown"

    async def read_digits(
        self,
        max_digits: int,
        first_timeout: float,
        inter_digit_timeout: float,
        terminators: str = "#",
    ) -> str:
        self._check()
        got = ""
        first_timeout *= self.timer_scale
        inter_digit_timeout *= self.timer_scale
        deadline = time.monotonic() + first_timeout
        while True:
            while self._digits and len(got) < max_digits:
                digit, self._digits = self._digits[0], self._digits[1:]
                if digit in terminators:
                    return got
                got += digit
                deadline = time.monotonic() + inter_digit_timeout
            if len(got) >= max_digits:
                return got
            ev = await self._next(deadline - time.monotonic())
            if ev is None:
                return got

    def flush_digits(self) -> None:
        self._digits = ""

    async def dial(self, request: DialRequest) -> DialResult:
        """The desks are dialled first; the announcement (if any) plays while they ring, then
        ringback or music; a desk that answers stops whichever is playing."""
        self._check()
        started = time.monotonic()
        statuses: dict[str, DialStatus] = {}
        self._waiting_music = None
        try:
            await self._originate_all(request, statuses)
            if self._legs and request.announce:
                await self._start_announcement(request.announce)
            else:
                await self._start_waiting_music(request.music)
            answered = await self._await_answer(request, statuses) if self._legs else None
        except CallerHangup as e:
            await self._drop_legs()
            waited = (time.monotonic() - started) / self.timer_scale
            raise HangupWhileRinging(waited, e.cause) from e
        except BaseException:
            await self._drop_legs()
            raise
        finally:
            if not self._gone:
                await self._stop_waiting()
        waited = (time.monotonic() - started) / self.timer_scale
        if answered is None:
            await self._drop_legs()
            return DialResult(overall_status(statuses), None, waited, 0.0, None, statuses)
        endpoint = self._legs[answered]
        statuses[endpoint] = DialStatus.ANSWERED
        await self._drop_legs(keep=answered)
        if request.on_answer is not None:
            request.on_answer(endpoint)
        talk_started = time.monotonic()
        ended_by = await self._converse(answered)
        talk = (time.monotonic() - talk_started) / self.timer_scale
        return DialResult(DialStatus.ANSWERED, endpoint, waited, talk, ended_by, statuses)

    async def _start_announcement(self, prompts: Sequence[str]) -> None:
        await self._start_playback([f"sound:{self.sound_prefix}/{p}" for p in prompts])

    async def _announcement_over(self, ev: Event, music: str) -> bool:
        """While the desks ring: the announcement's end starts the ringback or music."""
        if self._playing is None or ev["type"] != "PlaybackFinished":
            return False
        if ev["playback"]["id"] != self._playing:
            return False
        self._playing = None
        await self._start_waiting_music(music)
        return True

    async def _stop_waiting(self) -> None:
        """Stop what the caller hears while the desks ring (the announcement or the music)."""
        if self._playing is not None:
            playback, self._playing = self._playing, None
            await self._quietly(self.client.stop_playback(playback))
        if self._waiting_music is not None:
            await self._stop_waiting_music(self._waiting_music)
            self._waiting_music = None

    async def _start_waiting_music(self, music: str) -> None:
        self._waiting_music = music
        if music == "ringback":
            await self._caller_request(self.client.ring(self.id))
        else:
            await self._caller_request(self.client.moh(self.id, music.removeprefix("moh:") or None))

    async def _stop_waiting_music(self, music: str) -> None:
        if music == "ringback":
            await self._quietly(self.client.ring_stop(self.id))
        else:
            await self._quietly(self.client.moh_stop(self.id))

    async def _originate_all(self, request: DialRequest, statuses: dict[str, DialStatus]) -> None:
        """Every desk dialled at once: the last desk's phone rings one request sooner per desk
        before it, not after each one's answer from Asterisk. All of them are waited for
        before an error is raised, so every leg that may exist is known to :meth:`_drop_legs`."""
        results = await asyncio.gather(
            *(self._originate(endpoint, request, statuses) for endpoint in request.endpoints),
            return_exceptions=True,
        )
        for endpoint in request.endpoints:  # the endpoints' order, whichever answered first
            if endpoint in statuses:
                statuses[endpoint] = statuses.pop(endpoint)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _originate(
        self, endpoint: str, request: DialRequest, statuses: dict[str, DialStatus]
    ) -> None:
        if self.unreachable is not None and self.unreachable(endpoint):
            log.info("endpoint known unreachable; not dialled", call=self.id, endpoint=endpoint)
            statuses[endpoint] = DialStatus.UNREACHABLE
            return
        leg = self._new_id("leg")
        self.registry.claim(leg, self)
        self._legs[leg] = endpoint
        caller_id = clerk_caller_id(request.caller_id_name, request.caller_id_number).text
        try:
            await self.client.originate(
                endpoint,
                channel_id=leg,
                app_args=f"dialed,{self.id}",
                caller_id=caller_id,
                timeout=max(1, math.ceil(request.ring_seconds)),
                originator=self.id,
            )
        except (ServerError, BadRequest) as e:  # Asterisk: 500 "Allocation failed" = unreachable
            log.info("endpoint unreachable", call=self.id, endpoint=endpoint, status=e.status)
            statuses[endpoint] = DialStatus.UNREACHABLE
            self._forget_leg(leg)
        except AriUnavailable as e:  # the leg may exist all the same: make sure it does not
            log.warning("originate failed", call=self.id, endpoint=endpoint, error=str(e))
            statuses[endpoint] = DialStatus.UNREACHABLE
            await self._drop_leg(leg)

    async def _await_answer(
        self, request: DialRequest, statuses: dict[str, DialStatus]
    ) -> str | None:
        # Asterisk ends each leg itself at `timeout`; this guard only covers lost events.
        deadline = time.monotonic() + (request.ring_seconds + 5.0) * self.timer_scale
        causes: dict[str, int] = {}
        while self._legs:
            ev = await self._next(deadline - time.monotonic())
            if ev is None:
                for endpoint in self._legs.values():
                    statuses[endpoint] = DialStatus.NO_ANSWER
                return None
            if await self._announcement_over(ev, request.music):
                continue
            who = event_target(ev)
            if who is None or who not in self._legs:
                continue
            leg = who
            kind = ev["type"]
            if kind == "StasisStart":
                return leg
            if kind == "ChannelHangupRequest" and "cause" in ev:
                causes.setdefault(leg, int(ev["cause"]))
            elif kind == "ChannelDestroyed":
                cause = causes.get(leg, int(ev.get("cause", 0)))
                statuses[self._legs[leg]] = _status_for_cause(cause)
                self._forget_leg(leg)
        return None

    async def _converse(self, leg: str) -> str:
        """Bridge the caller with the answered leg; return who hung up first.

        The caller is not hung up here: when the desk ends, the flow decides what follows.
        """
        bridge_id = self._new_id("br")
        try:
            try:
                await self.client.create_bridge(bridge_id, f"call-{self.id}")
                await self.client.add_to_bridge(bridge_id, [self.id, leg])
            except (AriError, AriUnavailable) as e:  # the bridge may exist: destroyed below
                raise SessionError(f"could not bridge the call: {e}") from e
            while True:
                ev = await self._next(raise_on_hangup=False)
                if self._gone:
                    return "caller"
                if ev is not None and ev["type"] in _LEG_GONE and event_target(ev) == leg:
                    self._forget_leg(leg)  # it is hanging up itself: no DELETE for it
                    return "callee"
        finally:
            await self._drop_legs()
            await self._quietly(self.client.destroy_bridge(bridge_id))

    async def _drop_legs(self, keep: str | None = None) -> None:
        for leg in [leg for leg in self._legs if leg != keep]:
            await self._drop_leg(leg)

    async def _drop_leg(self, leg: str) -> None:
        """Hang a leg up (again while unsure), then forget it: a leg is never left ringing. It
        stays routed to this call until Asterisk says it is gone: a desk answering while the
        hang-up is on its way (ring-all, two desks at once) is then not taken for an orphan."""
        self._legs.pop(leg, None)
        try:
            await self._retrying(lambda: self.client.hangup(leg))
        except _GONE:
            self.registry.release(leg)
            return
        except (AriError, AriUnavailable) as e:
            log.warning("clean-up request failed", call=self.id, error=str(e))
            self.registry.release(leg)  # the app's watchdog and orphan rule take it from here
            return
        self._dropping.add(leg)

    def held_legs(self) -> set[str]:
        """Legs hung up whose end Asterisk has not reported yet (released with the call)."""
        return set(self._dropping)

    def _forget_leg(self, leg: str) -> None:
        self._legs.pop(leg, None)
        self.registry.release(leg)

    async def record(self, request: RecordRequest) -> RecordResult:
        self._check()
        name = request.name
        try:
            await self._start_recording(request, name)
        except Conflict:  # a file of that name exists: never overwrite a message
            name = self._new_id(request.name + "-")
            await self._start_recording(request, name)
        self._recording = name
        hung_up = False
        duration: float | None = None
        try:
            grace: float | None = None
            while True:
                ev = await self._next(grace, raise_on_hangup=False)
                if ev is None:
                    break
                if self._gone and not hung_up:
                    hung_up = True
                    grace = RECORD_GRACE_SECONDS * self.timer_scale
                kind = ev["type"]
                rec = ev.get("recording")
                if rec is not None and rec["name"] == name:
                    if kind == "RecordingFailed":
                        cause = rec.get("cause", "?")
                        log.error("recording failed", call=self.id, recording=name, cause=cause)
                        raise SessionError(f"recording {name} failed: {cause}")
                    if kind == "RecordingFinished":
                        d = rec.get("duration")
                        duration = float(d) if d is not None else None
                        break
                if kind == "StasisEnd":
                    break
        finally:
            self._recording = None
            self.flush_digits()  # the '#' that ended the message is not type-ahead
        data = await self._fetch_recording(name)
        if duration is None:
            duration = max(0.0, (len(data) - 44) / 16000) if data else 0.0
        return RecordResult(
            name=name,
            duration_seconds=duration,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            location=f"{self.recordings_dir}/{name}.wav",
            caller_hung_up=hung_up,
            audio=data or None,
        )

    async def _start_recording(self, request: RecordRequest, name: str) -> None:
        try:
            await self.client.record(
                self.id,
                name,
                max_seconds=request.max_seconds,
                max_silence_seconds=request.max_silence_seconds,
                beep=request.beep,
                terminate_on=request.terminate_on,
            )
        except NotFound as e:
            self._gone = True
            raise CallerHangup() from e
        except Conflict:  # a file of that name, or a caller who just left Stasis: which?
            if not await self._in_stasis():
                self._gone = True
                raise CallerHangup() from None
            raise

    async def _in_stasis(self) -> bool:
        """Whether the caller's channel is still ours (an error asking: assumed so)."""
        try:
            ch = await self.client.channel(self.id)
        except NotFound:
            return False
        except (AriError, AriUnavailable):
            return True
        return ch.app_name == "Stasis"

    async def _fetch_recording(self, name: str) -> bytes:
        try:
            return await self.client.stored_recording_file(name)
        except NotFound:
            log.warning("recording has no stored file", call=self.id, recording=name)
            return b""

    async def set_variable(self, name: str, value: str) -> None:
        self._check()
        await self._caller_request(self.client.set_variable(self.id, name, value))

    async def hangup(self, cause: str = "normal") -> None:
        """Hang the caller up; raises (after retries) when Asterisk could not be told, so that
        the safety net and the app's watchdog still take care of the channel."""
        if self._gone or self._ended:
            return
        try:
            await self._retrying(lambda: self.client.hangup(self.id, cause))
        except _GONE:
            self._gone = True
            return
        self._ended = True

    async def continue_in_dialplan(
        self, context: str | None = None, extension: str | None = None, priority: int | None = None
    ) -> None:
        """Send the caller to the dialplan; marked ended only once Asterisk took it (StasisEnd
        seen, or the channel gone or out of Stasis), sent again while unsure."""
        self._check()
        unsure = False
        for delay in (*self.retry_delays, None):
            try:
                await self.client.continue_in_dialplan(self.id, context, extension, priority)
            except _GONE as e:
                if not unsure:  # never sent before: the caller is gone
                    self._gone = True
                    raise CallerHangup() from e
            except _UNSURE as e:
                if delay is None:
                    raise
                log.warning("hand-back failed; trying again", call=self.id, error=str(e))
                unsure = True
                await asyncio.sleep(delay)
                continue
            if await self._left_stasis():
                self._ended = True
                return
            if delay is None:
                break
            unsure = True
        raise SessionError("the channel did not leave Stasis after continue")

    async def _left_stasis(self) -> bool:
        """After a continue: StasisEnd for the caller, else a GET saying it left or is gone."""
        deadline = time.monotonic() + LEAVE_CONFIRM_SECONDS
        while not self._gone:
            ev = await self._next(deadline - time.monotonic(), raise_on_hangup=False)
            if ev is None:
                break
        if self._gone:
            return True
        try:
            ch = await self.client.channel(self.id)
        except NotFound:
            return True
        except (AriError, AriUnavailable):
            return False
        return ch.app_name != "Stasis"


async def retrying(
    request: Callable[[], Awaitable[T]], delays: Sequence[float], **context: str
) -> T:
    """A request that gives something up, sent again while its outcome is unsure (a timeout,
    Asterisk unreachable, a 5xx); the last failure is raised."""
    for delay in (*delays, None):
        try:
            return await request()
        except _UNSURE as e:
            if delay is None:
                raise
            log.warning("request failed; trying again", error=str(e), **context)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _status_for_cause(cause: int) -> DialStatus:
    if cause in _BUSY_CAUSES:
        return DialStatus.BUSY
    if cause in _NO_ANSWER_CAUSES:
        return DialStatus.NO_ANSWER
    return DialStatus.UNREACHABLE
