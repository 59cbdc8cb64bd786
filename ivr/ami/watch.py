"""AMI (panoramisk): the branch and desk phones' states, kept current, reconnecting by itself.

On every login it asks Asterisk to send only the events it reads (:data:`EVENT_FILTERS`, also
written into manager.conf by ``ivr asterisk-config``), then lists the endpoints (PJSIPShowEndpoints: static contacts appear there, not in
PJSIPShowContacts) and then follows PeerStatus / ContactStatus / DeviceStateChange events, which
Asterisk sends together when a phone comes or goes (shared/ami/traces).

A refused login (wrong ami_user / ami_secret) is not retried by panoramisk: :meth:`start`
raises :class:`AmiLoginRefused` at once, saying so, instead of waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from panoramisk import Manager

log = structlog.get_logger("ivr.ami")


class PhoneState(enum.StrEnum):
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    UNREGISTERED = "unregistered"  # no contact at all
    UNKNOWN = "unknown"


LABELS = {
    PhoneState.REACHABLE: "sẵn sàng",
    PhoneState.UNREACHABLE: "không liên lạc được",
    PhoneState.UNREGISTERED: "chưa đăng ký",
    PhoneState.UNKNOWN: "chưa rõ",
}


@dataclass(frozen=True, slots=True)
class Phone:
    name: str
    state: PhoneState
    device_state: str
    contacts: str


def _state(device_state: str, contacts: str) -> PhoneState:
    if not contacts.strip(" ,"):
        return PhoneState.UNREGISTERED
    if device_state.lower() in {"unavailable", "invalid"}:
        return PhoneState.UNREACHABLE
    return PhoneState.REACHABLE


# What the watch reads, and nothing else: Asterisk drops every other event of the 'system,call'
# classes before it is sent, so a call the controller does not handle costs it nothing (no read,
# no parse). The PJSIPShowEndpoints list is an action's answer, which filters never stop. A hang-up
# counts only for a caller of the hotline's contexts (its cause goes to the call's record).
HANGUP_CONTEXTS = "^hotline-(inbound|cluster|agi|fallback)$"
EVENT_FILTERS: tuple[tuple[str, str], ...] = (
    ("action(include),name(PeerStatus)", ""),
    ("action(include),name(ContactStatus)", ""),
    ("action(include),name(Hangup),header(Context),method(regex)", HANGUP_CONTEXTS),
)


def manager_conf_filters() -> str:
    """The same filters as manager.conf lines for the AMI user (ivr asterisk-config)."""
    return "".join(f"eventfilter({match})={value}\n" for match, value in EVENT_FILTERS)


class AmiLoginRefused(Exception):
    """Asterisk refused the AMI user name or secret."""


class _Manager(Manager):  # type: ignore[misc]  # panoramisk has no type hints
    """panoramisk's manager, telling its owner when a login is refused."""

    on_refused: Callable[[], None] = staticmethod(lambda: None)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        if not ok:
            self.on_refused()
        return ok


