"""The controller's garbage collector settings (ivr.ops.runtime), which `ivr run` applies once
everything is loaded."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ivr.ops.runtime import YOUNG, settle_gc


@pytest.fixture
def _gc_restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("_gc_restored")
def test_what_is_loaded_is_frozen_and_young_collections_come_less_often() -> None:
    _, middle, old = gc.get_threshold()
    loaded = _Node()  # alive when the controller settles: out of the collector's sight
    settle_gc()
    assert gc.get_threshold() == (YOUNG, middle, old)
    assert gc.get_freeze_count() > 0
    assert gc.get_referrers(loaded) == []  # its referrer (itself) sits in the frozen generation
    assert loaded.me is loaded


@pytest.mark.usefixtures("_gc_restored")
def test_a_cycle_a_call_leaves_is_still_collected() -> None:
    settle_gc()
    node = _Node()
    gone = weakref.ref(node)
    del node
    assert gone() is not None  # a cycle: reference counting alone never frees it
    gc.collect()
    assert gone() is None
