"""The real-Asterisk load benchmark runs end to end at a gentle rate: its JSON has the promised
shape, and at one call per second every caller completes, with the dialplan menu, with the
project and with benchmarks.floor's minimal app (``--floor``), with nothing stranded or left
behind. Behaviour, not speed: no figure of time is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "attempted",
    "completed_caller",
    "completed_desk",
    "stranded",
    "asterisk_cpu_ms_per_call",
    "controller_cpu_ms_per_call",
    "key_to_invite_ms",
    "key_to_invite_parts_ms",
    "leaked_bridges",
    "leaked_channels",
}

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("sipp", "tcpdump", "debootstrap")),
        reason="needs root, sipp (sip-tester), tcpdump and debootstrap: scripts/setup as root",
    ),
]


def test_real_load_json_every_side_completes_and_nothing_leaks() -> None:
    command = ["--rate", "1", "--seconds", "5", "--json", "--floor"]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.real_load", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result) == {"dialplan", "ivr", "floor"}
    for side, figures in result.items():
        assert set(figures) == KEYS, side
        assert set(figures["key_to_invite_ms"]) == {"p50", "p99"}, side
        assert figures["attempted"] == 5, side
        assert figures["completed_caller"] == figures["attempted"], (side, figures)
        assert figures["stranded"] == 0, (side, figures)
        assert figures["leaked_bridges"] == 0, (side, figures)
        assert figures["leaked_channels"] == 0, (side, figures)
        assert figures["asterisk_cpu_ms_per_call"] > 0, side
    assert result["dialplan"]["controller_cpu_ms_per_call"] is None
    assert result["ivr"]["controller_cpu_ms_per_call"] > 0
    assert result["floor"]["controller_cpu_ms_per_call"] > 0
    assert result["floor"]["completed_desk"] == result["floor"]["attempted"]
    # the split of key -> INVITE: Asterisk's real event and originate found for every call
    assert result["dialplan"]["key_to_invite_parts_ms"] is None
    for side in ("ivr", "floor"):
        parts = result[side]["key_to_invite_parts_ms"]
        assert set(parts) == {"key_to_event", "event_to_originate", "originate_to_invite"}
        for name, part in parts.items():
            assert part["p50"] is not None, (side, name, parts)
            assert part["p99"] is not None, (side, name, parts)
