"""The caller ID a clerk's phone shows when the hotline rings it: pure, one rule for ARI and AGI.

The caller's number arrives from the trunk unchecked; it may be 10 KB long or carry quotes and
angle brackets that would forge a second caller ID. The clerk gets digits (a leading ``+``
allowed, the usual separators dropped) or nothing: an unknown number rather than a wrong one.
The name (the branch's label) keeps letters, digits and plain punctuation. The call record keeps
the number as the caller sent it; the store bounds it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_NUMBER = 20  # E.164 is at most 15 digits; room for a trunk's prefix
MAX_NAME = 64
_SEPARATORS = re.compile(r"[\s\-.()/]")
_NUMBER = re.compile(r"\+?[0-9]+")
_NAME_PUNCTUATION = frozenset(" -.,:()/&'_#+*!?%")  # no ';': a comment in Asterisk's files


@dataclass(frozen=True, slots=True)
class ClerkCallerId:
    name: str
    number: str

    @property
    def text(self) -> str:
        """As ARI's ``callerId`` and Asterisk's ``CALLERID(all)`` read it."""
        return f'"{self.name}" <{self.number}>'

    @property
    def variables(self) -> tuple[tuple[str, str], ...]:
        """As AGI sets it on the caller's channel before ``Dial``."""
        return (("CALLERID(name)", self.name), ("CALLERID(num)", self.number))


def clerk_caller_id(name: str, number: str) -> ClerkCallerId:
    return ClerkCallerId(clean_name(name), clean_number(number))


def clean_number(raw: str) -> str:
    """Digits with an optional leading ``+``, at most :data:`MAX_NUMBER`; else ``""``."""
    number = _SEPARATORS.sub("", raw[: MAX_NUMBER * 4])
    if len(number) > MAX_NUMBER or not _NUMBER.fullmatch(number) or not number.isascii():
        return ""
    return number


def clean_name(raw: str) -> str:
    """Letters, digits, spaces and plain punctuation, runs of spaces made one, at most
    :data:`MAX_NAME` characters; quotes, brackets, backslashes and control characters dropped
    (a control character becomes a space)."""
    text = unicodedata.normalize("NFC", raw[: MAX_NAME * 8])
    kept = "".join(_name_char(c) for c in text)
    return " ".join(kept.split())[:MAX_NAME].rstrip()


def _name_char(c: str) -> str:
    kind = unicodedata.category(c)
    if kind[0] in "LNM" or c in _NAME_PUNCTUATION:
        return c
    return " " if kind[0] in "CZ" else ""
