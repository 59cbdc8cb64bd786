"""The simulator's ARI event filter (PUT /applications/{app}/eventFilter): the schema's rules,
and events of a filtered type never written to the app's websocket, as Asterisk does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from ivr.ari.client import AriClient, basic_auth
from ivr.ari.errors import BadRequest, NotFound
from ivr.ari.event_types import UNWANTED
from ivr.sim.event_filter import EventFilter
from ivr.sim.http import AsteriskSim
from ivr.sim.objects import SimFailure
from ivr.sim.scripts import CallerScript

# --- the schema's rules -------------------------------------------------------------------------


def _f(**lists: list[str]) -> dict[str, Any]:
    return {key: [{"type": t} for t in types] for key, types in lists.items()}


def test_no_filter_admits_every_type() -> None:
    assert EventFilter().admits("ChannelVarset")


def test_a_disallowed_list_refuses_only_its_types() -> None:
    rules = EventFilter().updated(_f(allowed=[], disallowed=["ChannelVarset", "BridgeCreated"]))
    assert not rules.admits("ChannelVarset")
    assert not rules.admits("BridgeCreated")
    assert rules.admits("StasisStart")


def test_an_allowed_list_admits_only_its_types() -> None:
    rules = EventFilter().updated(_f(allowed=["StasisStart", "StasisEnd"]))
    assert rules.admits("StasisStart")
    assert rules.admits("StasisEnd")
    assert not rules.admits("ChannelDtmfReceived")


def test_disallowed_wins_over_allowed_and_types_are_case_sensitive() -> None:
    rules = EventFilter().updated(
        _f(allowed=["StasisStart", "StasisEnd"], disallowed=["StasisEnd"])
    )
    assert rules.admits("StasisStart")
    assert not rules.admits("StasisEnd")
    assert not EventFilter().updated(_f(allowed=["stasisstart"])).admits("StasisStart")


def test_a_list_left_out_keeps_its_value_an_empty_one_or_empty_body_clears() -> None:
    both = EventFilter().updated(_f(allowed=["StasisStart"], disallowed=["ChannelVarset"]))
    only_disallowed = both.updated(_f(disallowed=["BridgeCreated"]))
    assert only_disallowed == EventFilter(("StasisStart",), ("BridgeCreated",))
    assert only_disallowed.updated(_f(allowed=[])) == EventFilter((), ("BridgeCreated",))
    assert both.updated(None) == EventFilter()
    assert both.updated({}) == both


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"allowed": {"type": "StasisStart"}},
        {"disallowed": ["StasisStart"]},
        {"allowed": [{"name": "StasisStart"}]},
        {"allowed": [{"type": 7}]},
    ],
)
def test_a_malformed_filter_is_refused_with_400(body: Any) -> None:
    with pytest.raises(SimFailure) as e:
        EventFilter().updated(body)
    assert e.value.status == 400


# --- over the wire ------------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[AsteriskSim]:
    sim = AsteriskSim()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@asynccontextmanager
async def _websocket(sim: AsteriskSim) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """The app's events websocket, read raw (the controller's reader drops unwanted types)."""
    connections = sim.connections + 1
    auth = {"Authorization": basic_auth(sim.user, sim.password)}
    async with aiohttp.ClientSession() as http:
        url = sim.base_url.replace("http://", "ws://") + f"/events?app={sim.app}"
        async with http.ws_connect(url, headers=auth) as ws:
            await asyncio.wait_for(sim.wait_connected(connections), 30)
            yield ws


async def _one_call_types(
    sim: AsteriskSim, client: AriClient, ws: aiohttp.ClientWebSocketResponse
) -> list[str]:
    """The event types the websocket carried for one call answered and hung up."""
    call = sim.call(CallerScript(()))
    await client.answer(call.channel.id)
    await client.hangup(call.channel.id)
    types: list[str] = []
    while not types or types[-1] != "StasisEnd":
        msg = await asyncio.wait_for(ws.receive(), 30)
        types.append(json.loads(msg.data)["type"])
    return types


async def test_filtered_types_never_reach_the_websocket(sim: AsteriskSim) -> None:
    async with (
        _websocket(sim) as ws,
        AriClient(sim.base_url, sim.user, sim.password, sim.app) as client,
    ):
        unfiltered = await _one_call_types(sim, client, ws)
        assert set(unfiltered) & set(UNWANTED)  # the call does make some
        await client.event_filter(UNWANTED)  # what the controller asks at every connection
        app = await client.request("GET", f"/applications/{sim.app}")
        assert app["events_disallowed"] == [{"type": t} for t in UNWANTED]
        assert app["events_allowed"] == []
        emitted_before, sent_before = len(sim.events), sim.sent_events
        filtered = await _one_call_types(sim, client, ws)
    assert not set(filtered) & set(UNWANTED)
    assert [t for t in unfiltered if t not in UNWANTED] == filtered
    assert len(sim.events) - emitted_before == len(unfiltered)  # emitted all the same
    assert sim.sent_events - sent_before == len(filtered)


async def test_an_allowed_list_and_a_reset_over_the_wire(sim: AsteriskSim) -> None:
    async with (
        _websocket(sim) as ws,
        AriClient(sim.base_url, sim.user, sim.password, sim.app) as client,
    ):
        body = _f(allowed=["StasisStart", "StasisEnd"])
        app = await client.request("PUT", f"/applications/{sim.app}/eventFilter", body=body)
        assert app["events_allowed"] == body["allowed"]
        assert await _one_call_types(sim, client, ws) == ["StasisStart", "StasisEnd"]
        await client.request("PUT", f"/applications/{sim.app}/eventFilter")  # empty: reset
        assert len(await _one_call_types(sim, client, ws)) > 2
        with pytest.raises(BadRequest):
            await client.request("PUT", f"/applications/{sim.app}/eventFilter", body=["x"])
        with pytest.raises(NotFound):
            await client.request("PUT", "/applications/nobody/eventFilter", body={})
