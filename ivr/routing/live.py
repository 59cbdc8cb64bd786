"""The routing in force, reloaded on SIGHUP and when the file changes.

A bad file never replaces a good one: the problems are logged and the running routing stays.
Calls take the routing at their start and keep it, so a reload never changes a call midway.
The watcher parses in a worker thread, so a big or hostile file never stalls calls, and no
error in a reload (the file, the prompt manifest, anything) ever ends the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from ivr.prompts.manifest import ManifestError
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
        self.rejected = asyncio.Event()  # set at each file refused
        self._asked = asyncio.Event()

    def __call__(self) -> Routing:
        return self.current

    def reload(self) -> bool:
        """Try the file again, here and now; True when a new version is in force."""
        self._stamp = self._file_stamp()
        return self._take(self._load())

    def request_reload(self) -> None:
        """Ask the watcher to reload now (the SIGHUP handler): it parses off the event loop."""
        self._asked.set()

    async def watch(self, interval: float = 2.0) -> None:
        """Poll the file; reload when its time stamp or size changes, or when asked to."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._asked.wait(), interval)
            if self._asked.is_set() or self._file_stamp() != self._stamp:
                self._asked.clear()
                self._stamp = self._file_stamp()
                self._take(await asyncio.to_thread(self._load))

    def _load(self) -> Routing | list[str]:
        """The new routing, or why it was refused."""
        try:
            return load_routing(self.path, self.prompt_ids())
        except RoutingError as e:
            return [str(p) for p in e.problems]
        except ManifestError as e:
            return [f"danh mục lời nhắc hỏng, chưa nạp lại {self.path}: {e}"]
        except Exception as e:  # the running routing must outlive any bug in a reload
            log.exception("routing reload failed unexpectedly")
            return [f"{self.path}: lỗi không lường trước khi nạp lại: {type(e).__name__}"]

    def _take(self, new: Routing | list[str]) -> bool:
        if isinstance(new, list):
            for problem in new:
                log.error(
                    "routing file rejected; keeping the running version",
                    problem=problem,
                    running=self.current.version,
                )
            self.rejected.set()
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
