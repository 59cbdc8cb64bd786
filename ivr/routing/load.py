"""Read a routing YAML file into a checked :class:`Routing`, or say exactly what is wrong.

Every problem is reported as ``file:line:col: message`` so an admin can jump to it. YAML is
read as 1.2 with ruamel; numbers where strings belong are errors, never silently converted (a
phone number ``0123`` would lose its 0).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ivr.routing.check import check_graph
from ivr.routing.model import Routing
from ivr.routing.problems import Problem, RoutingError
from ivr.routing.reader import MAX_BYTES, read_document, too_big

__all__ = ["MAX_BYTES", "Problem", "RoutingError", "load_routing", "parse_routing"]

Path_ = tuple[str | int, ...]


def load_routing(path: Path, prompt_ids: Iterable[str] | None = None) -> Routing:
    """Load and check ``path``. ``prompt_ids``: the known prompts (None skips that check)."""
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise RoutingError([too_big(str(path), size)])
            data = f.read(MAX_BYTES + 1)  # the file may grow while we read it
    except OSError as e:
        raise RoutingError([Problem(str(path), 1, 1, f"không đọc được tệp: {e.strerror}")]) from e
    return parse_routing(data, str(path), prompt_ids)


def parse_routing(data: bytes, name: str, prompt_ids: Iterable[str] | None = None) -> Routing:
    doc = read_document(data, name)
    if not isinstance(doc, CommentedMap):
        raise RoutingError([Problem(name, 1, 1, "tệp định tuyến phải là một bảng (mapping) YAML")])
    positions: dict[Path_, tuple[int, int]] = {}
    locate = _Locator(name, positions)
    duplicates: list[Path_] = []
    plain = _plain(doc, (), positions, duplicates)
    if duplicates:
        found = [locate(d, f'khoá bị lặp: "{d[-1]}"', at_key=True) for d in duplicates]
        raise RoutingError(sorted(found, key=_order))
    try:
        routing = Routing.model_validate(plain)
    except ValidationError as e:
        raise RoutingError(sorted(_pydantic_problems(e, locate), key=_order)) from e
    problems = [locate(p, m) for p, m in check_graph(routing, prompt_ids)]
    if problems:
        raise RoutingError(sorted(problems, key=_order))
    version = hashlib.sha256(data).hexdigest()[:12]
    return routing.model_copy(update={"version": version})


def _order(p: Problem) -> tuple[int, int]:
    return (p.line, p.col)


def _plain(node: Any, path: Path_, pos: dict[Path_, tuple[int, int]], dups: list[Path_]) -> Any:
    """Turn ruamel's containers into plain ones, noting where every key and item stands.

    Text is normalised to NFC, so a name typed with combining accents (NFD) and the same name
    typed precomposed are one name: equal as keys (a duplicate) and as references.
    """
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for raw_key, value in node.items():
            key = _nfc(raw_key)
            kline, kcol = node.lc.key(raw_key)
            vline, vcol = node.lc.value(raw_key)
            if key in out:
                pos[(*path, key, "__key__")] = (kline + 1, kcol + 1)
                dups.append((*path, key))
                continue
            pos[(*path, key)] = (vline + 1, vcol + 1)
            pos[(*path, key, "__key__")] = (kline + 1, kcol + 1)
            out[key] = _plain(value, (*path, key), pos, dups)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            line, col = node.lc.item(i)
            pos[(*path, i)] = (line + 1, col + 1)
            items.append(_plain(value, (*path, i), pos, dups))
        return items
    return _nfc(node)


def _nfc(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFC", str(value))
    return value


class _Locator:
    def __init__(self, name: str, positions: dict[Path_, tuple[int, int]]) -> None:
        self.name = name
        self.positions = positions

    def __call__(self, path: Path_, message: str, *, at_key: bool = False) -> Problem:
        if at_key and (*path, "__key__") in self.positions:
            line, col = self.positions[(*path, "__key__")]
            return Problem(self.name, line, col, message)
        p = path
        while p:
            if p in self.positions:
                line, col = self.positions[p]
                return Problem(self.name, line, col, message)
            p = p[:-1]
        return Problem(self.name, 1, 1, message)


def _pydantic_problems(e: ValidationError, locate: _Locator) -> list[Problem]:
    out = []
    for err in e.errors():
        loc = _clean_loc(tuple(err["loc"]))
        where = ".".join(_shown(x) for x in loc if x != "__key__") or "(gốc)"
        kind = err["type"]
        if kind == "extra_forbidden":
            out.append(locate(loc, f"{where}: khoá không được biết đến", at_key=True))
            continue
        if kind == "missing":
            out.append(locate(loc[:-1], f"{where}: thiếu khoá bắt buộc '{loc[-1]}'"))
            continue
        out.append(locate(loc, f"{where}: {_explain(err)}"))
    return out


_UNION_TAGS = {
    "prompt",
    "menu",
    "hours",
    "dial",
    "voicemail",
    "directory",
    "survey",
    "hangup",
    "dialplan",
}


def _shown(part: Any) -> str:
    """A key as the admin can find it: quoted when empty, blank or not a plain word ("' '")."""
    text = str(part)
    return text if _PLAIN_KEY.fullmatch(text) else json.dumps(text, ensure_ascii=False)


_PLAIN_KEY = re.compile(r"[\w\-+#*<>]+")


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union tag (nodes.<name>.<type>...) and name dict keys as keys."""
    if len(loc) > 2 and loc[0] == "nodes" and loc[2] in _UNION_TAGS:
        loc = loc[:2] + loc[3:]
    return tuple("__key__" if x == "[key]" else x for x in loc)


