from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from ivr.prompts import load_manifest
from ivr.routing.load import load_routing
from ivr.routing.model import Routing

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ROUTING_FILE = ROOT / "routing" / "hotline.yaml"
MANIFEST_FILE = ROOT / "prompts" / "manifest.yaml"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn_time(text: str) -> dt.datetime:
    """A wall-clock time in Vietnam, e.g. "2026-11-25 09:00" (a Wednesday)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN)


@pytest.fixture(scope="session")
def prompt_ids() -> list[str]:
    return list(load_manifest(MANIFEST_FILE))


@pytest.fixture(scope="session")
def routing(prompt_ids: list[str]) -> Routing:
    return load_routing(ROUTING_FILE, prompt_ids)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """`ivr` commands configure structlog onto the captured stderr: undo it after each test."""
    yield
    structlog.reset_defaults()
