"""Every call must be able to end: no node without a way out, no loop a silent caller never leaves.

An end is a node after which the call is over or leaves us: ``hangup``, ``dialplan``, and a
``dial`` or ``directory`` whose answered call ends the call (no ``on.answered``). A caller who
presses nothing follows the *automatic* edges (a prompt's, voicemail's or survey's ``next``, every
edge of ``hours``, a menu's ``default``, a directory's ``fail``); a cycle of those alone plays
forever. A ``survey`` is never an end: its ``next`` must lead to one (its answer is kept either way).
"""

from __future__ import annotations

from ivr.routing.model import (
    DialNode,
    DialplanNode,
    DirectoryNode,
    HangupNode,
    HoursNode,
    MenuNode,
    Node,
    PromptNode,
    Routing,
    SurveyNode,
    VoicemailNode,
    node_targets,
)

Finding = tuple[tuple[str | int, ...], str]


def loop_findings(r: Routing) -> list[Finding]:
    """Nodes that cannot reach an end, then silent loops (the graph's edges must all resolve)."""
    return _no_way_out(r) or _silent_loops(r)


def is_end(node: Node) -> bool:
    if isinstance(node, HangupNode | DialplanNode):
        return True
    return isinstance(node, DialNode | DirectoryNode) and node.on.answered is None


def _no_way_out(r: Routing) -> list[Finding]:
    into: dict[str, list[str]] = {name: [] for name in r.nodes}
    for name, node in r.nodes.items():
        for _, target in node_targets(node):
            into[target].append(name)
    ending = {name for name, node in r.nodes.items() if is_end(node)}
    todo = list(ending)
    while todo:
        for source in into[todo.pop()]:
            if source not in ending:
                ending.add(source)
                todo.append(source)
    return [
        (
            ("nodes", name, "__key__"),
            f"nút '{name}' không dẫn tới kết thúc cuộc gọi (hangup, dialplan hay một cuộc nối máy): "
            "người gọi sẽ đi vòng mãi",
        )
        for name in r.nodes
        if name not in ending
    ]


def automatic_targets(node: Node) -> list[str]:
    """Where a caller who presses nothing goes next (and nobody answers nothing)."""
    match node:
        case PromptNode() | VoicemailNode() | SurveyNode():
            return [node.next]
        case HoursNode():
            return [t for t in (node.open, node.closed, node.holiday) if t]
        case MenuNode():
            return [node.default]
        case DirectoryNode():
            return [node.fail]
        case _:
            return []


def _silent_loops(r: Routing) -> list[Finding]:
    order = {name: i for i, name in enumerate(r.nodes)}
    seen_cycles: set[frozenset[str]] = set()
    out: list[Finding] = []
    for cycle in _cycles(r):
        if frozenset(cycle) in seen_cycles:
            continue
        seen_cycles.add(frozenset(cycle))
        first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
        cycle = cycle[first:] + cycle[:first]
        path = " → ".join([*cycle, cycle[0]])
        out.append(
            (
                ("nodes", cycle[0], "__key__"),
                f"vòng lặp không cần bấm phím: {path}; người gọi im lặng sẽ nghe mãi "
                "(cho 'default'/'next' của một nút trong vòng dẫn ra ngoài)",
            )
        )
    return out


def _cycles(r: Routing) -> list[list[str]]:
    """One cycle per back edge of a depth-first walk over the automatic edges."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []
    for root in r.nodes:
        if root in state:
            continue
        path: list[str] = [root]
        stack = [iter(automatic_targets(r.nodes[root]))]
        state[root] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                found.append(path[path.index(target) :])
            elif target not in state:
                state[target] = 1
                path.append(target)
                stack.append(iter(automatic_targets(r.nodes[target])))
    return found
