"""Playbacks and recordings on simulated channels, timed like Asterisk's."""

from __future__ import annotations

import asyncio
import io
import math
import random
import uuid
import wave
from array import array

from ivr.sim.base import PbxBase
from ivr.sim.objects import Channel, Playback, Recording, fail

NOISE_AMPLITUDE = 30  # a quiet line: about -60 dBFS
VOICE_AMPLITUDE = 8000  # the caller's voice: a 440 Hz tone at about -12 dBFS


def recording_wav(
    start: float, end: float, speech: list[tuple[float, float]], rate: int = 8000
) -> bytes:
    """The file Asterisk writes for a recording from ``start`` to ``end`` (nominal seconds):
    line noise throughout, the caller's voice where they spoke. A mono 16-bit WAV."""
    noise = random.Random(int(start * 1000))  # the same recording always gives the same file
    frames = max(0, int((end - start) * rate))
    span = 2 * NOISE_AMPLITUDE + 1
    samples = array("h", (noise.randrange(span) - NOISE_AMPLITUDE for _ in range(frames)))
    for a, b in speech:
        first, last = max(0, int((a - start) * rate)), min(frames, int((b - start) * rate))
        for i in range(first, last):
            samples[i] = int(VOICE_AMPLITUDE * math.sin(2 * math.pi * 440 * i / rate))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


