"""The speech detector on WAV files made by sox and espeak-ng, as Asterisk would have recorded them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.flow.speech import MIN_SECONDS, judge, measure

pytestmark = pytest.mark.skipif(
    not (shutil.which("sox") and shutil.which("espeak-ng")), reason="needs sox and espeak-ng"
)

PHONE = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]  # Asterisk's "wav"


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


def sox(out: Path, source: str, *effects: str, fmt: list[str] = PHONE) -> bytes:
    """``source``: a file, or "-n" for sox's null input (then the effects make the sound)."""
    cmd = ["sox", source, *fmt, str(out), *effects]
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def spoken(audio_dir: Path) -> Path:
    """A caller's sentence in Vietnamese, about 2-3 s, at the telephone's rate."""
    raw = audio_dir / "raw.wav"
    text = "Tôi muốn hỏi về thủ tục cấp giấy khai sinh cho con"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(raw), text], check=True)
    out = audio_dir / "spoken.wav"
    sox(out, str(raw))
    return out


def test_a_spoken_sentence_is_a_message(spoken: Path) -> None:
    audio = measure(spoken.read_bytes())
    assert audio.seconds > 1.5
    assert audio.voiced_seconds > 1.0
    assert judge(2, spoken.read_bytes()).speech


def test_speech_after_a_long_pause_is_a_message(spoken: Path, audio_dir: Path) -> None:
    data = sox(audio_dir / "late.wav", str(spoken), "pad", "4", "3")  # 4 s quiet, speech, 3 s
    assert judge(8, data).speech


def test_a_hang_up_at_the_beep_is_no_message(audio_dir: Path) -> None:
    data = sox(audio_dir / "beep.wav", "-n", "trim", "0", "0.4")
    verdict = judge(0, data)
    assert not verdict.speech
    assert "ngắn hơn" in verdict.reason


@pytest.mark.parametrize(
    "noise",
    [
        ["synth", "5", "whitenoise", "vol", "0.001"],  # line noise at -60 dBFS
        ["synth", "5", "sine", "50", "vol", "0.003"],  # mains hum, quiet
        ["trim", "0", "5"],  # digital silence
    ],
    ids=["line-noise", "hum", "digital-silence"],
)
def test_seconds_of_silence_are_no_message(audio_dir: Path, noise: list[str]) -> None:
    data = sox(audio_dir / "quiet.wav", "-n", *noise)
    assert measure(data).seconds == pytest.approx(5, abs=0.01)
    verdict = judge(5, data)
    assert not verdict.speech
    assert "khoảng lặng" in verdict.reason


def test_a_word_shorter_than_a_second_is_no_message(spoken: Path, audio_dir: Path) -> None:
    data = sox(audio_dir / "short.wav", str(spoken), "trim", "0.3", "0.5")
    assert measure(data).voiced_seconds > 0.2  # there is voice, but not enough time
    assert not judge(0, data).speech


def test_a_cough_in_silence_is_no_message(audio_dir: Path) -> None:
    data = sox(audio_dir / "cough.wav", "-n", "synth", "0.1", "whitenoise", "pad", "1", "2")
    audio = measure(data)
    assert audio.seconds == pytest.approx(3.1, abs=0.01)
    assert 0 < audio.voiced_seconds < 0.3
    assert not judge(3, data).speech


@pytest.mark.parametrize(
    "fmt",
    [
        ["-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"],  # Asterisk's "wav16"
        ["-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned-integer"],
        ["-r", "8000", "-c", "2", "-b", "16", "-e", "signed-integer"],
    ],
    ids=["wav16", "8-bit", "stereo"],
)
def test_other_pcm_layouts(spoken: Path, audio_dir: Path, fmt: list[str]) -> None:
    speech = sox(audio_dir / "other.wav", str(spoken), fmt=fmt)
    silence = sox(audio_dir / "other-quiet.wav", "-n", "trim", "0", "3", fmt=fmt)
    assert judge(2, speech).speech
    assert not judge(3, silence).speech
    assert measure(speech).seconds == pytest.approx(measure(spoken.read_bytes()).seconds, 0.01)


def test_without_readable_audio_the_duration_decides() -> None:
    """FastAGI on another host than the PBX, or a file we cannot parse: keep what may be a message."""
    assert not judge(0, None).speech
    assert not judge(MIN_SECONDS - 0.5, b"").speech
    assert judge(MIN_SECONDS, None).speech
    assert judge(12, b"RIFF garbage").speech
    with pytest.raises(ValueError, match="not a PCM WAV"):
        measure(b"RIFF garbage")
