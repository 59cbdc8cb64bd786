"""The writer's rollup upkeep, with one read: what a batch leaves, from what its writes return.

The rollups move by the difference between what a batch's calls are made of before it and after
it. The before is read in the batch's transaction. The after is what the writes themselves give
back: the call upserts return the rows they wrote (not a late "in progress" version, which
reopens nothing), the step inserts the steps not stored already (RETURNING, in
:mod:`ivr.store.sql`). The writer read both before and after; the after's read is gone, half
of its reads, and the database stays the one word on what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ivr.store.rollups import FACT_COLUMNS, FACT_STEPS, Delta, Stored, step_fact


def after(
    before: Mapping[str, Stored], calls: Iterable[Any], steps: Iterable[Any]
) -> dict[str, Stored]:
    """What the calls are made of after the writes: ``before`` (the calls as stored, by key),
    with ``calls`` (the call rows written, with the FACT_COLUMNS) and ``steps`` (the steps
    inserted, with their call, number and STEP_FACT_COLUMNS) as the database returned them."""
    found = {key: Stored(s.row, dict(s.steps)) for key, s in before.items()}
    for row in calls:
        had = found.get(row.id)
        found[row.id] = Stored({c: getattr(row, c) for c in FACT_COLUMNS}, had.steps if had else {})
    for s in steps:
        call = found.get(s.call_id)
        if call is not None and s.kind in FACT_STEPS:  # a step's call is stored: a foreign key
            call.steps[s.seq] = step_fact(s)
    return found


def delta(before: Mapping[str, Stored], calls: Iterable[Any], steps: Iterable[Any]) -> Delta:
    """What the batch changes in the rollups."""
    now = after(before, calls, steps)
    return Delta.between((s.fact() for s in before.values()), (s.fact() for s in now.values()))
