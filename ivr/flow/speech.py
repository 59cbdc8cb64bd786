"""Is a recording a message? Pure: the reported duration and the file's bytes in, a verdict out.

A caller who hangs up at the beep, or says nothing until the silence limit, leaves a file of a
fraction of a second or of line noise. Such a file is no message: it must not reach the inbox.

The rule: a message lasts at least :data:`MIN_SECONDS` and at least :data:`MIN_VOICED_SECONDS`
of it is louder than :data:`VOICE_DBFS` (measured over 20 ms frames, so a click is not a voice).
Asterisk's own silence detection only trims the end of a file; the energy is measured here.

When the audio cannot be read (FastAGI with the controller on another host than the PBX, or a
format we do not parse), the duration alone decides: a doubtful recording is kept, never lost.
"""

from __future__ import annotations

import io
import math
import operator
import wave
from array import array
from dataclasses import dataclass

MIN_SECONDS = 1.0
MIN_VOICED_SECONDS = 0.3
VOICE_DBFS = -40.0  # a telephone line's idle noise sits near -60 dBFS, speech near -20
FRAME_SECONDS = 0.02
ENERGY_RATE = 2000  # samples a second looked at: a 2-minute message is measured in ~25 ms


@dataclass(frozen=True, slots=True)
class Audio:
    """What a WAV file holds: its length and how much of it is louder than the voice floor."""

    seconds: float
    voiced_seconds: float


@dataclass(frozen=True, slots=True)
class Verdict:
    speech: bool
    reason: str  # for the call's timeline, in Vietnamese (supervisors read it)


def measure(wav: bytes) -> Audio:
    """Length and voiced time of a PCM WAV file; ValueError if it is not one we can read."""
    try:
        with wave.open(io.BytesIO(wav), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ValueError(f"not a PCM WAV file: {e}") from e
    samples = _samples(frames, width)
    if channels > 1:
        samples = samples[::channels]  # the first channel speaks for the call
    step = max(1, int(rate * FRAME_SECONDS))
    stride = max(1, rate // ENERGY_RATE)  # energy needs no more than every few samples
    full_scale = float(1 << (8 * width - 1))
    quiet = (full_scale * 10 ** (VOICE_DBFS / 20)) ** 2  # mean square of the loudest quiet frame
    voiced = 0
    for start in range(0, len(samples) - step + 1, step):
        frame = samples[start : start + step : stride]
        if sum(map(operator.mul, frame, frame)) > quiet * len(frame):
            voiced += 1
    return Audio(seconds=len(samples) / rate, voiced_seconds=voiced * step / rate)


def _samples(frames: bytes, width: int) -> array[int]:
    if width == 1:  # unsigned 8-bit: centre it on zero
        return array("h", (b - 128 for b in frames))
    if width == 2:
        out = array("h")
        out.frombytes(frames[: len(frames) - len(frames) % 2])
        return out  # WAV is little-endian, as are the machines we run on
    raise ValueError(f"unsupported sample width: {width * 8} bits")


def judge(duration_seconds: float, wav: bytes | None) -> Verdict:
    """Whether a recording is a message worth listing (see the module's rule)."""
    if wav:
        try:
            audio = measure(wav)
        except ValueError:
            audio = None
        if audio is not None:
            return _judge_audio(audio)
    if duration_seconds < MIN_SECONDS:
        return Verdict(False, f"ngắn hơn {MIN_SECONDS:g} giây")
    return Verdict(True, "không đọc được âm thanh; giữ theo độ dài")


def _judge_audio(audio: Audio) -> Verdict:
    if audio.seconds < MIN_SECONDS:
        return Verdict(False, f"ngắn hơn {MIN_SECONDS:g} giây ({audio.seconds:.1f} s)")
    if audio.voiced_seconds < MIN_VOICED_SECONDS:
        return Verdict(False, f"chỉ có khoảng lặng ({audio.seconds:.1f} s, không có tiếng nói)")
    return Verdict(True, f"{_round(audio.voiced_seconds)} s có tiếng nói")


def _round(seconds: float) -> str:
    return f"{math.floor(seconds * 10) / 10:g}"
