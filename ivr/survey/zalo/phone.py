"""Vietnamese mobile numbers as ZNS wants them: 84 then nine digits (pure)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s.\-()]")
# mobile numbers since the 2018 renumbering: 03x, 05x, 07x, 08x, 09x
_MOBILE = re.compile(r"^[35789]\d{8}$")


class BadPhone(ValueError):
    """A number ZNS cannot reach (Vietnamese message, the number quoted)."""


def normalise(raw: str) -> str:
    """'0912 345 678', '+84 912.345.678', '84912345678' → '84912345678'; anything else: BadPhone."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise BadPhone("không có số điện thoại (người gọi ẩn số)")
    if text.startswith("+84"):
        national = text[3:]
    elif text.startswith("+"):
        raise BadPhone(f"số '{raw}' không phải số Việt Nam")
    elif text.startswith("84") and len(text) == 11:
        national = text[2:]
    elif text.startswith("0"):
        national = text[1:]
    else:
        national = text
    if not national.isdigit():
        raise BadPhone(f"số '{raw}' có ký tự không phải chữ số")
    if not _MOBILE.match(national):
        raise BadPhone(f"số '{raw}' không phải số di động Việt Nam (0[35789]xxxxxxxx)")
    return "84" + national
