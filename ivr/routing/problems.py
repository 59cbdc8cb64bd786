"""What is wrong with a routing file, each problem at file:line:col."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Characters no routing text may hold: C0/C1 controls (newline and tab included), DEL, the line
# and paragraph separators, bidirectional overrides, and the two non-characters. They would
# forge lines in Asterisk's files, the dialplan or AGI commands, or hide text on a terminal.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]")


def visible(text: str) -> str:
    """``text`` with every control character written as an escape (safe for a terminal)."""
    return CONTROL_RE.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def control_message(char: str) -> str:
    name = {"\n": " (xuống dòng)", "\r": " (về đầu dòng)", "\t": " (tab)"}.get(char, "")
    return f"ký tự điều khiển U+{ord(char):04X}{name} không được phép"


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{visible(self.file)}:{self.line}:{self.col}: {visible(self.message)}"


class RoutingError(Exception):
    """The file cannot be used; ``problems`` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
