"""Bytes → a ruamel document, with the limits a hostile file meets first.

Size is capped, raw control characters are refused, YAML is read as 1.2 only (a ``%YAML 1.1``
directive would turn ``0123`` into 83 and ``on`` into a boolean), aliases are refused (a
billion-laughs file expands to gigabytes) and nesting is capped (deep brackets would exhaust
Python's stack). Every refusal is a :class:`Problem` at file:line:col.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.reader import ReaderError

from ivr.routing.problems import CONTROL_RE, Problem, RoutingError, control_message

MAX_BYTES = 2_000_000  # a province's file is ~100 KB; 2 MB still parses in seconds
MAX_DEPTH = 20  # the routing needs 6 levels
MAX_REPORTED = 20
_STR_TAG = "tag:yaml.org,2002:str"


class RefusedYAML(MarkedYAMLError):
    """A YAML feature the routing file may not use; ``problem`` is the admin's message."""


class _Composer(Composer):
    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            raise RefusedYAML(
                problem=f"bí danh YAML '*{event.anchor}' không được dùng trong tệp định tuyến: "
                "hãy viết đầy đủ giá trị",
                problem_mark=event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) != _STR_TAG:
            raise RefusedYAML(
                problem=f"thẻ YAML '{tag}' không được dùng: viết giá trị thường "
                '(chuỗi trong dấu nháy "...")',
                problem_mark=event.start_mark,
            )
        if self.depth >= MAX_DEPTH:
            raise RefusedYAML(
                problem=f"dữ liệu lồng quá sâu (quá {MAX_DEPTH} cấp)", problem_mark=event.start_mark
            )
        return super().compose_node(parent, index)


def read_document(data: bytes, name: str) -> Any:
    """The YAML document in ``data``, or :class:`RoutingError`."""
    if len(data) > MAX_BYTES:
        raise RoutingError([too_big(name, len(data))])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RoutingError([Problem(name, 1, 1, f"tệp không phải UTF-8 (byte {e.start})")]) from e
    text = text.removeprefix("\ufeff")
    problems = _controls(text, name) + _directives(text, name)
    if problems:
        raise RoutingError(problems)
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.Composer = _Composer
    try:
        return yaml.load(text)
    except YAMLError as e:
        raise RoutingError([_yaml_problem(e, text, name)]) from e


def too_big(name: str, size: int) -> Problem:
    message = (
        f"tệp quá lớn ({_thousands(size)} byte; giới hạn {_thousands(MAX_BYTES)} byte): "
        "tệp định tuyến của một tỉnh chỉ cỡ vài trăm KB"
    )
    return Problem(name, 1, 1, message)


def _thousands(n: int) -> str:
    return f"{n:_}".replace("_", ".")


def _controls(text: str, name: str) -> list[Problem]:
    out = []
    for m in CONTROL_RE.finditer(text):
        if m.group() in "\t\n\r":
            continue  # YAML's own white space; inside a value the model refuses them
        line, col = line_col(text, m.start())
        out.append(Problem(name, line, col, control_message(m.group())))
        if len(out) == MAX_REPORTED:
            break
    return out


def _directives(text: str, name: str) -> list[Problem]:
    """Directives stand before the first document; only ``%YAML 1.2`` is accepted."""
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith("%"):
            break
        if line.split("#")[0].split() != ["%YAML", "1.2"]:
            out.append(
                Problem(
                    name,
                    number,
                    1,
                    f"chỉ thị '{line.strip()}' không được dùng: tệp định tuyến luôn đọc theo "
                    'YAML 1.2 (để "0123" không thành số 83, "on" không thành true/false); '
                    "hãy xoá dòng này",
                )
            )
    return out


def line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _yaml_problem(e: YAMLError, text: str, name: str) -> Problem:
    if isinstance(e, MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return Problem(name, line, col, _yaml_message(e))
    if isinstance(e, ReaderError) and isinstance(e.position, int):
        line, col = line_col(text, min(e.position, len(text)))
        return Problem(name, line, col, f"lỗi đọc YAML: {e.reason}")
    return Problem(name, 1, 1, f"lỗi cú pháp YAML: {e}")


def _yaml_message(e: MarkedYAMLError) -> str:
    problem = str(e.problem or "lỗi cú pháp YAML")
    if isinstance(e, RefusedYAML):
        return problem
    if "duplicate key" in problem:
        return f"khoá bị lặp: {problem.split('duplicate key', 1)[1].strip()}"
    return f"lỗi cú pháp YAML: {problem}"
