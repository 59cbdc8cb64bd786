"""structlog set-up: readable lines in a terminal, JSON for log collectors.

Log values carry text from callers; in the console form every string is shown with its control
characters escaped (ivr.cli.terminal), so a caller number cannot forge a line or drive the
admin's terminal. A traceback keeps its line breaks. JSON lines escape them by themselves.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# the columns before the key=value pairs, in order, and how each is shown
_COLUMNS = (
    ("timestamp", "{}"),
    ("level", "[{:<9}]"),  # as wide as the widest name, "exception"
    ("event", "{:<30}"),
    ("logger", "[{}]"),
    ("logger_name", "[{}]"),
)
_QUOTED = frozenset(" ='\"")  # a string value holding one of these is shown in quotes
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure(*, json: bool = False, level: str = "INFO") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else ConsoleLine()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level_name(level)]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def level_name(text: str) -> str:
    """A level name in capitals (any case accepted); ValueError for anything else."""
    if text.upper() not in LEVELS:
        raise ValueError(f"mức nhật ký '{text}' không hợp lệ; dùng {', '.join(LEVELS)}")
    return text.upper()


class ConsoleLine:
    """The console form of a line: ``timestamp [level] event  key=value ...``, the keys sorted, a
    traceback on the lines after it. Every string is shown with its control characters escaped:
    a string value as it is (quoted when it holds a space, ``=`` or a quote), another value by
    ``repr()``, which escapes them itself.

    Written for the calls' path, where a service logs a line a call: structlog's development
    renderer (colours, columns, styles) cost twice this one's CPU for the same text (19.5
    against 9.7 us a line, warm)."""

    def __init__(self) -> None:
        # imported here, not on the event loop at a call's first line: importing the CLI
        # package (report charts included) takes seconds
        from ivr.cli.terminal import escape

        self._escape = escape

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
        escape = self._escape
        exception = event_dict.pop("exception", None)
        stack = event_dict.pop("stack", None)
        parts = []
        for key, shown in _COLUMNS:
            value = event_dict.pop(key, None)
            if value is not None:
                parts.append(shown.format(escape(str(value))))
        parts += [f"{key}={self._value(event_dict[key])}" for key in sorted(event_dict)]
        line = " ".join(parts).rstrip(" ")
        for text in (stack, exception):  # a traceback keeps its lines
            if text is not None:
                line += "\n" + "\n".join(escape(part) for part in str(text).split("\n"))
        return line

    def _value(self, value: Any) -> str:
        if not isinstance(value, str):
            return repr(value)
        text = self._escape(value)
        return f"'{text}'" if _QUOTED.intersection(text) else text
