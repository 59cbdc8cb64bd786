"""Property tests (issue 14): no routing document, however broken, crashes `check` or the reload.

Valid documents come from a strategy that builds a graph every rule accepts; broken ones are
those documents mutated, random YAML and random bytes. Whatever the input, the loader gives a
routing or problems at file:line:col; the CLI exits 0 or 1; a refused file never replaces the
running routing.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ivr.cli import main
from ivr.routing.live import LiveRouting
from ivr.routing.load import RoutingError, parse_routing
from ivr.routing.model import Routing

from .test_routing_load import GOOD
from .test_routing_load import PROMPTS as GOOD_PROMPTS

PROMPTS = ["hello", "menu", "bye", "vm-intro", "code", *GOOD_PROMPTS]
PROBLEM_RE = re.compile(r"^r\.yaml:(\d+):(\d+): \S")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cf", "Co", "Cn", "Zl", "Zp")),
    min_size=1,
    max_size=12,
)


@st.composite
def routing_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A routing every rule accepts: nodes n0..nK whose edges lead forward (so every node is
    reached along n0 → n1 → ... and reaches the final hang-up), menus may also jump back."""
    schedule = unicodedata.normalize("NFC", draw(names))
    branch_keys = [str(i) for i in range(1, draw(st.integers(1, 4)) + 1)]
    branches = {
        k: {
            "name": draw(names),
            "owner": draw(names),
            "endpoints": [f"PJSIP/cchc-{k}"],
            "schedule": schedule,
        }
        for k in branch_keys
    }
    units = [
        {"code": f"{1000 + i}", "name": draw(names), "kind": "department", "endpoint": f"SIP/u{i}"}
        for i in range(draw(st.integers(0, 3)))
    ]
    count = draw(st.integers(2, 9))
    nodes: dict[str, Any] = {}
    for i in range(count - 1):
        nodes[f"n{i}"] = draw(_node(i, count, branch_keys, schedule))
    nodes[f"n{count - 1}"] = draw(
        st.sampled_from(
            [
                {"type": "hangup", "prompts": ["bye"]},
                {"type": "dialplan", "context": "hotline-fallback"},
            ]
        )
    )
    return {
        "hotline": {
            "name": draw(names),
            "number": draw(st.from_regex(r"\A[0-9]{3,10}\Z")),
            "entry": "n0",
            "fallback": {"context": "hotline-fallback"},
        },
        "schedules": {schedule: {"weekly": {"mon": ["07:30-11:30"]}, "public_holidays": None}},
        "branches": branches,
        "units": units,
        "nodes": nodes,
    }


@st.composite
def _node(draw: st.DrawFn, i: int, count: int, branch_keys: list[str], schedule: str) -> Any:
    ahead = st.integers(i + 1, count - 1).map(lambda j: f"n{j}")
    nxt = f"n{i + 1}"
    kind = draw(st.sampled_from(["prompt", "menu", "hours", "dial", "voicemail", "directory"]))
    outcomes = {"busy": nxt, "no_answer": draw(ahead), "unreachable": draw(ahead)}
    if kind == "prompt":
        return {"type": "prompt", "prompts": ["hello"], "next": nxt}
    if kind == "voicemail":
        return {"type": "voicemail", "prompts": ["vm-intro"], "next": nxt}
    if kind == "hours":
        return {"type": "hours", "schedule": schedule, "open": nxt, "closed": draw(ahead)}
    if kind == "dial":
        return {"type": "dial", "branch": draw(st.sampled_from(branch_keys)), "on": outcomes}
    if kind == "directory":
        return {"type": "directory", "prompts": ["code"], "on": outcomes, "fail": nxt}
    back = st.integers(0, i).map(lambda j: f"n{j}")
    choices = {"1": nxt, **draw(st.dictionaries(st.sampled_from("234567890#"), ahead | back))}
    return {"type": "menu", "prompts": ["menu"], "choices": choices, "default": draw(ahead)}


def dump(doc: Any, style: str) -> str:
    if style == "json":  # JSON is YAML 1.2
        return json.dumps(doc, ensure_ascii=False, indent=1)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = style == "flow"
    out = io.StringIO()
    yaml.dump(doc, out)
    if style == "flow" and _unreadable(out.getvalue()):
        # ruamel's flow emitter writes a name like `?0` unquoted, which its own parser refuses
        # ("expected the node content, but found '?'"): a document no person wrote, so the
        # same one goes in block style, which quotes it
        return dump(doc, "block")
    return out.getvalue()


