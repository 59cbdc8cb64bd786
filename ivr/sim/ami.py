"""The simulator's AMI side: login, the PJSIP listings, Ping, Logoff, and phones coming and going.

Messages are written as Asterisk 22 writes them (shared/ami/traces, replayed by
tests/test_conformance_ami.py): CRLF lines, a blank line after each message, the one-line
greeting, FullyBooted and SuccessfulAuth after a login with events on (none with ``Events: off``),
a phone's change as PeerStatus, then DeviceStateChange, then ContactStatus, and static contacts
that PJSIPShowContacts does not list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field


@dataclass
class SimPhone:
    """A PJSIP endpoint with its AOR; ``registered``: it has a contact (a static one here)."""

    name: str
    reachable: bool = True
    registered: bool = True
    uri: str = ""  # default sip:<name>@127.0.0.1:5070
    qualify_frequency: int = 0
    qualify_timeout: float = 3.0

    @property
    def contact(self) -> str:
        return (self.uri or f"sip:{self.name}@127.0.0.1:5070") if self.registered else ""

    @property
    def device_state(self) -> str:
        return "Not in use" if self.reachable and self.registered else "Unavailable"

    def aor(self) -> dict[str, str]:
        """The AOR's settings as AorList/AorDetail show them."""
        return {
            "ObjectType": "aor", "ObjectName": self.name, "MinimumExpiration": "60",
            "DefaultExpiration": "3600", "QualifyTimeout": f"{self.qualify_timeout:.6f}",
            "Qualify2xxOnly": "false", "Mailboxes": "", "SupportPath": "false",
            "RemoveUnavailable": "false", "VoicemailExtension": "",
            "MaxContacts": "0" if self.registered else "1", "AuthenticateQualify": "false",
            "Contacts": f"{self.name}/{self.contact}" if self.registered else "",
            "MaximumExpiration": "7200", "QualifyFrequency": str(self.qualify_frequency),
            "RemoveExisting": "false", "OutboundProxy": "",
        }  # fmt: skip


