"""The routing in force, reloaded on SIGHUP and when the file changes.

A bad file never replaces a good one: the problems are logged and the running routing stays.
Calls take the routing at their start and keep it, so a reload never changes a call midway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing

log = structlog.get_logger("ivr.routing")


class LiveRouting:
    def __init__(self, path: Path, prompt_ids: Callable[[], Iterable[str] | None]) -> None:
        self.path = path
        self.prompt_ids = prompt_ids
        self.current = load_routing(path, prompt_ids())
        self._stamp = self._file_stamp()
        self.reloaded = asyncio.Event()  # set at each new version taken up

    def __call__(self) -> Routing:
        return self.current

    def reload(self) -> bool:
        """Try the file again; True when a new version is in force."""
        self._stamp = self._file_stamp()
        try:
            new = load_routing(self.path, self.prompt_ids())
        except RoutingError as e:
            for problem in e.problems:
                log.error(
                    "routing file rejected; keeping the running version",
                    problem=str(problem),
                    running=self.current.version,
                )
            return False
        if new.version == self.current.version:
            return False
        log.info("routing reloaded", old=self.current.version, new=new.version)
        self.current = new
        self.reloaded.set()
        return True

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def watch(self, interval: float = 2.0) -> None:
        """Poll the file; reload when its time stamp or size changes."""
        while True:
            await asyncio.sleep(interval)
            if self._file_stamp() != self._stamp:
                self.reload()
