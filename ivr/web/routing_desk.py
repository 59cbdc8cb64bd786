"""The routing as the console sees it: the version in force, why a newer file was refused, the
difference from the previous version, and a simulated call through it.

A reload here takes the file only when it loads and passes every check; otherwise the routing
in force stays and the problems are shown. (The controllers watch the same file and follow the
same rule on their own: a bad file never replaces a good running one.)
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.prompts.manifest import ManifestError, default_manifest_path, load_manifest
from ivr.routing.load import RoutingError, parse_routing
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import HANGUP, SILENCE, FakeSession
from ivr.sim.scripts import ClerkKind

log = structlog.get_logger("ivr.web")


@dataclass
class Version:
    routing: Routing
    text: str
    taken_at: dt.datetime


@dataclass(frozen=True)
class Earlier:
    """A version in force before: its text and when it was taken (kept in ``history``)."""

    version: str
    text: str
    taken_at: dt.datetime


@dataclass
class RoutingDesk:
    path: Path
    prompts: Path | None = None
    # where each version taken is kept (<version>.yaml), so the difference from the previous
    # one survives a restart of the console; None: only this run's versions are known
    history: Path | None = None
    current: Version | None = None
    previous: Earlier | None = None
    problems: list[str] = field(default_factory=list)  # of the last refused attempt

    def routing(self) -> Routing | None:
        return self.current.routing if self.current is not None else None

    def reload(self) -> bool:
        """Take the file if it is good; True when a new version is in force."""
        try:
            data = self.path.read_bytes()
            ids = list(load_manifest(self.prompts or default_manifest_path(self.path)))
            routing = parse_routing(data, str(self.path), ids)
        except RoutingError as e:
            self.problems = [str(p) for p in e.problems]
            return False
        except (OSError, ManifestError) as e:
            self.problems = [f"{self.path}: {e}"]
            return False
        self.problems = []
        if self.current is not None and self.current.routing.version == routing.version:
            return False
        text = data.decode("utf-8", errors="replace")
        before = self.current
        self.current = Version(routing, text, dt.datetime.now(dt.UTC))
        if before is not None:
            self.previous = Earlier(before.routing.version, before.text, before.taken_at)
        else:
            self.previous = self._last_kept(routing.version)
        self._keep(self.current)
        return True

    def _keep(self, version: Version) -> None:
        """Write the version to the history (atomically; a failure is logged, never fatal)."""
        if self.history is None:
            return
        file = self.history / f"{version.routing.version}.yaml"
        try:
            self.history.mkdir(parents=True, exist_ok=True)
            if not file.exists():
                part = file.with_suffix(".part")
                part.write_text(version.text, encoding="utf-8")
                part.replace(file)
            os.utime(file)  # the last time it was taken into force
        except OSError as e:
            log.warning("không lưu được lịch sử định tuyến", folder=str(self.history), error=str(e))

    def _last_kept(self, current: str) -> Earlier | None:
        """The most recent other version in the history (the one in force before a restart)."""
        if self.history is None or not self.history.is_dir():
            return None
        kept = [f for f in self.history.glob("*.yaml") if f.stem != current]
        if not kept:
            return None
        last = max(kept, key=lambda f: f.stat().st_mtime)
        try:
            text = last.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        taken = dt.datetime.fromtimestamp(last.stat().st_mtime, dt.UTC)
        return Earlier(last.stem, text, taken)

    def diff(self) -> list[str]:
        if self.current is None or self.previous is None:
            return []
        return list(
            difflib.unified_diff(
                self.previous.text.splitlines(),
                self.current.text.splitlines(),
                f"phiên bản {self.previous.version}",
                f"phiên bản {self.current.routing.version}",
                lineterm="",
            )
        )


class BadKeys(ValueError):
    pass


def parse_keys(text: str) -> list[str]:
    """ "0 3002#" → ["0", "3002#"]; "_" is silence."""
    keys = text.split()
    bad = [k for k in keys if k != "_" and not set(k) <= set("0123456789*#")]
    if bad:
        raise BadKeys(f"'{bad[0]}' không phải phím điện thoại (0-9, *, #; _ là im lặng)")
    return [SILENCE if k == "_" else k for k in keys]


async def simulate(
    routing: Routing, at: dt.datetime, keys: list[str], clerk: ClerkKind, caller: str
) -> CallRecord:
    session = FakeSession(
        CallInfo("web.simulate", caller), inputs=[*keys, HANGUP], default_clerk=clerk
    )
    return await run_call(session, routing, MemoryObserver(), clock=lambda: at)
