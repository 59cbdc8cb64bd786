"""The call-record store's schema (SQLAlchemy 2): calls, their steps, voicemails, controllers."""

from models.base import Base, UTCDateTime
from models.calls import Call, CallStep, Controller, Voicemail

__all__ = ["Base", "Call", "CallStep", "Controller", "UTCDateTime", "Voicemail"]
