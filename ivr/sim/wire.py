"""JSON shapes the simulator puts on the wire, as Asterisk 22 writes them (see shared/ari/traces)."""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
import wave
from typing import Any

ASTERISK_ID = "02:fc:00:00:00:01"


def timestamp() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def error(message: str) -> dict[str, str]:
    return {"message": message}


CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
}


def wav_bytes(speech_seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV: a 440 Hz tone standing in for the caller's voice."""
    frames = int(speech_seconds * rate)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames))
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buf.getvalue()


def bridge_json(bridge_id: str, name: str, channels: list[str], created: str) -> dict[str, Any]:
    return {
        "id": bridge_id,
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": name,
        "channels": list(channels),
        "creationtime": created,
        "video_mode": "talker",
    }
