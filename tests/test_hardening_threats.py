"""The threat model's checkable claims (README "Mô hình đe doạ / Threat model", issue 14
deliverable 5): every address `ivr` listens on or calls by default is loopback."""

from __future__ import annotations

import inspect
import ipaddress
from dataclasses import fields
from urllib.parse import urlsplit

import pytest

from ivr.agi.server import AgiServer
from ivr.config import Settings

from .conftest import ROOT


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


ADDRESSES = [f.name for f in fields(Settings) if f.name.endswith("_address")]


@pytest.mark.parametrize("name", ADDRESSES)
def test_every_default_address_is_loopback(name: str) -> None:
    value = getattr(Settings(), name)
    if value:  # empty: not used
        assert _is_loopback(value.rpartition(":")[0]), f"{name} = {value}"


def test_ari_is_reached_on_loopback_by_default() -> None:
    assert _is_loopback(urlsplit(Settings().ari_url).hostname or "")


def test_fastagi_listens_on_loopback_by_default() -> None:
    assert _is_loopback(inspect.signature(AgiServer.start).parameters["host"].default)


def test_the_readme_states_the_threat_model() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Mô hình đe doạ / Threat model", 1)[1].split("\n## ", 1)[0]
    for port in ("5060", "8088", "5038", "4573", "9108"):
        assert port in section
    for secret in ("ARI password", "AMI secret", "SIP passwords", "database URL"):
        assert secret in section
