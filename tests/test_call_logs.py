"""Every log line written inside a call says which call, and which node it is in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from structlog.contextvars import get_contextvars, merge_contextvars
from structlog.testing import capture_logs

from ivr.flow.engine import run_call
from ivr.flow.record import MemoryObserver
from ivr.routing.model import Routing
from ivr.session import CallInfo, DialRequest, DialResult
from ivr.sim.dry_run import HANGUP, FakeSession

from .conftest import vn_time

device_log = structlog.get_logger("test.device")  # a logger that binds nothing itself


class ChattySession(FakeSession):
    """A dry-run session that logs, unbound, from inside the call's operations."""

    async def play(self, prompts: Sequence[str], *, interruptible: bool = True) -> None:
        device_log.info("playing", prompts=list(prompts))
        await super().play(prompts, interruptible=interruptible)

    async def dial(self, request: DialRequest) -> DialResult:
        device_log.info("dialling", endpoints=request.endpoints)
        return await super().dial(request)


async def _call(routing: Routing, channel: str, digits: list[str]) -> list[str]:
    session = ChattySession(
        CallInfo(channel, "0912345678", linked_id=f"linked-{channel}"), inputs=[*digits, HANGUP]
    )
    record = await run_call(
        session, routing, MemoryObserver(), clock=lambda: vn_time("2026-11-25 09:00")
    )
    return record.path


async def test_lines_inside_a_call_carry_its_id_and_node(routing: Routing) -> None:
    with capture_logs(processors=[merge_contextvars]) as lines:
        path = await _call(routing, "chan-1", ["4"])
    inside = [e for e in lines if e["event"] in ("playing", "dialling")]
    assert inside, "the call logged nothing from its session"
    for e in inside:
        assert e["call"] == "chan-1"
        assert e["linkedid"] == "linked-chan-1"
        assert e["node"] in path
    dialled = [e for e in inside if e["event"] == "dialling"]
    assert dialled
    assert all(routing.nodes[e["node"]].type == "dial" for e in dialled)
    assert get_contextvars() == {}, "the call's context leaked out of the call"


async def test_calls_in_parallel_keep_their_own_ids(routing: Routing) -> None:
    with capture_logs(processors=[merge_contextvars]) as lines:
        await asyncio.gather(
            asyncio.create_task(_call(routing, "chan-a", ["4"])),
            asyncio.create_task(_call(routing, "chan-b", ["6"])),
        )
    inside = [e for e in lines if e["event"] in ("playing", "dialling")]
    assert {e["call"] for e in inside} == {"chan-a", "chan-b"}
    assert all(e["linkedid"] == f"linked-{e['call']}" for e in inside)


async def test_a_call_ends_in_one_line_saying_who_hung_up_and_where(routing: Routing) -> None:
    with capture_logs(processors=[merge_contextvars]) as lines:
        path = await _call(routing, "chan-h", [])  # hangs up at the menu, pressing nothing
    ended = [e for e in lines if e["event"] == "call ended"]
    assert len(ended) == 1
    (line,) = ended
    assert (line["hangup"], line["node"]) == ("caller", path[-1])
    assert line["disposition"] == "abandoned"
    assert line["path"] == ">".join(path)
    info = [e for e in lines if e["log_level"] == "info" and e["event"] not in ("playing",)]
    assert info == [line], "the call's end was told more than once"
