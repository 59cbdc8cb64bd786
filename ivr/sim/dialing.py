"""Dialled legs (originate, ringing, answer, busy, no answer) and mixing bridges."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

from ivr.sim import wire
from ivr.sim.base import PbxBase
from ivr.sim.objects import Bridge, Channel, SimFailure, fail
from ivr.sim.scripts import ClerkKind


class Dialing(PbxBase):
    # --- dialling -------------------------------------------------------------------------------

    def originate(
        self,
        endpoint: str,
        *,
        app: str | None,
        app_args: str,
        caller_id: str,
        timeout: float,
        channel_id: str | None,
        originator: str | None,
        extension: str | None,
    ) -> Channel:
        if not endpoint:
            raise fail(400, "Endpoint must be specified")
        tech, _, resource = endpoint.partition("/")
        if not resource:
            raise fail(400, "Invalid endpoint specified")
        if not app and not extension:
            raise fail(400, "Application or extension must be specified")
        clerk = self.clerks.for_endpoint(endpoint)
        if tech.upper() != "PJSIP" or clerk.kind is ClerkKind.UNREACHABLE:
            raise SimFailure(500, {"error": "Allocation failed"})
        name, number = _parse_caller_id(caller_id)
        leg = Channel(
            id=channel_id or self.new_id(),
            name=f"{endpoint}-{next(self._ids):08x}",
            caller={"name": name, "number": number},
            connected={"name": name, "number": number},
            dialplan={
                "context": "from-desk",
                "exten": "s",
                "priority": 1,
                "app_name": "AppDial2",
                "app_data": "(Outgoing Line)",
            },
            inbound=False,
            created=wire.timestamp(),
            state="Down",
            endpoint=endpoint,
            originator=originator,
        )
        self.channels[leg.id] = leg
        args = [a for a in app_args.split(",") if a] if app_args else []
        asyncio.get_running_loop().call_soon(self._ring_leg, leg, clerk, timeout or 30.0, args)
        return leg

    def _dial_event(self, leg: Channel, status: str) -> None:
        self.emit(
            "Dial",
            dialstatus=status,
            forward="",
            dialstring=leg.endpoint.partition("/")[2],
            peer=leg.json(),
        )

    def _ring_leg(self, leg: Channel, clerk: Any, timeout: float, args: list[str]) -> None:
        if leg.gone:
            return
        self._dial_event(leg, "")
        if clerk.kind is ClerkKind.BUSY:  # a 486 comes without any 180 first
            self.later(min(clerk.ring_seconds, timeout), lambda: self._leg_busy(leg), leg)
            return
        leg.state = "Ringing"
        self.emit_ch("ChannelStateChange", leg)
        self._dial_event(leg, "RINGING")
        caller = self.calls.get(leg.originator or "")
        if caller is not None:
            caller.log.append(f"ringing:{leg.endpoint}")
        if clerk.kind is ClerkKind.ANSWER and clerk.ring_seconds < timeout:
            self.later(clerk.ring_seconds, lambda: self._leg_answers(leg, clerk, args), leg)
        self.later(timeout, lambda: self._leg_no_answer(leg), leg)

    def _leg_busy(self, leg: Channel) -> None:
        if leg.gone:
            return
        self.emit_ch("ChannelHangupRequest", leg, cause=17, tech_cause=486)
        self._dial_event(leg, "BUSY")
        self._destroy_leg(leg, 17, 486)

    def _leg_no_answer(self, leg: Channel) -> None:
        if leg.gone or leg.state == "Up":
            return
        self._destroy_leg(leg, 19, 480)

    def _destroy_leg(self, leg: Channel, cause: int, tech_cause: int) -> None:
        leg.gone = True
        for t in leg.timers:
            t.cancel()
        self.emit_ch(
            "ChannelDestroyed",
            leg,
            cause=cause,
            cause_txt=wire.CAUSE_TEXT[cause],
            tech_cause=tech_cause,
        )
        self.channels.pop(leg.id, None)

    def _leg_answers(self, leg: Channel, clerk: Any, args: list[str]) -> None:
        if leg.gone:
            return
        for t in leg.timers:
            t.cancel()
        leg.timers.clear()
        leg.state = "Up"
        self.emit_ch("ChannelStateChange", leg)
        self._dial_event(leg, "ANSWER")
        leg.in_stasis = True
        leg.app = self.app
        leg.dialplan = {
            **leg.dialplan,
            "app_name": "Stasis",
            "app_data": ",".join([self.app, *args]),
        }
        self.emit_ch("ChannelVarset", leg, variable="STASISSTATUS", value="")
        self.emit("StasisStart", args=args, channel=leg.json())
        leg.variables["talk_seconds"] = (
            "" if clerk.talk_seconds is None else str(clerk.talk_seconds)
        )
        # a clerk talks from the moment they pick up, as a real phone does (the differential test
        # found the simulator counting from the bridge: 1.6 s longer on a directory call)
        leg.variables["answered_at"] = str(asyncio.get_running_loop().time())

    # --- bridges --------------------------------------------------------------------------------

    def create_bridge(self, bridge_id: str | None, name: str) -> Bridge:
        bid = bridge_id or str(uuid.uuid4())
        bridge = self.bridges.get(bid)
        if bridge is None:
            bridge = Bridge(bid, name, wire.timestamp())
            self.bridges[bid] = bridge
        return bridge

    def get_bridge(self, bridge_id: str) -> Bridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise fail(404, "Bridge not found")
        return bridge

    def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        bridge = self.get_bridge(bridge_id)
        if not channel_ids:
            raise fail(400, "Missing parameter channel")
        chans = []
        for cid in channel_ids:
            ch = self.channels.get(cid)
            if ch is None or ch.gone:
                raise fail(400, "Channel not found")
            if not ch.in_stasis:
                raise fail(422, "Channel not in Stasis application")
            chans.append(ch)
        entered = []
        for ch in chans:
            if ch.bridge == bridge.id:
                continue
            ch.bridge = bridge.id
            bridge.channels.append(ch.id)
            entered.append(ch)
            self.emit("ChannelEnteredBridge", bridge=bridge.json(), channel=ch.json())
        if entered and len(bridge.channels) == 2:
            self._peers_meet(*(self.channels[c] for c in bridge.channels))
        for ch in chans:
            others = [c for c in bridge.channels if c != ch.id]
            if others:
                peer = self.channels[others[0]]
                self.mark(ch, "bridged")
                call = self.calls.get(ch.id)
                if call is not None:
                    call.bridged_with = peer.endpoint
                    call.log.append(f"talking:{peer.endpoint}")
                talk = ch.variables.get("talk_seconds")
                if not ch.inbound and talk:
                    left = float(talk) - self._since_answer(ch)
                    self.later(left, functools.partial(self._clerk_hangs_up, ch), ch)

    def _peers_meet(self, first: Channel, second: Channel) -> None:
        """Two channels now share a bridge: Asterisk sets BRIDGEPEER and BRIDGEPVTCALLID on both
        three times (the later one first), and each learns the other's connected line."""

        def peer_variables() -> None:
            for ch, peer in ((second, first), (first, second)):
                ch.variables["BRIDGEPEER"] = peer.name
                self.emit_ch("ChannelVarset", ch, variable="BRIDGEPEER", value=peer.name)
                self.emit_ch(
                    "ChannelVarset",
                    ch,
                    variable="BRIDGEPVTCALLID",
                    value=peer.json()["protocol_id"],
                )

        peer_variables()
        peer_variables()
        second.connected = dict(first.caller)
        self.emit_ch("ChannelConnectedLine", second)
        peer_variables()
        first.connected = dict(second.caller)
        self.emit_ch("ChannelConnectedLine", first)

    def _since_answer(self, leg: Channel) -> float:
        """Nominal seconds since the desk picked up (0 when unknown)."""
        at = leg.variables.get("answered_at")
        if not at:
            return 0.0
        return (asyncio.get_running_loop().time() - float(at)) * self.speed

    def _clerk_hangs_up(self, leg: Channel) -> None:
        if leg.gone:
            return
        caller = self.calls.get(leg.originator or "")
        if caller is not None:
            caller.log.append("clerk-hung-up")
        self._tear_down(leg, cause=None, by_app=False, destroy_cause=16)

    def _leave_bridge(self, ch: Channel) -> None:
        bridge = self.bridges.get(ch.bridge or "")
        ch.bridge = None
        if bridge is None:
            return
        ch.left_bridge_at = self.nominal()
        if ch.variables.pop("BRIDGEPEER", None) is not None:
            for var in ("BRIDGEPEER", "BRIDGEPVTCALLID"):
                self.emit_ch("ChannelVarset", ch, variable=var, value="")
        if ch.id in bridge.channels:
            bridge.channels.remove(ch.id)
        self.emit("ChannelLeftBridge", bridge=bridge.json(), channel=ch.json())

    def _bridge_peer(self, ch: Channel) -> Channel | None:
        bridge = self.bridges.get(ch.bridge or "")
        others = [c for c in (bridge.channels if bridge else []) if c != ch.id]
        return self.channels.get(others[0]) if others else None

    def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        bridge = self.get_bridge(bridge_id)
        ch = self.get(channel_id)
        if ch.id not in bridge.channels:
            raise fail(422, "Channel not in this bridge")
        self._leave_bridge(ch)

    def destroy_bridge(self, bridge_id: str) -> None:
        bridge = self.bridges.pop(bridge_id, None)
        if bridge is None:
            raise fail(404, "Bridge not found")
        for cid in list(bridge.channels):
            ch = self.channels.get(cid)
            if ch is not None:
                self.bridges[bridge_id] = bridge
                self._leave_bridge(ch)
                self.bridges.pop(bridge_id, None)
        self.emit("BridgeDestroyed", bridge=bridge.json())


def _parse_caller_id(text: str) -> tuple[str, str]:
    if "<" in text and text.endswith(">"):
        name, _, number = text[:-1].partition("<")
        return name.strip().strip('"'), number.strip()
    return "", text.strip()
