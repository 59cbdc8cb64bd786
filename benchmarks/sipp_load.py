"""SIPp under load: many callers from one SIPp process (each call its own caller number, so a
desk's INVITE can be matched to the caller's key in a packet capture), and the desk phones of a
branch as SIPp servers. Keys go as RFC 4733 events or SIP INFO. The scenarios are those of
ivr/sim/sipp.py, the one place SIPp's scenario text is written; only the process handling (many
calls per SIPp, its statistics file) is the load's own.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.sim.sipp import Bye, Keys, desk_xml
from ivr.sim.sipp import caller_xml as _caller_xml


def caller_xml(prefix: str, key_at_ms: int, bye_at_ms: int, folder: Path, rfc4733: bool) -> str:
    """Answered, presses 4 ``key_at_ms`` after the answer, hangs up at ``bye_at_ms``; each call
    of the process calls from its own number, ``prefix`` and the call's number in SIPp."""
    steps = [Keys(key_at_ms, "4"), Bye(bye_at_ms)]
    return _caller_xml(steps, f"{prefix}[call_number]", folder=folder if rfc4733 else None)


def answering_desk_xml(ring_ms: int) -> str:
    """Rings ``ring_ms``, answers, talks until the caller's side hangs up."""
    return desk_xml("answer", ring_ms, None)


def ringing_desk_xml() -> str:
    """Rings until Asterisk cancels it (the other desk answered)."""
    return desk_xml("no_answer")


@dataclass(frozen=True)
class Counts:
    created: int
    successful: int
    failed: int


class SippProcess:
    """One SIPp process with its statistics file; stopped by :meth:`stop` whatever happens."""

    def __init__(self, folder: Path, name: str, xml: str, args: list[str], media_port: int):
        self.folder = folder
        self.name = name
        self.stats = folder / f"{name}.csv"
        scenario = folder / f"{name}.xml"
        scenario.write_text(xml)
        self.proc = subprocess.Popen(
            [
                "sipp",
                *args,
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-mp",
                str(media_port),
                "-nostdin",
                "-trace_stat",
                "-stf",
                str(self.stats),
                "-fd",
                "1",
                "-trace_err",
                "-error_file",
                str(folder / f"{name}.err"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 10.0) -> None:
        """Soft exit (SIGUSR1: calls in progress finish), then SIGKILL after ``grace`` s."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR1)
            if not self.wait(grace):
                self.proc.kill()
                self.proc.wait()

    def counts(self) -> Counts:
        """The cumulative counters of the last statistics line SIPp wrote."""
        deadline = time.monotonic() + 5
        while not self.stats.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self.stats.exists():
            return Counts(0, 0, 0)
        with self.stats.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        if not rows:
            return Counts(0, 0, 0)
        last = rows[-1]
        return Counts(
            int(last["TotalCallCreated"]),
            int(last["SuccessfulCall(C)"]),
            int(last["FailedCall(C)"]),
        )

    def errors(self) -> str:
        err = self.folder / f"{self.name}.err"
        return err.read_text(errors="replace")[-2000:] if err.exists() else ""
