"""Who may see what: the three roles, and a signed-in person's view of calls and voicemails."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.store.queries import mask_number


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything: accounts, routing, all calls
    SUPERVISOR = "supervisor"  # all calls, voicemails and reports; no accounts or routing
    CLERK = "clerk"  # only the calls and voicemails of its own unit or branch


ALL = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.SUPERVISOR})
ADMIN = frozenset({Role.ADMIN})

LABELS = {Role.ADMIN: "quản trị", Role.SUPERVISOR: "giám sát", Role.CLERK: "chuyên viên"}


@dataclass(frozen=True)
class Viewer:
    """The person behind a request, as the database says now (not as the cookie said)."""

    name: str
    role: Role
    unit: str | None = None
    branch: str | None = None

    @property
    def sees_all(self) -> bool:
        return self.role is not Role.CLERK

    def owns(self, unit: str | None, branch: str | None) -> bool:
        """True when a call or message of this unit/branch is this person's to see."""
        if self.sees_all:
            return True
        return (self.unit is not None and unit == self.unit) or (
            self.branch is not None and branch == self.branch
        )

    def number(self, number: str, unit: str | None, branch: str | None) -> str:
        """A caller's number as this person may see it: masked unless the call is theirs."""
        return number if self.owns(unit, branch) else mask_number(number)
