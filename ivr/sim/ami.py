"""The simulator's AMI side: login, PJSIPShowEndpoints, Ping, and phones coming and going.

Messages are written as Asterisk 22 writes them (shared/ami/traces): CRLF lines, a blank line
after each message, the one-line greeting, and a phone's change as PeerStatus, then
DeviceStateChange, then ContactStatus.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class SimPhone:
    name: str
    reachable: bool = True
    registered: bool = True


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
            {"Event": "ContactStatus", "Privilege": "system,all",
             "URI": f"sip:{name}@127.0.0.1:5070", "ContactStatus": status, "AOR": name},
        ])  # fmt: skip

    def hangup(self, uniqueid: str, cause: int, text: str) -> None:
        self._broadcast(
            [
                {
                    "Event": "Hangup",
                    "Privilege": "call,all",
                    "Uniqueid": uniqueid,
                    "Linkedid": uniqueid,
                    "Cause": str(cause),
                    "Cause-txt": text,
                }
            ]
        )

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
                    authed = (action.get("username"), action.get("secret")) == (
                        self.user,
                        self.secret,
                    )
                    writer.write(_encode({
                        "Response": "Success" if authed else "Error", "ActionID": aid,
                        "Message": "Authentication accepted" if authed
                        else "Authentication failed"}))  # fmt: skip
                    if authed:
                        self._clients.append(writer)
                        writer.write(
                            _encode(
                                {
                                    "Event": "FullyBooted",
                                    "Privilege": "system,all",
                                    "Status": "Fully Booted",
                                }
                            )
                        )
                elif not authed:
                    writer.write(
                        _encode(
                            {"Response": "Error", "ActionID": aid, "Message": "Permission denied"}
                        )
                    )
                elif name == "pjsipshowendpoints":
                    writer.write(self._endpoints(aid))
                elif name == "ping":
                    writer.write(
                        _encode(
                            {
                                "Response": "Success",
                                "ActionID": aid,
                                "Ping": "Pong",
                                "Timestamp": "0.000000",
                            }
                        )
                    )
                else:
                    writer.write(
                        _encode(
                            {
                                "Response": "Error",
                                "ActionID": aid,
                                "Message": "Invalid/unknown command",
                            }
                        )
                    )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if writer in self._clients:
                self._clients.remove(writer)
            writer.close()

    def _endpoints(self, aid: str) -> bytes:
        out = [
            _encode(
                {
                    "Response": "Success",
                    "ActionID": aid,
                    "EventList": "start",
                    "Message": "A listing of Endpoints follows, presented as EndpointList events",
                }
            )
        ]
        for p in self.phones.values():
            contacts = f"{p.name}/sip:{p.name}@127.0.0.1:5070," if p.registered else ""
            state = "Not in use" if p.reachable and p.registered else "Unavailable"
            out.append(_encode({
                "Event": "EndpointList", "ActionID": aid, "ObjectType": "endpoint",
                "ObjectName": p.name, "Transport": "transport-udp", "Aor": p.name, "Auths": "",
                "OutboundAuths": "", "Contacts": contacts, "DeviceState": state,
                "ActiveChannels": "0"}))  # fmt: skip
        out.append(
            _encode(
                {
                    "Event": "EndpointListComplete",
                    "ActionID": aid,
                    "EventList": "Complete",
                    "ListItems": str(len(self.phones)),
                }
            )
        )
        return b"".join(out)


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
