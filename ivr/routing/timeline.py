"""Rules for dated changes: one unit per code on any day, replacement chains that lead somewhere
and end, branch changes in date order. Each finding names the field to fix."""

from __future__ import annotations

import datetime as dt
import itertools

from ivr.routing.dated import ONE_DAY
from ivr.routing.model import Routing, Unit

Finding = tuple[tuple[str | int, ...], str]


def timeline_findings(r: Routing) -> list[Finding]:
    loops, looping = _loops(r)
    return _overlaps(r) + _dangling(r) + loops + _gaps(r, looping) + _branch_changes(r)


def _period(u: Unit) -> str:
    start = u.valid_from.isoformat() if u.valid_from else "…"
    end = u.valid_until.isoformat() if u.valid_until else "…"
    return f"{start} – {end}"


def _overlap(a: Unit, b: Unit) -> bool:
    a_start, b_start = a.valid_from or dt.date.min, b.valid_from or dt.date.min
    a_end, b_end = a.valid_until or dt.date.max, b.valid_until or dt.date.max
    return a_start <= b_end and b_start <= a_end


def _overlaps(r: Routing) -> list[Finding]:
    """A code names at most one unit on any day (a code may be reused once the first unit ended).

    Entries of a code sorted by start: each must start after every earlier one has ended.
    """
    out: list[Finding] = []
    by_code: dict[str, list[tuple[int, Unit]]] = {}
    for j, u in enumerate(r.units):
        by_code.setdefault(u.code, []).append((j, u))
    for same in by_code.values():
        same.sort(key=lambda e: (e[1].valid_from or dt.date.min, e[0]))
        latest: Unit | None = None  # the earlier entry that ends last
        for j, b in same:
            if latest is not None and _overlap(latest, b):
                out.append((("units", j, "code"), _overlap_message(latest, b)))
            if latest is None or (b.valid_until or dt.date.max) > (
                latest.valid_until or dt.date.max
            ):
                latest = b
    return out


def _overlap_message(a: Unit, b: Unit) -> str:
    if a.valid_from is a.valid_until is b.valid_from is b.valid_until is None:
        return f"mã đơn vị '{b.code}' bị trùng (đã dùng cho {a.name})"
    return (
        f"mã đơn vị '{b.code}' bị trùng: thời kỳ {_period(b)} chồng lên thời kỳ "
        f"{_period(a)} của {a.name} (mỗi ngày một mã chỉ thuộc một đơn vị)"
    )


def _dangling(r: Routing) -> list[Finding]:
    return [
        (
            ("units", i, "replaced_by"),
            f"đơn vị thay thế '{u.replaced_by}' (của {u.name}) không có trong danh bạ",
        )
        for i, u in enumerate(r.units)
        if u.replaced_by is not None and not r.entries(u.replaced_by)
    ]


def _next(r: Routing, index: dict[int, int], u: Unit) -> list[int]:
    """The entries ``u`` hands over to: the successor in force the day after ``u`` ends, or
    (when none is) every entry of the successor's code, so a loop shows whatever the dates."""
    if u.replaced_by is None or u.valid_until is None:
        return []
    entries = r.entries(u.replaced_by)
    day = u.valid_until + ONE_DAY
    current = [e for e in entries if e.valid_on(day)]
    return [index[id(e)] for e in (current or entries)]


def _loops(r: Routing) -> tuple[list[Finding], set[int]]:
    """Replacement chains that come back to where they started (each loop reported once, at
    its first unit), and every unit on a loop."""
    index = {id(u): i for i, u in enumerate(r.units)}
    edges = {i: _next(r, index, u) for i, u in enumerate(r.units)}
    out: list[Finding] = []
    looping: set[int] = set()
    done: set[int] = set()
    for start in edges:
        if start in done:
            continue
        path: list[int] = []
        on_path: set[int] = set()
        node: int | None = start
        while node is not None and node not in done and node not in on_path:
            path.append(node)
            on_path.add(node)
            node = edges[node][0] if edges[node] else None
        if node is not None and node in on_path:
            cycle = path[path.index(node) :]
            first = min(cycle)
            codes = " → ".join(r.units[k].code for k in [*cycle, cycle[0]])
            message = (
                f"chuỗi thay thế đi vòng: {codes}; người gọi mã cũ sẽ không tới được ai "
                "(đơn vị cuối chuỗi không được có 'replaced_by')"
            )
            out.append((("units", first, "replaced_by"), message))
            looping.update(cycle)
        done.update(path)
    return out, looping


def _gaps(r: Routing, looping: set[int]) -> list[Finding]:
    """The successor must be in force the day after its predecessor's last day."""
    out: list[Finding] = []
    for i, u in enumerate(r.units):
        if u.replaced_by is None or u.valid_until is None or i in looping:
            continue
        entries = r.entries(u.replaced_by)
        day = u.valid_until + ONE_DAY
        if entries and not any(e.valid_on(day) for e in entries):
            periods = ", ".join(_period(e) for e in entries)
            out.append(
                (
                    ("units", i, "replaced_by"),
                    f"đơn vị thay thế '{u.replaced_by}' không hoạt động ngày {day.isoformat()}, "
                    f"ngày sau khi {u.name} thôi hoạt động (thời kỳ của nó: {periods})",
                )
            )
    return out


def _branch_changes(r: Routing) -> list[Finding]:
    out: list[Finding] = []
    for key, branch in r.branches.items():
        for k, (a, b) in enumerate(itertools.pairwise(branch.changes), 1):
            if b.since <= a.since:
                out.append(
                    (
                        ("branches", key, "changes", k, "from"),
                        f"nhánh {key}: thay đổi ngày {b.since.isoformat()} phải đứng sau thay đổi "
                        f"ngày {a.since.isoformat()} (liệt kê theo thứ tự ngày, mỗi ngày một lần)",
                    )
                )
    return out
