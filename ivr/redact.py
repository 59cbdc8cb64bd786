"""Secrets kept out of logs: the password of any URL in a text is replaced by ``***``.

Used wherever a URL or a text that may hold one (an error message) is logged or printed:
``ari_url``, ``database_url``, exceptions of aiohttp and SQLAlchemy.
"""

from __future__ import annotations

import re

# scheme://user:password@  (user may be empty; the password runs to the last @ before the host)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#:@]*):(?P<pw>[^\s/?#]*)@")


def redact(text: str) -> str:
    """``text`` with every URL's password masked; a URL without one is unchanged."""
    return _USERINFO.sub(r"\g<head>:***@", text)