def _unreadable(text: str) -> bool:
    try:
        YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return True
    return False


documents = st.builds(dump, routing_documents(), st.sampled_from(["json", "block", "flow"]))


def outcome(data: bytes) -> Routing | list[str]:
    """What the loader makes of ``data``; a crash fails the test, problems are checked."""
    try:
        return parse_routing(data, "r.yaml", PROMPTS)
    except RoutingError as e:
        found = [str(p) for p in e.problems]
    assert found, "a refusal names at least one problem"
    lines = data.count(b"\n") + 2
    for p in found:
        m = PROBLEM_RE.match(p)
        assert m, p
        assert 1 <= int(m.group(1)) <= lines, p
        assert "\n" not in p, p
        assert "\x1b" not in p, p
    return found


@FAST
@given(documents)
def test_every_generated_routing_is_valid(text: str) -> None:
    result = outcome(text.encode())
    assert isinstance(result, Routing), result
    for branch in result.branches.values():
        assert unicodedata.is_normalized("NFC", branch.name)


GRAPH_EDITS = [
    (b"n1", b"n0"),
    (b"n2", b"n9"),
    (b": bye", b": nowhere"),
    (b"hangup", b"prompt"),
    (b"hello", b"unknown-prompt"),
    (b'"1"', b"1"),
    (b"n0", b"n1"),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from([GOOD, draw(documents)])).encode()
    for old, new in draw(st.lists(st.sampled_from(GRAPH_EDITS), max_size=2)):
        text = text.replace(old, new, 1)  # a graph that parses but breaks a rule
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        span = draw(st.integers(0, 12))
        junk = draw(
            st.binary(max_size=8)
            | st.sampled_from([b"&a ", b"*a", b"\x00", b"\n", b"  ", b":", b"- ", b"[", b"{", b"'"])
            | st.sampled_from([b"%YAML 1.1\n---\n", b"!!python/object:os.system ", b"\\n"])
        )
        text = text[:at] + junk + text[at + span :]
    return text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_mutated_file_never_crashes_the_loader(data: bytes) -> None:
    outcome(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_loader(data: bytes) -> None:
    assert isinstance(outcome(data), list)


keys = st.sampled_from(["hotline", "nodes", "branches", "type", "next", "<<", "on", "1"]) | names
scalars = st.none() | st.booleans() | st.integers() | st.floats() | names
random_yaml = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@FAST
@given(random_yaml, st.sampled_from(["json", "block", "flow"]))
def test_random_yaml_never_crashes_the_loader(doc: Any, style: str) -> None:
    try:
        text = dump(doc, style)
    except ValueError:  # NaN in JSON
        text = dump(doc, "block")
    assert isinstance(outcome(text.encode()), list)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated() | documents.map(str.encode))
def test_check_exits_0_or_1_with_located_problems(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        routing = Path(tmp) / "r.yaml"
        routing.write_bytes(data)
        manifest = Path(tmp) / "manifest.yaml"
        manifest.write_text(
            "prompts:\n" + "".join(f"  {p}: {{text: x}}\n" for p in PROMPTS), encoding="utf-8"
        )
        err = io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("sys.stderr", err)
            mp.setattr("sys.stdout", io.StringIO())
            code = main(["routing", "check", str(routing), "--prompts", str(manifest)])
    assert code in (0, 1)
    if code == 1:
        problems = [line for line in err.getvalue().splitlines() if line][:-1]
        assert problems
        assert all(re.match(rf"^{re.escape(str(routing))}:\d+:\d+: ", p) for p in problems)


@FAST
@given(st.lists(mutated() | st.binary(max_size=200), min_size=1, max_size=4))
def test_a_refused_file_never_changes_the_running_routing(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(GOOD, encoding="utf-8")
        live = LiveRouting(path, lambda: PROMPTS)
        for data in files:
            before = live.current
            path.write_bytes(data)
            took = live.reload()
            valid = isinstance(outcome(data), Routing)
            if not valid:
                assert took is False
                assert live.current is before
            else:
                assert live.current.version == parse_routing(data, "r.yaml", PROMPTS).version
