"""The console's settings, as the application holds them (built by `ivr web` or a test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ivr.web.roles import Viewer


@dataclass(frozen=True)
class WebConfig:
    recordings_dir: Path
    secret_key: bytes  # 32 bytes: the session cookie's encryption key
    routing: Path | None = None
    prompts: Path | None = None
    # the wallboard reads the store this often: with the writer's 0.5 s linger and its commit,
    # a change is on screen within about a second, under the 2 s issue 11 allows on a busy host
    poll_seconds: float = 0.5
    agency: Path | None = None  # the Ministry report's agency TOML (None: the example file)
    case_rules: Path | None = None  # complaint cases' rules TOML (None: NĐ 20/2008 defaults)
    routing_history: Path | None = None  # each routing version taken, for the diff (data_dir)


CONFIG: web.AppKey[WebConfig] = web.AppKey("config", WebConfig)
VIEWER: web.RequestKey[Viewer] = web.RequestKey("viewer", Viewer)  # who is asking, per request
