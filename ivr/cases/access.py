"""Who sees which case, and what of the citizen they see. Pure.

Admins and supervisors see every case; a clerk sees and acts on their own unit's (or branch's)
cases only. The citizen's name and phone are shown to admins and to the owner's clerks (who must
call the citizen back); supervisors read them masked — they follow figures and deadlines, not
people.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.queries import mask_number

ROLES = ("admin", "supervisor", "clerk")


@dataclass(frozen=True, slots=True)
class Viewer:
    name: str
    role: str = "admin"
    unit: str | None = None
    branch: str | None = None


def may_see(viewer: Viewer, owner_unit: str | None, branch: str | None) -> bool:
    if viewer.role in ("admin", "supervisor"):
        return True
    if viewer.unit is not None and owner_unit == viewer.unit:
        return True
    return viewer.branch is not None and branch == viewer.branch


def may_act(viewer: Viewer, owner_unit: str | None, branch: str | None) -> bool:
    return viewer.role != "supervisor" and may_see(viewer, owner_unit, branch)


def sees_citizen(viewer: Viewer) -> bool:
    return viewer.role in ("admin", "clerk")


def mask_name(name: str) -> str:
    """Nguyễn Văn An → N. V. A."""
    return " ".join(f"{w[0]}." for w in name.split())


def citizen(viewer: Viewer, name: str, phone: str, *, force_mask: bool = False) -> tuple[str, str]:
    if sees_citizen(viewer) and not force_mask:
        return name, phone
    return mask_name(name), mask_number(phone) if phone else ""
