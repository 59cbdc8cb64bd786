"""One coroutine per call: walk the routing graph over a :class:`CallSession`.

Hang-up and unexpected errors are handled here, in one place: a hang-up ends the walk, an error
is logged with the call's context, recorded as ``errored``, and the channel is handed back to the
dialplan's fallback so the caller is never left in dead air.
"""

from __future__ import annotations

import asyncio

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars

from ivr.flow.context import CallContext, Clock, utc_now
from ivr.flow.hand_back import hand_back
from ivr.flow.nodes import run_node
from ivr.flow.record import CallObserver, CallRecord, CallTrace
from ivr.routing.model import Routing
from ivr.session import CallerHangup, CallSession

log = structlog.get_logger("ivr.flow")

MAX_NODES_PER_CALL = 100


async def run_call(
    session: CallSession,
    routing: Routing,
    observer: CallObserver,
    clock: Clock = utc_now,
) -> CallRecord:
    """Handle one call from arrival to its end; always returns the finished record.

    Every log line written while the call runs (here, in the session, anywhere below) carries
    the call's id, Asterisk's linked id and the node the call is in: they are bound to the
    task's structlog context for the call's lifetime.
    """
    info = session.info
    with bound_contextvars(
        call=info.channel_id, linkedid=info.linked_id or info.channel_id, node=None
    ):
        return await _walk(session, routing, observer, clock)


async def _walk(
    session: CallSession, routing: Routing, observer: CallObserver, clock: Clock
) -> CallRecord:
    info = session.info
    trace = CallTrace(info=info, routing_version=routing.version, started_at=clock())
    ctx = CallContext(session, routing, trace, clock, observer)
    bound = log.bind(caller=info.caller_number, routing=routing.version)
    observer.call_started(trace.snapshot())
    node_name: str | None = routing.hotline.entry
    cancelled: asyncio.CancelledError | None = None
    try:
        await session.answer()
        trace.answered_at = clock()
        for _ in range(MAX_NODES_PER_CALL):
            if node_name is None:
                break
            bind_contextvars(node=node_name)
            node_name = await run_node(ctx, node_name)
        else:
            raise RuntimeError(f"call visited {MAX_NODES_PER_CALL} nodes: a loop in the routing?")
        await session.hangup("normal")  # no-op when a node already ended the call
    except CallerHangup:
        trace.hangup_by = trace.hangup_by or "caller"  # the line below says so, and where
    except Exception as exc:  # the safety net: never leave a caller in dead air
        trace.error = f"{type(exc).__name__}: {exc}"
        bound.exception("call failed, handing back to the dialplan", node=node_name)
        await hand_back(session, lambda: routing.hotline.fallback, bound, gone=(CallerHangup,))
    except asyncio.CancelledError as exc:  # shutting down: the caller goes to the fallback too
        cancelled = exc
        trace.error = "shutdown: the controller stopped during the call"
        bound.warning("controller stopping, handing the call back", node=node_name)
        await hand_back(session, lambda: routing.hotline.fallback, bound, gone=(CallerHangup,))
    record = trace.snapshot(clock())
    observer.call_ended(record)
    bound.info(
        "call ended",
        disposition=record.disposition.value,
        hangup=record.hangup_by,
        path=">".join(record.path),
    )
    if cancelled is not None:
        raise cancelled
    return record
