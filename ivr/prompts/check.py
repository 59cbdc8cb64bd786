"""`ivr prompts check`: every prompt the routing and the dialplan need is built in every format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.prompts.build import FORMATS, wav_seconds


@dataclass(frozen=True)
class Missing:
    id: str
    formats: tuple[str, ...]


def check(needed: list[str], out_dir: Path) -> tuple[list[tuple[str, float]], list[Missing]]:
    present, missing = [], []
    for pid in needed:
        lacking = tuple(ext for ext in FORMATS if not (out_dir / f"{pid}{ext}").exists())
        if lacking:
            missing.append(Missing(pid, lacking))
        else:
            present.append((pid, wav_seconds(out_dir / f"{pid}.wav")))
    return present, missing