class EndpointWatch:
    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.phones: dict[str, Phone] = {}
        self.ready = asyncio.Event()
        self.refused = asyncio.Event()  # the last login was refused (wrong user or secret)
        self.logins = 0
        self.filtered = False  # Asterisk took this session's event filters
        self.where = f"{user}@{host}:{port}"
        self.starting: asyncio.Task[None] | None = None  # the background start, if any
        self._refreshing: asyncio.Future[None] | None = None
        self.manager = _Manager(
            host=host,
            port=port,
            username=user,
            secret=secret,
            events="system,call",  # not "all": a call alone brings dozens of VarSet events
            loop=asyncio.get_running_loop(),
            reconnect_timeout=2,
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
            log=logging.getLogger("ivr.ami.panoramisk"),
        )
        self.manager.on_refused = self.refused.set
        self.manager.register_event("PeerStatus", self._peer)
        self.manager.register_event("ContactStatus", self._contact)
        self.manager.register_event("Hangup", self._hangup)
        self.on_hangup: Callable[[str, int, str], None] | None = None  # (uniqueid, cause, text)

    async def start(self, timeout: float = 10.0) -> None:
        """Connect and list the phones; AmiLoginRefused, or TimeoutError if AMI is silent."""
        self.manager.connect()
        ready = asyncio.ensure_future(self.ready.wait())
        refused = asyncio.ensure_future(self.refused.wait())
        try:
            await asyncio.wait({ready, refused}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
            refused.cancel()
        if self.ready.is_set():
            return
        if self.refused.is_set():
            raise AmiLoginRefused(
                f"sai mật khẩu AMI: Asterisk từ chối đăng nhập {self.where}; kiểm tra ami_user "
                "và ami_secret (IVR_AMI_SECRET) so với manager.conf. Cuộc gọi vẫn chạy, "
                "không biết trạng thái máy"
            )
        raise TimeoutError(f"AMI {self.where} không trả lời sau {timeout:g} s")

    def close(self) -> None:
        if self.starting is not None:
            self.starting.cancel()
        self.manager.close()

    def state(self, endpoint: str) -> PhoneState:
        phone = self.phones.get(endpoint.partition("/")[2] or endpoint)
        return phone.state if phone else PhoneState.UNKNOWN

    def unreachable(self, endpoint: str) -> bool:
        return self.state(endpoint) in {PhoneState.UNREACHABLE, PhoneState.UNREGISTERED}

    def _on_login(self, manager: Manager) -> None:
        self.logins += 1
        self.refused.clear()
        self._refreshing = asyncio.ensure_future(self._filter_then_refresh())

    def _on_disconnect(self, manager: Manager, exc: Exception | None) -> None:
        log.warning("AMI connection lost; reconnecting", error=str(exc) if exc else None)

    async def _filter_then_refresh(self) -> None:
        await self.filter_events()
        await self.refresh()

    async def filter_events(self) -> bool:
        """Ask Asterisk for this session's filters (manager.conf may lack them: an older
        configuration); refused (no 'system' write right, an old Asterisk): every event comes,
        which costs CPU but loses nothing."""
        for match, value in EVENT_FILTERS:
            action = {"Action": "Filter", "Operation": "Add", "MatchCriteria": match}
            if value:
                action["Filter"] = value
            reply = await self.manager.send_action(action)
            reply = reply[0] if isinstance(reply, list) else reply
            if str(reply.get("Response", "")).lower() != "success":
                log.warning(
                    "AMI không nhận bộ lọc sự kiện; nhận mọi sự kiện (tốn CPU hơn)",
                    filter=match,
                    reason=str(reply.get("Message", "")),
                )
                return False
        self.filtered = True
        return True

    async def refresh(self) -> None:
        replies = await self.manager.send_action({"Action": "PJSIPShowEndpoints"})
        for msg in replies if isinstance(replies, list) else [replies]:
            if msg.get("Event") == "EndpointList":
                name = str(msg.get("ObjectName", ""))
                device, contacts = str(msg.get("DeviceState", "")), str(msg.get("Contacts", ""))
                self.phones[name] = Phone(name, _state(device, contacts), device, contacts)
        self.ready.set()
        log.info("AMI: phones listed", phones=len(self.phones))

    def _peer(self, manager: Manager, event: Any) -> None:
        name = str(event.get("Peer", "")).partition("/")[2]
        status = str(event.get("PeerStatus", ""))
        old = self.phones.get(name)
        contacts = old.contacts if old else "?"
        state = PhoneState.REACHABLE if status == "Reachable" else PhoneState.UNREACHABLE
        if status in {"Reachable", "Unreachable"}:
            self.phones[name] = Phone(name, state, status, contacts)

    def _hangup(self, manager: Manager, event: Any) -> None:
        if self.on_hangup is None:
            return
        try:
            cause = int(event.get("Cause", ""))
        except ValueError:
            return
        self.on_hangup(str(event.get("Uniqueid", "")), cause, str(event.get("Cause-txt", "")))

    def _contact(self, manager: Manager, event: Any) -> None:
        name = str(event.get("AOR", ""))
        status = str(event.get("ContactStatus", ""))
        if status == "Removed":
            self.phones[name] = Phone(name, PhoneState.UNREGISTERED, status, "")
        elif status in {"Reachable", "Unreachable", "Created", "Updated"}:
            state = PhoneState.UNREACHABLE if status == "Unreachable" else PhoneState.REACHABLE
            self.phones[name] = Phone(name, state, status, str(event.get("URI", "")))
