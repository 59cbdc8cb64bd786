"""Graph rules a routing must satisfy beyond its shape: targets, prompts, reachability, codes."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from ivr.routing.loops import loop_findings
from ivr.routing.model import (
    DialNode,
    HoursNode,
    Routing,
    SurveyNode,
    node_prompts,
    node_targets,
)
from ivr.routing.timeline import timeline_findings

Finding = tuple[tuple[str | int, ...], str]


def check_graph(routing: Routing, prompt_ids: Iterable[str] | None) -> list[Finding]:
    out: list[Finding] = []
    out += _targets(routing)
    out += _references(routing)
    out += _units(routing)
    out += _surveys(routing)
    out += timeline_findings(routing)
    if prompt_ids is not None:
        out += _prompts(routing, set(prompt_ids))
    if not out:  # reachability only means something once every edge points somewhere
        out += _unreachable(routing)
    if not out:
        out += loop_findings(routing)
    return out


def _targets(r: Routing) -> list[Finding]:
    out: list[Finding] = []
    if r.hotline.entry not in r.nodes:
        out.append((("hotline", "entry"), f"nút bắt đầu '{r.hotline.entry}' không có trong nodes"))
    for name, node in r.nodes.items():
        for field, target in node_targets(node):
            if target not in r.nodes:
                path = ("nodes", name, *_split(field))
                out.append((path, f"nodes.{name}.{field}: nút đích '{target}' không tồn tại"))
    return out


def _split(field: str) -> tuple[str, ...]:
    return tuple(field.split("."))


def _references(r: Routing) -> list[Finding]:
    out: list[Finding] = []
    for key, branch in r.branches.items():
        if branch.schedule not in r.schedules:
            out.append(
                (("branches", key, "schedule"), f"nhánh {key}: lịch '{branch.schedule}' không có")
            )
    for name, node in r.nodes.items():
        if node.branch is not None and node.branch not in r.branches:
            out.append((("nodes", name, "branch"), f"nodes.{name}: nhánh '{node.branch}' không có"))
            continue
        if isinstance(node, HoursNode):
            sched = node.schedule or (r.branches[node.branch].schedule if node.branch else None)
            if sched is None:
                out.append((("nodes", name), f"nodes.{name}: cần 'schedule' hoặc 'branch'"))
            elif sched not in r.schedules:
                out.append((("nodes", name, "schedule"), f"nodes.{name}: lịch '{sched}' không có"))
        if isinstance(node, DialNode) and not node.endpoints and node.branch is None:
            out.append(
                (("nodes", name), f"nodes.{name}: nút quay số cần 'endpoints' hoặc 'branch'")
            )
    return out


def _surveys(r: Routing) -> list[Finding]:
    """A survey asks about the conversation that just ended: it is reached only by a dial's or
    directory's ``on.answered`` (the answer is kept with the desk that answered)."""
    out: list[Finding] = []
    for name, node in r.nodes.items():
        for field, target in node_targets(node):
            if field != "on.answered" and isinstance(r.nodes.get(target), SurveyNode):
                out.append(
                    (
                        ("nodes", name, *_split(field)),
                        f"nodes.{name}.{field}: nút khảo sát '{target}' chỉ được tới sau một "
                        "cuộc nối máy (từ 'on.answered' của nút quay số hay danh bạ)",
                    )
                )
    if r.hotline.entry in r.nodes and isinstance(r.nodes[r.hotline.entry], SurveyNode):
        out.append((("hotline", "entry"), "nút bắt đầu không thể là nút khảo sát"))
    for name, node in r.nodes.items():
        if isinstance(node, SurveyNode):
            out += _survey_branches(r, name, node)
    return out


def _survey_branches(r: Routing, name: str, node: SurveyNode) -> list[Finding]:
    """Each branch a survey lists exists, once, and has a desk whose answered calls lead here
    (else nobody of that branch is ever asked)."""
    leading = {
        n.branch
        for n in r.nodes.values()
        if isinstance(n, DialNode) and n.branch is not None and n.on.answered == name
    }
    out: list[Finding] = []
    seen: set[str] = set()
    for i, key in enumerate(node.branches):
        path = ("nodes", name, "branches", i)
        if key not in r.branches:
            known = ", ".join(sorted(r.branches))
            out.append(
                (path, f"nodes.{name}.branches: nhánh '{key}' không có (các nhánh: {known})")
            )
        elif key in seen:
            out.append((path, f"nodes.{name}.branches: nhánh '{key}' ghi hai lần"))
        elif key not in leading:
            out.append(
                (
                    path,
                    f"nodes.{name}.branches: không nút quay số nào của nhánh '{key}' dẫn tới "
                    f"'{name}' khi cán bộ nghe máy: không cuộc gọi nào của nhánh này được hỏi",
                )
            )
        seen.add(key)
    return out


def _units(r: Routing) -> list[Finding]:
    out: list[Finding] = []
    seen: dict[str, int] = {}
    for i, unit in enumerate(r.units):
        seen.setdefault(unit.code, i)
    codes = sorted(seen)
    for a, b in itertools.pairwise(codes):
        if b.startswith(a):
            out.append(
                (
                    ("units", seen[b], "code"),
                    f"mã đơn vị '{a}' là phần đầu của mã '{b}': người gọi không thể bấm '{b}'",
                )
            )
    for i, unit in enumerate(r.units):
        if unit.parent is not None and unit.parent not in seen:
            out.append((("units", i, "parent"), f"đơn vị cấp trên '{unit.parent}' không có"))
    return out


def _prompts(r: Routing, known: set[str]) -> list[Finding]:
    out: list[Finding] = []
    for name, node in r.nodes.items():
        for field, prompt in node_prompts(node):
            if prompt not in known:
                f, i = field.rsplit(".", 1)
                out.append(
                    (("nodes", name, f, int(i)), f"nodes.{name}.{f}: lời nhắc '{prompt}' không có")
                )
    return out


def _unreachable(r: Routing) -> list[Finding]:
    seen = {r.hotline.entry}
    todo = [r.hotline.entry]
    while todo:
        node = r.nodes[todo.pop()]
        for _, target in node_targets(node):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return [
        (("nodes", name, "__key__"), f"nút '{name}' không thể tới được từ '{r.hotline.entry}'")
        for name in r.nodes
        if name not in seen
    ]
