"""The call-record store's schema (SQLAlchemy 2): calls, their steps, voicemails, controllers."""

from models.base import Base, UTCDateTime
from models.calls import Call, CallStep, Controller, Voicemail
from models.cases import Case, CaseCounter, CaseEvent
from models.phones import PhoneStatus
from models.purges import Purge
from models.reconcile import CelEvent, ReconcileState
from models.rollups import call_days, call_hours, call_rollups, lookup_rollups
from models.survey import SurveyAnswer
from models.users import AuditEntry, User

__all__ = [
    "AuditEntry",
    "Base",
    "Call",
    "CallStep",
    "Case",
    "CaseCounter",
    "CaseEvent",
    "CelEvent",
    "Controller",
    "PhoneStatus",
    "Purge",
    "ReconcileState",
    "SurveyAnswer",
    "UTCDateTime",
    "User",
    "Voicemail",
    "call_days",
    "call_hours",
    "call_rollups",
    "lookup_rollups",
]
