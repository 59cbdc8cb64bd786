"""The settings of an Asterisk of its own (ivr.sim.sipp.own_asterisk): the soak benchmark's and
the second node of tests/test_multinode_real.py share no port and no folder with each other,
with the benchmark's (benchmarks/pbx.py) or with the tests' shared Asterisk, so they run at once."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.pbx import OWN
from benchmarks.soak import SOAK_ASTERISK
from ivr.sim.sipp import own_asterisk

from .test_multinode_real import SECOND

SHARED = {  # scripts/asterisk's defaults: the tests' shared Asterisk
    "IVR_ASTERISK_CACHE": "/var/cache/ivr",
    "IVR_ASTERISK_STATE": "/run/ivr-asterisk",
    "IVR_ASTERISK_HTTP_PORT": "18088",
    "IVR_ASTERISK_SIP_PORT": "15060",
    "IVR_ASTERISK_AMI_PORT": "15038",
    "IVR_ASTERISK_AGI_PORT": "14573",
    "IVR_ASTERISK_PHONE_PORT": "15070",
    "IVR_ASTERISK_CALLER_PORT": "15300",
    "IVR_ASTERISK_RTP_START": "20000",
    "IVR_ASTERISK_RTP_END": "20999",
}


def _taken(settings: dict[str, str]) -> set[object]:
    """The folders and ports an Asterisk takes (RTP: its whole range)."""
    rtp = range(int(settings["IVR_ASTERISK_RTP_START"]), int(settings["IVR_ASTERISK_RTP_END"]) + 1)
    ports = {int(v) for k, v in settings.items() if k.endswith("_PORT")}
    return {settings["IVR_ASTERISK_CACHE"], settings["IVR_ASTERISK_STATE"], *ports, *rtp}


def test_the_soak_the_second_node_the_benchmark_and_the_tests_share_nothing() -> None:
    users = [SHARED, OWN, SOAK_ASTERISK, SECOND]
    assert all(set(u) == set(SHARED) for u in users)  # every setting scripts/asterisk reads
    for a, b in itertools.combinations(users, 2):
        assert not _taken(a) & _taken(b), (a, b)


def test_the_benchmark_s_table_is_offset_one() -> None:
    assert own_asterisk("bench", 1) == OWN  # benchmarks/pbx.py's table, written out there


@pytest.mark.parametrize(("name", "offset"), [("soak", 0), ("soak", 10), ("../etc", 3), ("", 3)])
def test_a_bad_name_or_offset_is_refused(name: str, offset: int) -> None:
    with pytest.raises(ValueError, match=r"offset|name"):
        own_asterisk(name, offset)
