"""Password hashes (argon2id) and the rules a new password must meet."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_LENGTH = 10


@functools.cache
def _dummy() -> str:
    """A hash to check against when the account does not exist, so a wrong name takes as long
    as a wrong password (no way to learn which names exist from the timing). Made on first use:
    hashing takes ~0.4 s, which every `ivr` command paid at import."""
    return _HASHER.hash("không-có-tài-khoản-này")


class WeakPassword(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"mật khẩu cần ít nhất {MIN_LENGTH} ký tự")
    return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the stored hash (None: no such account, still slow)."""
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
