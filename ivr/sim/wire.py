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


# what a short call's statistics look like (values from shared/ari/traces)
RTP_QOS = (
    ("RTPAUDIOQOS", "ssrc=1;themssrc=2;lp=0;rxjitter=0.000000;rxcount=75;txjitter=0.002375;"
     "txcount=76;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000"),
    ("RTPAUDIOQOSJITTER", "minrxjitter=000.000250;maxrxjitter=000.002625;avgrxjitter=000.001671;"
     "stdevrxjitter=000.000601;mintxjitter=000.000000;maxtxjitter=000.000000;"
     "avgtxjitter=000.000000;stdevtxjitter=000.000000;"),
    ("RTPAUDIOQOSLOSS", "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;"
     "  stdevrxlost=000.000000;  mintxlost=000.000000;  maxtxlost=000.000000;"
     "  avgtxlost=000.000000;  stdevtxlost=000.000000;"),
    ("RTPAUDIOQOSRTT", "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;"
     "     stdevrtt=000.000000;"),
    ("RTPAUDIOQOSMES", "   minrxmes=000.000000;   maxrxmes=000.000000;   avgrxmes=000.000000;"
     "   stdevrxmes=000.000000;   mintxmes=000.000000;   maxtxmes=000.000000;"
     "   avgtxmes=000.000000;   stdevtxmes=000.000000;"),
)  # fmt: skip


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
