"""FastAGI on the wire: the environment block and command replies, read with bounds.

Every read is bounded in size and time: a peer that closes early, sends garbage or never finishes
its environment block costs its own connection, never the server. Asterisk ends each line with a
single "\\n", and may put one unsolicited "HANGUP" line before any reply (shared/agi/traces).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

MAX_LINE = 8192
MAX_ENV_LINES = 200
ENV_TIMEOUT = 10.0

_REPLY = re.compile(r"^([1-5]\d\d)[ -](.*)$")
_VERB = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_BARE = re.compile(r"[^\s\"\\\x00-\x1f\x7f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESULT = re.compile(r"result=(-?\d{1,18})(?!\d)(?:\s+\((.*?)\))?(?:\s+endpos=(\d{1,18})(?!\d))?")


class AgiProtocolError(Exception):
    """The peer broke the protocol (garbage, oversized line, early close, too slow)."""


class AgiPeerGone(AgiProtocolError):
    """The peer closed or reset the connection: for a call in progress, a hang-up."""


class AgiCommandError(ValueError):
    """A command argument that cannot be sent safely (a control character, e.g. a newline)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    result: int
    data: str  # the text in parentheses, e.g. "timeout" or a variable's value
    endpos: int | None
    raw: str


async def read_line(reader: asyncio.StreamReader, timeout: float | None) -> str:
    try:
        async with asyncio.timeout(timeout):
            raw = await reader.readuntil(b"\n")
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        raise AgiPeerGone("peer closed the connection") from e
    except asyncio.LimitOverrunError as e:
        raise AgiProtocolError(f"line longer than {MAX_LINE} bytes") from e
    except TimeoutError as e:
        raise AgiProtocolError("peer too slow") from e
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise AgiProtocolError("line is not UTF-8") from e


async def read_environment(
    reader: asyncio.StreamReader, timeout: float = ENV_TIMEOUT
) -> dict[str, str]:
    """The agi_* block, up to its empty line, within ``timeout`` seconds in all."""
    env: dict[str, str] = {}
    try:
        async with asyncio.timeout(timeout):
            for _ in range(MAX_ENV_LINES):
                line = await read_line(reader, None)
                if line == "":
                    if not env:
                        raise AgiProtocolError("empty environment block")
                    return env
                key, sep, value = line.partition(":")
                if not sep or not key.startswith("agi_"):
                    raise AgiProtocolError(f"not an AGI environment line: {line[:60]!r}")
                env[key] = value.strip()
    except TimeoutError as e:
        raise AgiProtocolError("environment block never finished") from e
    raise AgiProtocolError(f"environment block longer than {MAX_ENV_LINES} lines")


def parse_reply(line: str) -> Reply:
    m = _REPLY.match(line)
    if not m:
        raise AgiProtocolError(f"not an AGI reply: {line[:60]!r}")
    code = int(m.group(1))
    r = _RESULT.search(m.group(2))
    if r is None:
        return Reply(code, 0, "", None, line)
    endpos = int(r.group(3)) if r.group(3) else None
    return Reply(code, int(r.group(1)), r.group(2) or "", endpos, line)


def command_line(verb: str, *args: str) -> str:
    """One AGI command line: the only way a command is built, so data can never add a line.

    Asterisk splits arguments on blanks outside double quotes and takes a backslash as "the next
    character is literal" (res_agi's parse_args); a line ends at "\\n", and a NUL ends the C
    string. So an argument with a control character is refused, and one with a blank, a quote, a
    backslash, or nothing at all is sent quoted.
    """
    if not _VERB.fullmatch(verb):
        raise AgiCommandError(f"not an AGI command name: {verb[:40]!r}")
    parts = [verb]
    for arg in args:
        if _CONTROL.search(arg):
            raise AgiCommandError(f"control character in an AGI argument: {arg[:40]!r}")
        parts.append(arg if _BARE.fullmatch(arg) else quote(arg))
    return " ".join(parts)


def without_controls(text: str) -> str:
    """Caller data made sendable: each control character becomes a space."""
    return _CONTROL.sub(" ", text)


def quote(arg: str) -> str:
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
