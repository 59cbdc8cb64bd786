"""Checks requests and events against the official ARI schema of Asterisk 22 (shared/ari/api-docs)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "Date": (str,),
    "int": (int,),
    "long": (int,),
    "double": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "containers": (dict,),
}
_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    query: dict[str, dict[str, Any]]  # name → parameter
    required_query: frozenset[str]


class AriSchema:
    def __init__(self, api_docs: Path) -> None:
        self.files = {p.stem: json.loads(p.read_text()) for p in sorted(api_docs.glob("*.json"))}

    @cached_property
    def models(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for doc in self.files.values():
            out.update(doc.get("models", {}))
        return out

    @cached_property
    def operations(self) -> list[Operation]:
        ops = []
        for doc in self.files.values():
            for api in doc.get("apis", []):
                template = api["path"]
                regex = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
                for op in api.get("operations", []):
                    params = op.get("parameters") or []
                    query = {p["name"]: p for p in params if p["paramType"] == "query"}
                    required = frozenset(n for n, p in query.items() if p.get("required"))
                    ops.append(
                        Operation(op["httpMethod"], template, re.compile(regex), query, required)
                    )
        return ops

    def operation(self, method: str, path: str) -> Operation | None:
        path = path.removeprefix("/ari")
        candidates = [o for o in self.operations if o.method == method and o.pattern.match(path)]
        # a literal segment beats a parameter (/channels/create over /channels/{channelId})
        candidates.sort(key=lambda o: o.template.count("{"))
        return candidates[0] if candidates else None

    def check_request(self, method: str, path: str, query: dict[str, str]) -> list[str]:
        op = self.operation(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in the ARI schema"]
        problems = []
        for name in op.required_query - set(query):
            problems.append(f"{method} {op.template}: required parameter '{name}' missing")
        for name, value in query.items():
            param = op.query.get(name)
            if param is None:
                problems.append(f"{method} {op.template}: unknown parameter '{name}'")
                continue
            allowed = (param.get("allowableValues") or {}).get("values")
            values = value.split(",") if param.get("allowMultiple") else [value]
            if allowed and any(v not in allowed for v in values):
                problems.append(f"{method} {op.template}: {name}={value!r} not in {allowed}")
            kind = param.get("dataType")
            if kind in {"int", "long"} and not all(re.fullmatch(r"-?\d+", v) for v in values):
                problems.append(f"{method} {op.template}: {name}={value!r} is not an integer")
            if kind == "boolean" and value not in {"true", "false"}:
                problems.append(f"{method} {op.template}: {name}={value!r} is not a boolean")
        return problems

    def check_event(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if not isinstance(kind, str) or kind not in self.models:
            return [f"event type {kind!r} is not in the schema"]
        props = {}
        for base in ("Message", "Event", kind):
            props.update(self.models[base].get("properties", {}))
        return self._check_object(event, props, kind)

    def _check_object(self, obj: dict[str, Any], props: dict[str, Any], where: str) -> list[str]:
        problems = []
        for name, spec in props.items():
            if spec.get("required") and name not in obj:
                problems.append(f"{where}: required '{name}' missing")
        for name, value in obj.items():
            spec = props.get(name)
            if spec is None:
                problems.append(f"{where}: '{name}' is not in the schema")
                continue
            problems += self._check_value(value, spec["type"], f"{where}.{name}")
        return problems

    def _check_value(self, value: Any, kind: str, where: str) -> list[str]:
        if kind.startswith("List[") and kind.endswith("]"):
            if not isinstance(value, list):
                return [f"{where}: expected a list"]
            out: list[str] = []
            for i, item in enumerate(value):
                out += self._check_value(item, kind[5:-1], f"{where}[{i}]")
            return out
        if kind in _PRIMITIVES:
            if isinstance(value, bool) and kind not in {"boolean", "object"}:
                return [f"{where}: expected {kind}, got a boolean"]
            if not isinstance(value, _PRIMITIVES[kind]):
                return [f"{where}: expected {kind}, got {type(value).__name__}"]
            if kind == "Date" and not _DATE.match(value):
                return [f"{where}: {value!r} is not an ARI date"]
            return []
        model = self.models.get(kind)
        if model is None:
            return [f"{where}: unknown type {kind}"]
        if not isinstance(value, dict):
            return [f"{where}: expected a {kind} object"]
        return self._check_object(value, model.get("properties", {}), where)
