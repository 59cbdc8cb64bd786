"""Accounts and the audit log of logins and every change made through the console or the CLI."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.web.roles import Role
from models import AuditEntry, User


class AccountError(ValueError):
    """A change to an account that cannot be made (the message says why, in Vietnamese)."""


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    unit: str | None
    branch: str | None
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    password_hash: str


def _account(u: User) -> Account:
    return Account(
        u.name,
        Role(u.role),
        u.unit,
        u.branch,
        u.disabled,
        u.created_at,
        u.last_login_at,
        u.password_hash,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_scope(role: Role, unit: str | None, branch: str | None) -> None:
    if role is Role.CLERK and not unit and not branch:
        raise AccountError("chuyên viên (clerk) cần --unit MÃ hoặc --branch SỐ")
    if role is not Role.CLERK and (unit or branch):
        raise AccountError("chỉ chuyên viên (clerk) mới gắn với đơn vị hay nhánh")


async def add_user(
    engine: AsyncEngine,
    name: str,
    role: Role,
    password_hash: str,
    *,
    unit: str | None = None,
    branch: str | None = None,
    by: str = "cli",
) -> None:
    check_scope(role, unit, branch)
    user = User(
        name=name,
        password_hash=password_hash,
        role=role.value,
        unit=unit,
        branch=branch,
        disabled=False,
        created_at=_now(),
    )
    try:
        async with AsyncSession(engine) as s, s.begin():
            s.add(user)
            s.add(_audit(by, "user_add", f"{name} ({role.value})"))
    except IntegrityError:
        raise AccountError(f"đã có tài khoản {name}") from None


async def find(engine: AsyncEngine, name: str) -> Account | None:
    async with AsyncSession(engine) as s:
        user = (await s.scalars(select(User).where(User.name == name))).one_or_none()
    return None if user is None else _account(user)


async def list_users(engine: AsyncEngine) -> list[Account]:
    async with AsyncSession(engine) as s:
        return [_account(u) for u in (await s.scalars(select(User).order_by(User.name))).all()]


async def set_disabled(engine: AsyncEngine, name: str, disabled: bool, by: str = "cli") -> None:
    async with AsyncSession(engine) as s, s.begin():
        user = await _get(s, name)
        user.disabled = disabled
        s.add(_audit(by, "user_disable" if disabled else "user_enable", name))


async def set_password(engine: AsyncEngine, name: str, password_hash: str, by: str = "cli") -> None:
    async with AsyncSession(engine) as s, s.begin():
        user = await _get(s, name)
        user.password_hash = password_hash
        s.add(_audit(by, "user_password", name))


async def logged_in(engine: AsyncEngine, name: str, new_hash: str | None = None) -> None:
    async with AsyncSession(engine) as s, s.begin():
        user = await _get(s, name)
        user.last_login_at = _now()
        if new_hash is not None:
            user.password_hash = new_hash
        s.add(_audit(name, "login"))


async def audit(engine: AsyncEngine, who: str, action: str, detail: str = "") -> None:
    async with AsyncSession(engine) as s, s.begin():
        s.add(_audit(who, action, detail))


async def recent_audit(engine: AsyncEngine, limit: int = 200) -> list[AuditEntry]:
    q = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    async with AsyncSession(engine) as s:
        return list((await s.scalars(q)).all())


async def _get(s: AsyncSession, name: str) -> User:
    user = (await s.scalars(select(User).where(User.name == name))).one_or_none()
    if user is None:
        raise AccountError(f"không có tài khoản {name}")
    return user


def _audit(who: str, action: str, detail: str = "") -> AuditEntry:
    return AuditEntry(at=_now(), who=who, action=action, detail=detail)