class Media(PbxBase):
    # Like a spool Asterisk cannot write: every recording fails (RecordingFailed)
    recordings_fail = False
    # Asterisk 22.10 loses a playback asked for while the channel leaves a bridge: play_uri
    # finds the bridge but not the channel in it and plays nothing, with no event, and GET
    # /playbacks answers 404 from then on. The window is short on a quiet machine; a test sets
    # it (nominal seconds after the channel left its bridge) to make it happen every time.
    bridge_leave_race = 0.0

    # --- playback -------------------------------------------------------------------------------

    def play(
        self, channel_id: str, playback_id: str | None, media: list[str], lang: str
    ) -> Playback:
        ch = self.in_stasis(channel_id)
        media = [m for m in media if m]
        if not media:
            raise fail(500, "Failed to queue media for playback")  # no 'media': 400 from routing
        pb = Playback(playback_id or str(uuid.uuid4()), ch, media, lang or "en")
        left = ch.left_bridge_at
        if left is not None and self.nominal() - left < self.bridge_leave_race:
            return pb  # lost: 201 with the playback queued, then nothing (see above)
        self.playbacks.setdefault(pb.id, pb)  # a second one with the same id waits its turn
        if ch.playing is None:
            asyncio.get_running_loop().call_soon(self._start_playback, pb)
        else:
            ch.queued.append(pb)
        return pb

    def _start_playback(self, pb: Playback) -> None:
        ch = pb.channel
        if ch.gone or pb.cancelled:
            return
        self.playbacks[pb.id] = pb
        ch.playing = pb
        pb.state = "playing"
        self.emit("PlaybackStarted", playback=pb.json())
        self._play_media(pb)

    def _play_media(self, pb: Playback) -> None:
        uri = pb.media[pb.index]
        scheme, _, rest = uri.partition(":")
        if scheme not in {"sound", "recording", "tone", "digits", "number"}:
            self.playbacks.pop(pb.id, None)  # Asterisk: never finishes, and GET says 404
            return
        prompt = rest.rsplit("/", 1)[-1]
        if rest in self.missing_sounds or prompt in self.missing_sounds:
            self._end_playback(pb, "failed")
            return
        call = self.calls.get(pb.channel.id)
        if call is not None:
            call.heard.append(prompt)
        self.mark(pb.channel, f"prompt:{prompt}")
        pb.timer = self.later(self.prompt_seconds(uri), lambda: self._media_done(pb))

    def _media_done(self, pb: Playback) -> None:
        if pb.index + 1 < len(pb.media):
            pb.index += 1
            self.emit("PlaybackContinuing", playback=pb.json())
            self._play_media(pb)
        else:
            self._end_playback(pb, "done")

    def _end_playback(self, pb: Playback, state: str) -> None:
        ch = pb.channel
        if pb.timer:
            pb.timer.cancel()
        pb.state = state
        self.emit("PlaybackFinished", playback=pb.json())
        if self.playbacks.get(pb.id) is pb:
            del self.playbacks[pb.id]
        if ch.playing is pb:
            ch.playing = None
            if ch.queued:
                nxt = ch.queued.pop(0)
                asyncio.get_running_loop().call_soon(self._start_playback, nxt)

    def stop_playback(self, playback_id: str) -> None:
        pb = self.playbacks.get(playback_id)
        if pb is None:
            raise fail(404, "Playback not found")
        if pb.channel.playing is pb:
            self._end_playback(pb, "done")
        else:
            pb.cancelled = True
            pb.channel.queued.remove(pb)
            self.playbacks.pop(pb.id, None)

    # --- recording ------------------------------------------------------------------------------

    FORMATS = frozenset({"wav", "gsm", "ulaw", "alaw", "sln", "sln16", "wav16", "g722"})

    def record(
        self,
        channel_id: str,
        name: str,
        fmt: str,
        max_seconds: float,
        max_silence: float,
        terminate_on: str,
        if_exists: str,
    ) -> Recording:
        ch = self.in_stasis(channel_id)
        if fmt not in self.FORMATS:
            raise fail(422, "specified format is unknown on this system")
        if (name in self.stored or name in self.live_recordings) and if_exists == "fail":
            raise fail(409, f"Recording '{name}' already exists and can not be overwritten")
        terms = (
            "0123456789*#"
            if terminate_on == "any"
            else ("" if terminate_on == "none" else terminate_on)
        )
        rec = Recording(name, fmt, ch, max_seconds, max_silence, terms)
        self.live_recordings[name] = rec
        ch.recording = rec
        asyncio.get_running_loop().call_soon(self._start_recording, rec)
        return rec

    def _start_recording(self, rec: Recording) -> None:
        if rec.channel.gone:
            return
        rec.state = "recording"
        rec.started = self.nominal()
        self.emit("RecordingStarted", recording=rec.json())
        self.mark(rec.channel, "record")
        if self.recordings_fail:
            self._fail_recording(rec, "Error recording to file")
            return
        if rec.max_seconds > 0:
            self.later(rec.max_seconds, lambda: self._finish_recording(rec), rec.channel)
        self._speech_changed(rec.channel)

    def _speech_changed(self, ch: Channel) -> None:
        """Re-arm the silence timer: it runs from the end of the latest speech."""
        rec = ch.recording
        if rec is None or rec.state != "recording" or rec.max_silence <= 0:
            return
        if rec.timer:
            rec.timer.cancel()
        quiet_from = max([rec.started, *(end for _, end in ch.speech)])
        wait = quiet_from + rec.max_silence - self.nominal()
        silence = rec.max_silence
        rec.timer = self.later(wait, lambda: self._finish_recording(rec, trim=silence), ch)

    def _talked(self, rec: Recording) -> float:
        now = self.nominal()
        return sum(
            max(0.0, min(end, now) - max(start, rec.started)) for start, end in rec.channel.speech
        )

    def _fail_recording(self, rec: Recording, cause: str) -> None:
        rec.state = "failed"
        self.live_recordings.pop(rec.name, None)
        rec.channel.recording = None
        self.emit("RecordingFailed", recording={**rec.json(), "cause": cause})
        call = self.calls.get(rec.channel.id)
        if call is not None:
            call.log.append("record-failed")

    def _finish_recording(self, rec: Recording, trim: float = 0.0) -> None:
        """``trim``: the silence that ended it, which Asterisk cuts from the end of the file."""
        if rec.state in {"done", "failed"}:
            return
        if rec.timer:
            rec.timer.cancel()
        talked = self._talked(rec) if rec.state == "recording" else 0.0
        recorded = rec.state == "recording"
        rec.state = "done"
        seconds = int(talked)
        body = {
            **rec.json(),
            "duration": seconds,
            "talking_duration": seconds,
            "silence_duration": 0,
        }
        end = max(rec.started, self.nominal() - trim) if recorded else rec.started
        if not rec.channel.rtp:  # no audio ever came: a bare 44-byte WAV header
            end = rec.started
        self.stored[rec.name] = recording_wav(rec.started, end, rec.channel.speech)
        self.live_recordings.pop(rec.name, None)
        rec.channel.recording = None
        self.emit("RecordingFinished", recording=body)
        call = self.calls.get(rec.channel.id)
        if call is not None:
            call.log.append(f"recorded:{seconds}s")

    def dtmf(self, ch: Channel, digit: str) -> None:
        self.emit_ch("ChannelDtmfReceived", ch, digit=digit, duration_ms=200)
        self.mark(ch, f"dtmf:{digit}")
        rec = ch.recording
        if rec is not None and digit in rec.terminate_on:
            self._finish_recording(rec)

    def _end_media(self, ch: Channel) -> None:
        if ch.playing is not None:
            pb = ch.playing
            pb.state = "failed"
            if pb.timer:
                pb.timer.cancel()
            self.emit("PlaybackFinished", playback=pb.json())
            self.playbacks.pop(pb.id, None)
            ch.playing = None
        for pb in ch.queued:
            self.playbacks.pop(pb.id, None)
        ch.queued.clear()
        if ch.recording is not None:
            self._finish_recording(ch.recording)
