"""The routing as the console sees it: the version in force, why a newer file was refused, the
difference from the previous version, and a simulated call through it.

A reload here takes the file only when it loads and passes every check; otherwise the routing
in force stays and the problems are shown. (The controllers watch the same file and follow the
same rule on their own: a bad file never replaces a good running one.)
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow.engine import run_call
from ivr.flow.record import CallRecord, MemoryObserver
from ivr.prompts.manifest import ManifestError, default_manifest_path, load_manifest
from ivr.routing.load import RoutingError, parse_routing
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.dry_run import HANGUP, SILENCE, FakeSession
from ivr.sim.scripts import ClerkKind


@dataclass
class Version:
    routing: Routing
    text: str
    taken_at: dt.datetime


@dataclass
class RoutingDesk:
    path: Path
    prompts: Path | None = None
    current: Version | None = None
    previous: Version | None = None
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
        self.previous, self.current = self.current, Version(routing, text, dt.datetime.now(dt.UTC))
        return True

    def diff(self) -> list[str]:
        if self.current is None or self.previous is None:
            return []
        return list(
            difflib.unified_diff(
                self.previous.text.splitlines(),
                self.current.text.splitlines(),
                f"phiên bản {self.previous.routing.version}",
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
