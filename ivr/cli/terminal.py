"""Text from callers (or any database row) on a supervisor's terminal: control characters shown
as visible escapes, never obeyed.

A caller number may hold a newline (a forged extra row), ESC sequences (clear the screen,
recolour, retitle the window), BEL, NUL, or Unicode bidi overrides that reorder what is shown.
:func:`escape` turns each into a backslash escape (``\\n``, ``\\x1b``, ``\\u202e``) and doubles
a typed backslash, so what is printed can always be told apart from what was received.
:func:`json_text` keeps JSON's data exactly as stored while leaving nothing raw in the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0, DEL, C1; line and paragraph separators; bidi embeddings, overrides and isolates
_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# json.dumps(ensure_ascii=False) escapes C0 itself; these it leaves raw
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def escape(text: str) -> str:
    """The text with every control character (and backslash) as a visible escape."""
    return _UNSAFE.sub(_visible, text)


def json_text(data: Any) -> str:
    """JSON for a terminal or a pipe: readable Vietnamese, no raw control character."""
    out = json.dumps(data, ensure_ascii=False, indent=2)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)
