"""Prompt audio: the resampler's anti-alias filter, the formats, building and checking."""

from __future__ import annotations

import array
import math
import shutil
import wave
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.prompts.build import build, convert, wav_seconds
from ivr.prompts.check import check
from ivr.prompts.manifest import Prompt

from .conftest import ROOT

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (Debian package ffmpeg)"
)


def tone(path: Path, hz: float, rate: int = 48000, seconds: float = 2.0) -> None:
    n = int(rate * seconds)
    samples = array.array(
        "h", (int(12000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def rms_db(path: Path) -> float:
    with wave.open(str(path)) as w:
        data = array.array("h", w.readframes(w.getnframes()))
    body = data[len(data) // 10 : -len(data) // 10]  # leave the filter's edges out
    rms = math.sqrt(sum(s * s for s in body) / len(body)) or 1e-9
    return 20 * math.log10(rms / 32768)


@needs_ffmpeg
def test_a_6khz_tone_is_filtered_out_not_aliased(tmp_path: Path) -> None:
    for hz in (1000, 6000):
        tone(tmp_path / f"{hz}.wav", hz)
        convert(tmp_path / f"{hz}.wav", tmp_path / f"{hz}-8k.wav", 8000, normalise=False)
    in_band = rms_db(tmp_path / "1000-8k.wav")
    above = rms_db(tmp_path / "6000-8k.wav")
    assert in_band == pytest.approx(rms_db(tmp_path / "1000.wav"), abs=1.0)  # passes intact
    assert in_band - above >= 40  # 6 kHz (aliasing to 2 kHz if unfiltered) is gone


@needs_ffmpeg
def test_a_dropped_in_recording_becomes_both_formats(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tone(src / "raw.wav", 440, rate=44100, seconds=1.5)
    prompts = {"greeting": Prompt("greeting", "Xin chào", "raw.wav")}
    out = tmp_path / "out"
    (first,) = build(prompts, src, out)
    assert first.changed
    with wave.open(str(out / "greeting.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
    sln = (out / "greeting.sln16").stat().st_size
    assert sln == pytest.approx(2 * 16000 * wav_seconds(out / "greeting.wav"), rel=0.02)
    (again,) = build(prompts, src, out)
    assert not again.changed  # nothing new: nothing rebuilt


def check_command(out_dir: Path) -> int:
    return main(
        [
            "prompts",
            "check",
            "--routing",
            str(ROOT / "routing" / "hotline.yaml"),
            "--manifest",
            str(ROOT / "prompts" / "manifest.yaml"),
            "--dialplan",
            str(ROOT / "dialplan" / "hotline.conf"),
            "--out",
            str(out_dir),
        ]
    )


def test_the_shipped_prompts_are_complete(capsys: pytest.CaptureFixture[str]) -> None:
    code = check_command(str(ROOT / "prompts" / "sounds" / "vi" / "hotline"))
    out, _ = capsys.readouterr()
    assert code == 0
    assert "fallback-operator" in out  # the dialplan's own prompts count too
    assert "unit-3002" in out  # a unit of today (UBND phường Vị Tân)
    assert "unit-3104" in out  # a unit that no longer exists: its old code is still dialled
    assert "moved-3104" in out  # "UBND Phường Bốn nay là UBND phường Vị Tân."


def test_check_names_what_is_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "sounds"
    shutil.copytree(ROOT / "prompts" / "sounds" / "vi" / "hotline", out_dir)
    (out_dir / "greeting.sln16").unlink()
    (out_dir / "unit-1001.wav").unlink()
    (out_dir / "unit-3104.sln16").unlink()  # an old unit's name (Phường IV, merged in 2025)
    (out_dir / "moved-3104.wav").unlink()  # its "… nay là UBND phường Vị Tân"
    code = check_command(str(out_dir))
    _, err = capsys.readouterr()
    assert code == 1
    assert "THIẾU greeting: .sln16" in err
    assert "THIẾU unit-1001: .wav" in err
    assert "THIẾU unit-3104: .sln16" in err
    assert "THIẾU moved-3104: .wav" in err
    assert "4 lời nhắc còn thiếu" in err
    assert check(["nope"], out_dir)[1][0].id == "nope"


@needs_ffmpeg
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_new_unit_gets_its_name_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routing = tmp_path / "routing" / "hotline.yaml"
    routing.parent.mkdir()
    text = (ROOT / "routing" / "hotline.yaml").read_text()
    # Vị Thủy's merger (NQ 1668/NQ-UBTVQH15 k.45): a new xã and an old thị trấn it took over
    added = (
        '\n  - {code: "3401", name: UBND xã Vị Thủy, kind: commune, endpoint: PJSIP/dv-3401,'
        ' valid_from: "2025-07-01"}'
        '\n  - {code: "3402", name: UBND thị trấn Nàng Mau, kind: commune,'
        ' endpoint: PJSIP/dv-3402, valid_until: "2025-06-30", replaced_by: "3401"}'
    )
    routing.write_text(text.replace("\nnodes:\n", added + "\nnodes:\n"))
    out = tmp_path / "sounds"
    shutil.copytree(ROOT / "prompts" / "sounds" / "vi" / "hotline", out)
    code = main(
        [
            "prompts",
            "build",
            "--routing",
            str(routing),
            "--manifest",
            str(ROOT / "prompts" / "manifest.yaml"),
            "--out",
            str(out),
        ]
    )
    printed, _ = capsys.readouterr()
    assert code == 0
    assert "3 lời nhắc được tạo" in printed  # only the new ones: the rest is unchanged
    for pid in ("unit-3401", "unit-3402", "moved-3402"):
        assert pid in printed
        assert wav_seconds(out / f"{pid}.wav") > 0.5
    # the "nay là" sentence is longer than either name alone
    assert wav_seconds(out / "moved-3402.wav") > wav_seconds(out / "unit-3401.wav") + 0.5
