"""The call-record store's schema (SQLAlchemy 2): calls, their steps, voicemails, controllers."""

from models.base import Base, UTCDateTime
from models.calls import Call, CallStep, Controller, Voicemail
from models.reconcile import CelEvent, ReconcileState
from models.users import AuditEntry, User

__all__ = [
    "AuditEntry",
    "Base",
    "Call",
    "CallStep",
    "CelEvent",
    "Controller",
    "ReconcileState",
    "UTCDateTime",
    "User",
    "Voicemail",
]
