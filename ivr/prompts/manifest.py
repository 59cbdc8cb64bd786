"""The prompt manifest (prompts/manifest.yaml): prompt id → Vietnamese text and optional recording."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ivr.routing.dated import moved_prompt, next_unit, unit_prompt
from ivr.routing.model import Routing


@dataclass(frozen=True, slots=True)
class Prompt:
    id: str
    text: str
    file: str | None = None  # a recording an admin dropped in, relative to the manifest


class ManifestError(Exception):
    pass


def load_manifest(path: Path) -> dict[str, Prompt]:
    yaml = YAML(typ="safe")
    yaml.version = (1, 2)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as e:
        raise ManifestError(f"{path}: không đọc được danh mục lời nhắc: {e}") from e
    entries = doc.get("prompts") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ManifestError(f"{path}: cần khoá 'prompts' là một bảng mã → lời đọc")
    out: dict[str, Prompt] = {}
    for pid, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise ManifestError(f"{path}: lời nhắc '{pid}' cần trường 'text'")
        out[str(pid)] = Prompt(str(pid), entry["text"], entry.get("file"))
    return out


def unit_prompts(routing: Routing) -> dict[str, str]:
    """The prompts the directory needs, generated from the routing: every unit's name
    (unit-<code>, old units and new alike) and, for every unit taken over by another,
    "<old> nay là <new>" (moved-<code>)."""
    out: dict[str, str] = {}
    for unit in routing.units:
        out[unit_prompt(routing, unit)] = unit.said
        successor = next_unit(routing, unit)
        if successor is not None:
            out[moved_prompt(routing, unit)] = f"{unit.said} nay là {successor.said}."
    return out


def with_units(manifest: dict[str, Prompt], routing: Routing) -> dict[str, Prompt]:
    """The manifest plus the generated directory prompts (the manifest's own text wins, so an
    admin can correct how a name is read, or drop in a recording)."""
    out = dict(manifest)
    for pid, text in unit_prompts(routing).items():
        out.setdefault(pid, Prompt(pid, text))
    return out


def default_manifest_path(routing_file: Path) -> Path:
    return routing_file.resolve().parent.parent / "prompts" / "manifest.yaml"
