"""`ivr prompts build`: Vietnamese prompts in the formats Asterisk plays.

A prompt comes from a recording an admin dropped in (wav, mp3, m4a: the manifest's `file`) or,
failing that, from its text spoken by espeak-ng's Vietnamese voice. Each is trimmed of leading
and trailing silence, loudness-normalised (EBU R128) and resampled with the SoX resampler (a
proper low-pass filter: no aliasing) to 8 kHz mono 16-bit WAV and 16 kHz signed-linear (.sln16),
under prompts/sounds/vi/hotline/. `--install DIR` copies them to Asterisk's sounds folder
(DIR/vi/hotline/), where `sound:hotline/<id>` with language `vi` finds them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.prompts.manifest import Prompt

FORMATS = {".wav": 8000, ".sln16": 16000}
LOUDNESS = "loudnorm=I=-19:TP=-3:LRA=11"
TRIM = (
    "silenceremove=start_periods=1:start_threshold=-45dB:start_silence=0.05,"
    "areverse,silenceremove=start_periods=1:start_threshold=-45dB:start_silence=0.05,areverse"
)


class PromptBuildError(Exception):
    pass


def resample_filter(rate: int) -> str:
    """The SoX resampler at high precision: its anti-alias filter keeps what is above
    Nyquist out of the band (a 6 kHz tone comes out more than 40 dB down at 8 kHz)."""
    return f"aresample={rate}:resampler=soxr:precision=28:cheby=1"


def _run(cmd: list[str]) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    except FileNotFoundError as e:
        raise PromptBuildError(f"thiếu chương trình {cmd[0]} (apt-get install {cmd[0]})") from e
    except subprocess.CalledProcessError as e:
        tail = e.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise PromptBuildError(f"{cmd[0]} lỗi: {tail[0]}") from e


def speak(text: str, out: Path) -> None:
    _run(["espeak-ng", "-v", "vi", "-s", "140", "-w", str(out), text])


def convert(source: Path, out: Path, rate: int, *, normalise: bool = True) -> None:
    """Any audio file → mono 16-bit at ``rate``: WAV, or raw signed-linear for .sln16."""
    chain = ",".join(
        [TRIM, LOUDNESS, resample_filter(rate)] if normalise else [resample_filter(rate)]
    )
    fmt = ["-f", "s16le"] if out.suffix == ".sln16" else ["-f", "wav"]
    _run(
        [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(source),
            "-af",
            chain,
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-sample_fmt",
            "s16",
            "-bitexact",
            *fmt,
            str(out),
        ]
    )


@dataclass(frozen=True)
class Built:
    id: str
    source: str  # "text" or the recording's name
    seconds: float
    changed: bool


def source_digest(p: Prompt, manifest_dir: Path) -> str:
    h = hashlib.sha256()
    h.update(f"{p.text}\n{LOUDNESS}\n{TRIM}\n".encode())
    if p.file:
        h.update((manifest_dir / p.file).read_bytes())
    return h.hexdigest()[:16]


def build(
    prompts: dict[str, Prompt], manifest_dir: Path, out_dir: Path, force: bool = False
) -> list[Built]:
    """Build every prompt whose text or recording changed since the last build."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_file = out_dir / "built.json"
    stamps: dict[str, str] = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    done = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in prompts.values():
            digest = source_digest(p, manifest_dir)
            outputs = [out_dir / f"{p.id}{ext}" for ext in FORMATS]
            fresh = stamps.get(p.id) == digest and all(o.exists() for o in outputs)
            if not fresh or force:
                source = manifest_dir / p.file if p.file else Path(tmp) / f"{p.id}.wav"
                if not p.file:
                    speak(p.text, source)
                elif not source.exists():
                    raise PromptBuildError(f"lời nhắc {p.id}: không có tệp ghi âm {source}")
                for out, (_ext, rate) in zip(outputs, FORMATS.items(), strict=True):
                    convert(source, out, rate)
                stamps[p.id] = digest
            done.append(Built(p.id, p.file or "text", wav_seconds(outputs[0]), not fresh or force))
    stamp_file.write_text(json.dumps(dict(sorted(stamps.items())), indent=1) + "\n")
    ringback(out_dir)
    return done


# Vietnam's ringback (indications.conf [vn]: ring=425/1000,0/4000), one 5 s cycle made at each
# format's own rate (nothing is resampled), 10 ms ramps against clicks, about -15 dBFS. The MOH
# classes of ivr.asterisk.moh loop it after a dial node's prompts.
RINGBACK_TONE = "0.25*sin(2*PI*425*t)*lt(mod(t,5),1)*min(1,100*min(mod(t,5),max(0,1-mod(t,5))))"


def ringback(out_dir: Path) -> list[Path]:
    """``ringback-vn`` in every format, made once (it depends on nothing a site changes)."""
    from ivr.asterisk.moh import RINGBACK

    made = []
    for ext, rate in FORMATS.items():
        out = out_dir / f"{RINGBACK}{ext}"
        if not out.exists():
            fmt = ["-f", "s16le"] if ext == ".sln16" else ["-f", "wav"]
            source = f"aevalsrc='{RINGBACK_TONE}':s={rate}:d=5"
            lavfi = ["-f", "lavfi", "-i", source]  # generated: no input file
            pcm = ["-ac", "1", "-ar", str(rate), "-sample_fmt", "s16", "-bitexact", *fmt]
            _run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *lavfi, *pcm, str(out)])
            made.append(out)
    return made


def install(out_dir: Path, sounds_dir: Path, announced: Iterable[Sequence[str]] = ()) -> int:
    """The built files into ``<sounds>/vi/hotline/``, and the folders of the MOH classes that
    announce ``announced`` (each a dial node's prompt list: ivr.asterisk.moh)."""
    from ivr.asterisk.moh import install_classes

    target = sounds_dir / "vi" / "hotline"
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for f in sorted(out_dir.iterdir()):
        if f.suffix in FORMATS:
            shutil.copy2(f, target / f.name)
            count += 1
    install_classes(sounds_dir / "vi", announced)
    return count


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return float(w.getnframes()) / float(w.getframerate())
