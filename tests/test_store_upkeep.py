"""The writer's rollup upkeep (ivr.store.upkeep: the after of a batch from what its writes return,
not read back) keeps the rollups equal to a rebuild's after every batch, however batches come:
versions in progress and finished, late versions, steps out of order, a step a report reads
numbered like one stored that it does not read, batches written again; on both backends."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.store.rows import Op
from ivr.store.sql import write_ops
from tests.test_rollups import kept_equals_rebuild, with_engine

DISPOSITIONS = ["in_progress", "answered", "abandoned", "voicemail", "no_answer", "fallback"]
# 16:30 UTC is 23:30 in Việt Nam: a minute either side of the local midnight moves a call's day
STARTS = [
    dt.datetime(2026, 11, 23, 16, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 23, 17, 5, tzinfo=dt.UTC),
]
STEPS = {
    "hours": ["open", "closed", "holiday"],
    "menu": ["chosen", "timeout"],
    "directory": ["found", "replaced", "not_found"],
    "dial": ["answered", "no_answer", "busy"],
    "prompt": ["played"],  # a kind no report reads
}
_examples = itertools.count()

calls = st.fixed_dictionaries(
    {
        "n": st.integers(0, 2),
        "disposition": st.sampled_from(DISPOSITIONS),
        "started": st.integers(0, 1),
        "branch": st.sampled_from([None, "1", "4"]),
        "unit": st.sampled_from([None, "3104"]),
        "endpoint": st.sampled_from([None, "PJSIP/cchc-4a"]),
        "digits": st.sampled_from(["", "4", "12"]),
        "wait_seconds": st.sampled_from([0.0, 3.5, 31.25]),
        "talk_seconds": st.sampled_from([0.0, 12.75]),
    }
).map(lambda c: ("call", c))
steps = st.fixed_dictionaries(
    {
        "n": st.integers(0, 2),
        "seq": st.integers(0, 5),
        "kind": st.sampled_from(sorted(STEPS)),
        "pick": st.integers(0, 2),
        "input": st.sampled_from(["", "4", "3104"]),
        "after": st.sampled_from([0, 7, 40]),
    }
).map(lambda s: ("step", s))
batches = st.lists(st.lists(st.one_of(calls, steps), min_size=1, max_size=6), max_size=6)


def _call(prefix: str, c: dict[str, Any]) -> dict[str, Any]:
    started = STARTS[c["started"]]
    return {
        "id": f"{prefix}/{c['n']}",
        "channel_id": f"{prefix}.{c['n']}",
        "node": "n1",
        "controller": "c1",
        "linked_id": f"{prefix}.{c['n']}",
        "caller_number": "0939000000",
        "started_at": started + dt.timedelta(seconds=c["n"]),
        "routing_version": "v1",
        **{k: c[k] for k in c if k not in ("n", "started")},
    }


def _step(prefix: str, s: dict[str, Any]) -> dict[str, Any]:
    outcomes = STEPS[s["kind"]]
    return {
        "call_id": f"{prefix}/{s['n']}",
        "seq": s["seq"],
        "node": "n",
        "kind": s["kind"],
        "outcome": outcomes[s["pick"] % len(outcomes)],
        "input": s["input"],
        "detail": "",
        "at": STARTS[0] + dt.timedelta(seconds=s["seq"] * 3 + s["after"]),
    }


def _batch(prefix: str, drawn: list[tuple[str, dict[str, Any]]], stored: set[str]) -> list[Op]:
    """The drawn records as the writer hands them over: a step only for a call it wrote."""
    ops: list[Op] = [("call", _call(prefix, row)) for kind, row in drawn if kind == "call"]
    known = stored | {row["id"] for _, row in ops}
    ops += [
        ("step", step)
        for kind, row in drawn
        if kind == "step" and (step := _step(prefix, row))["call_id"] in known
    ]
    stored |= known
    return ops


async def _check(engine: AsyncEngine, prefix: str, drawn: list[Any], again: int) -> None:
    stored: set[str] = set()
    made = [_batch(prefix, b, stored) for b in drawn]
    for ops in made + made[:again]:  # the first ``again`` batches written a second time
        await write_ops(engine, ops)
        await kept_equals_rebuild(engine)


def test_the_rollups_kept_batch_by_batch_equal_a_rebuild(db_url: str) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(drawn=batches, again=st.integers(0, 3))
    def run(drawn: list[Any], again: int) -> None:
        prefix = f"e{next(_examples)}"
        with_engine(db_url, lambda engine: _check(engine, prefix, drawn, again))

    run()