def _explain(err: Any) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f'giá trị {value} phải là chuỗi trong dấu nháy (vd. "0{value}" hay "{value}"), '
            "để số 0 ở đầu không bị mất"
        )
    if kind == "string_type":
        return "phải là một chuỗi"
    if kind == "union_tag_invalid":
        return (
            f"loại nút '{value.get('type') if isinstance(value, dict) else value}' không có; "
            + ("dùng một trong: " + ", ".join(sorted(_UNION_TAGS)))
        )
    if kind == "union_tag_not_found":
        return "thiếu khoá 'type' (loại nút)"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind in {"int_type", "float_type"}:
        return f"phải là một số (đang là {value!r})"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"giá trị {value!r} không hợp lệ; chỉ nhận: {expected}"
    said = _SAID.get(kind)
    if said is not None:
        try:
            return said.format(**err.get("ctx", {}), value=value)
        except (KeyError, IndexError, ValueError):  # a context this pydantic names otherwise
            pass
    return str(err["msg"])


# pydantic's own words for the usual mistakes, said in Vietnamese ({...}: pydantic's context)
_SAID = {
    "string_too_short": "không được để trống (ít nhất {min_length} ký tự)",
    "string_too_long": "quá dài (tối đa {max_length} ký tự)",
    "string_pattern_mismatch": "giá trị {value!r} không đúng dạng ({pattern})",
    "too_short": "cần ít nhất {min_length} phần tử",
    "too_long": "nhiều nhất {max_length} phần tử",
    "greater_than": "phải lớn hơn {gt} (đang là {value!r})",
    "greater_than_equal": "phải từ {ge} trở lên (đang là {value!r})",
    "less_than": "phải nhỏ hơn {lt} (đang là {value!r})",
    "less_than_equal": "phải từ {le} trở xuống (đang là {value!r})",
    "int_parsing": "phải là một số nguyên (đang là {value!r})",
    "int_from_float": "phải là một số nguyên (đang là {value!r})",
    "float_parsing": "phải là một số (đang là {value!r})",
    "bool_type": "phải là true hoặc false (đang là {value!r})",
    "bool_parsing": "phải là true hoặc false (đang là {value!r})",
    "dict_type": "phải là một bảng khoá: giá trị",
    "model_type": "phải là một bảng khoá: giá trị",
    "model_attributes_type": "phải là một bảng khoá: giá trị",
    "list_type": "phải là một danh sách",
    "date_from_datetime_parsing": "phải là một ngày dạng YYYY-MM-DD (đang là {value!r})",
    "date_parsing": "phải là một ngày dạng YYYY-MM-DD (đang là {value!r})",
    "date_type": "phải là một ngày dạng YYYY-MM-DD (đang là {value!r})",
    "time_parsing": "phải là giờ dạng HH:MM (đang là {value!r})",
    "time_type": "phải là giờ dạng HH:MM (đang là {value!r})",
}