@dataclass
class AmiSim:
    user: str = "ivr"
    secret: str = "secret"
    phones: dict[str, SimPhone] = field(default_factory=dict)
    port: int = 0
    _server: asyncio.Server | None = None
    _clients: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        await self.drop_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def drop_clients(self) -> None:
        for w in list(self._clients):
            w.close()
        self._clients.clear()

    def set_reachable(self, name: str, reachable: bool) -> None:
        phone = self.phones.setdefault(name, SimPhone(name))
        phone.reachable = reachable
        status = "Reachable" if reachable else "Unreachable"
        self._broadcast([
            {"Event": "PeerStatus", "Privilege": "system,all", "ChannelType": "PJSIP",
             "Peer": f"PJSIP/{name}", "PeerStatus": status},
            {"Event": "DeviceStateChange", "Privilege": "call,all", "Device": f"PJSIP/{name}",
             "State": "NOT_INUSE" if reachable else "UNAVAILABLE"},
            {"Event": "ContactStatus", "Privilege": "system,all", "URI": phone.contact,
             "ContactStatus": status, "AOR": name, "EndpointName": name,
             "RoundtripUsec": "496" if reachable else "0"},
        ])  # fmt: skip

    def hangup(
        self, uniqueid: str, cause: int, text: str, channel: dict[str, str] | None = None
    ) -> None:
        """A channel's Hangup event; ``channel``: its Channel… to Priority headers and Linkedid
        (as the trace's), else those of an answered caller in from-caller."""
        about = {
            "Channel": "PJSIP/caller-00000001", "ChannelState": "6", "ChannelStateDesc": "Up",
            "CallerIDNum": "caller", "CallerIDName": "caller",
            "ConnectedLineNum": "<unknown>", "ConnectedLineName": "<unknown>",
            "Language": "en", "AccountCode": "", "Context": "from-caller", "Exten": "100",
            "Priority": "2", "Linkedid": uniqueid, **(channel or {}),
        }  # fmt: skip
        linked = about.pop("Linkedid")
        self._broadcast([
            {"Event": "Hangup", "Privilege": "call,all", **about, "Uniqueid": uniqueid,
             "Linkedid": linked, "Cause": str(cause), "Cause-txt": text},
        ])  # fmt: skip

    def _broadcast(self, messages: list[dict[str, str]]) -> None:
        data = b"".join(_encode(m) for m in messages)
        for w in self._clients:
            w.write(data)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        authed = False
        try:
            while True:
                action = await _read_message(reader)
                if action is None:
                    break
                name = action.get("action", "").lower()
                aid = action.get("actionid", "")
                if name == "login":
                    authed = self._login(writer, action, aid)
                elif not authed:
                    writer.write(_encode(_reply(aid, "Error", Message="Permission denied")))
                elif name == "logoff":
                    writer.write(
                        _encode(_reply(aid, "Goodbye", Message="Thanks for all the fish."))
                    )
                    await writer.drain()
                    break
                else:
                    writer.write(self._answer(name, aid, action))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if writer in self._clients:
                self._clients.remove(writer)
            writer.close()

    def _login(self, writer: asyncio.StreamWriter, action: dict[str, str], aid: str) -> bool:
        ok = (action.get("username"), action.get("secret")) == (self.user, self.secret)
        message = "Authentication accepted" if ok else "Authentication failed"
        writer.write(_encode(_reply(aid, "Success" if ok else "Error", Message=message)))
        if ok and action.get("events", "on").lower() != "off":
            self._clients.append(writer)
            writer.write(
                _encode(
                    {
                        "Event": "FullyBooted",
                        "Privilege": "system,all",
                        "Uptime": "229",
                        "LastReload": "229",
                        "Status": "Fully Booted",
                    }
                )
            )
            writer.write(_encode({
                "Event": "SuccessfulAuth", "Privilege": "security,all",
                "EventTV": _now(), "Severity": "Informational", "Service": "AMI",
                "EventVersion": "1", "AccountID": self.user, "SessionID": f"0x{id(writer):x}",
                "LocalAddress": f"IPV4/TCP/127.0.0.1/{self.port}",
                "RemoteAddress": "IPV4/TCP/127.0.0.1/0", "UsingPassword": "0",
                "SessionTV": _now()}))  # fmt: skip
        return ok

    def _answer(self, name: str, aid: str, action: dict[str, str]) -> bytes:
        if name == "pjsipshowendpoints":
            return self._endpoints(aid)
        if name == "pjsipshowaors":
            return self._aors(aid)
        if name == "pjsipshowendpoint":
            return self._endpoint(aid, action.get("endpoint", ""))
        if name == "pjsipshowcontacts":
            # static contacts are no "contacts" to it; the stray LF is Asterisk's own
            return _encode(_reply(aid, "Error", Message="No Contacts found\n"))
        if name == "ping":
            return _encode(_reply(aid, "Success", Ping="Pong", Timestamp="0.000000"))
        return _encode(_reply(aid, "Error", Message="Invalid/unknown command"))

    def _listing(self, aid: str, what: str, items: list[dict[str, str]], done: str) -> bytes:
        start = _reply(aid, "Success", EventList="start", Message=what)
        end = {"Event": done, "ActionID": aid, "EventList": "Complete",
               "ListItems": str(len(items))}  # fmt: skip
        return b"".join(_encode(m) for m in [start, *items, end])

    def _endpoints(self, aid: str) -> bytes:
        items = [
            {"Event": "EndpointList", "ActionID": aid, "ObjectType": "endpoint",
             "ObjectName": p.name, "Transport": "transport-udp", "Aor": p.name, "Auths": "",
             "OutboundAuths": "", "Contacts": f"{p.name}/{p.contact}," if p.registered else "",
             "DeviceState": p.device_state, "ActiveChannels": "0"}
            for p in self.phones.values()
        ]  # fmt: skip
        what = "A listing of Endpoints follows, presented as EndpointList events"
        return self._listing(aid, what, items, "EndpointListComplete")

    def _aors(self, aid: str) -> bytes:
        items = [{"Event": "AorList", "ActionID": aid, **p.aor()} for p in self.phones.values()]
        what = "A listing of AORs follows, presented as AorList events"
        return self._listing(aid, what, items, "AorListComplete")

    def _endpoint(self, aid: str, name: str) -> bytes:
        """PJSIPShowEndpoint: the endpoint, its transport, its AOR and its contact's status
        (the endpoint's and the transport's long settings lists are cut to what identifies them)."""
        p = self.phones.get(name)
        if p is None:
            return _encode(_reply(aid, "Error", Message=f"Unable to retrieve endpoint {name}"))
        items = [
            {"Event": "EndpointDetail", "ActionID": aid, "ObjectType": "endpoint",
             "ObjectName": name, "Aors": name, "Transport": "transport-udp",
             "DeviceState": p.device_state, "ActiveChannels": "0"},
            {"Event": "TransportDetail", "ActionID": aid, "ObjectType": "transport",
             "ObjectName": "transport-udp", "Protocol": "udp", "Bind": "127.0.0.1:5060",
             "EndpointName": name},
            {"Event": "AorDetail", "ActionID": aid, **p.aor(),
             "TotalContacts": "1" if p.registered else "0", "ContactsRegistered": "0",
             "EndpointName": name},
        ]  # fmt: skip
        if p.registered:
            items.append({
                "Event": "ContactStatusDetail", "ActionID": aid, "AOR": name, "URI": p.contact,
                "UserAgent": "", "RegExpire": "0",
                "Status": "Reachable" if p.reachable else "Unreachable",
                "RoundtripUsec": "496" if p.reachable else "N/A", "EndpointName": name,
                "ID": f"{name}@@{abs(hash(p.contact)):032x}"[:len(name) + 34],
                "AuthenticateQualify": "0", "OutboundProxy": "", "Path": "",
                "QualifyFrequency": "0", "QualifyTimeout": "3.000", "Qualify2xxOnly": "0",
            })  # fmt: skip
        what = "Following are Events for each object associated with the Endpoint"
        return self._listing(aid, what, items, "EndpointDetailComplete")


def _reply(aid: str, response: str, **fields: str) -> dict[str, str]:
    return {"Response": response, "ActionID": aid, **fields}


def _now() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def _encode(message: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in message.items()).encode() + b"\r\n"


async def _read_message(reader: asyncio.StreamReader) -> dict[str, str] | None:
    msg: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line:
            return None
        text = line.decode(errors="replace").rstrip("\r\n")
        if text == "":
            if msg:
                return msg
            continue
        key, _, value = text.partition(":")
        msg[key.strip().lower()] = value.strip()
