"""The call-record store's schema (SQLAlchemy 2): calls, their steps, voicemails."""

from models.base import Base, UTCDateTime
from models.calls import Call, CallStep, Voicemail

__all__ = ["Base", "Call", "CallStep", "UTCDateTime", "Voicemail"]
