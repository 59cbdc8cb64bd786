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

_COLUMNS = frozenset({"event", "timestamp", "level", "logger", "logger_name"})
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure(*, json: bool = False, level: str = "INFO") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    escaping: list[structlog.typing.Processor] = [] if json else [escape_controls]
    if not json:
        # escape_controls imports it on first use; importing the CLI package (report charts
        # included) takes seconds: do it now, not on the event loop at a call's first warning
        import ivr.cli.terminal  # noqa: F401
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *escaping,
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


def escape_controls(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Console lines only: every string with its control characters escaped, once."""
    from ivr.cli.terminal import escape

    for key, value in event_dict.items():
        if not isinstance(value, str):
            continue  # the renderer shows other values by repr(), which escapes
        if key == "exception":  # a formatted traceback: keep its lines
            event_dict[key] = "\n".join(escape(line) for line in value.split("\n"))
        elif key in _COLUMNS:  # shown by str(), padded
            event_dict[key] = escape(value)
        else:
            event_dict[key] = _Shown(escape(value))
    return event_dict


class _Shown:
    """An escaped value, shown as it is (quoted when it holds a space), not repr()'d again."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"'{self.text}'" if set(self.text) & {" ", "=", '"', "'"} else self.text
