"""Asterisk's generated configuration (issue 14 rows 14 and 23, deliverable 5): names from the
routing cannot open a section or close a quote, files holding secrets are not world-readable,
and every listener Asterisk opens for `ivr` binds loopback."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.asterisk.config import split_example, write_config
from ivr.asterisk.pjsip import render
from ivr.routing.model import Routing

from .conftest import ROOT

EXAMPLE = ROOT / "asterisk.conf.example"
DIALPLAN = ROOT / "dialplan" / "hotline.conf"
SECRET_LINE = re.compile(r"^\s*(password|secret)\s*=", re.MULTILINE)

# --- row 14 (Asterisk half): names in `ivr pjsip` ------------------------------------------------

SECTION = re.compile(r"^\[[A-Za-z0-9_.-]+\](\((!|hotline-(phone|auth|aor))\))?$")
SETTING = re.compile(r"^[a-z_]+=[^;\"\[\]]*$")
CALLERID = re.compile(r'^callerid="[^";\\<>\[\]]*" <[A-Za-z0-9_.-]+>$')
NAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60)  # no controls


def _hostile(routing: Routing, name: str, owner: str) -> Routing:
    branches = {
        key: b.model_copy(update={"name": name, "owner": owner})
        for key, b in routing.branches.items()
    }
    units = [u.model_copy(update={"name": name + owner}) for u in routing.units]
    return routing.model_copy(update={"branches": branches, "units": units})


def _check_lines(text: str) -> list[str]:
    """Every line is a comment, a section we make, a setting with nothing that starts a comment
    or a quote, or the callerid with exactly one pair of quotes. Returns the section headers."""
    sections = []
    for line in text.splitlines():
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            assert SECTION.fullmatch(line), line
            sections.append(line)
        elif line.startswith("callerid="):
            assert CALLERID.fullmatch(line), line
        else:
            assert SETTING.fullmatch(line), line
    return sections


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ('Tư pháp "A"', 'Ông "B" <0999>'),
        ("Nội vụ; [evil]", "x\\"),
        ("a ;-- block", "--; b"),
        ("]", "["),
    ],
)
def test_quotes_and_brackets_in_names_stay_inside_one_value(
    routing: Routing, name: str, owner: str
) -> None:
    plain = _check_lines(render(routing, password=lambda _p: "pw"))
    hostile = render(_hostile(routing, name, owner), password=lambda _p: "pw")
    assert _check_lines(hostile) == plain


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=NAMES, owner=NAMES)
def test_no_name_opens_a_section_or_closes_a_quote(routing: Routing, name: str, owner: str) -> None:
    plain = _check_lines(render(routing, password=lambda _p: "pw"))
    assert _check_lines(render(_hostile(routing, name, owner), password=lambda _p: "pw")) == plain


# --- row 23: files holding secrets ---------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_holding_secrets_are_not_world_readable(tmp_path: Path, routing: Routing) -> None:
    written = write_config(tmp_path / "etc", EXAMPLE, DIALPLAN, routing)
    secret = {p.name for p in written if SECRET_LINE.search(p.read_text(encoding="utf-8"))}
    assert {"ari.conf", "manager.conf", "pjsip_hotline.conf"} <= secret
    for path in written:
        if path.name in secret:
            assert _mode(path) & 0o027 == 0, f"{path.name}: {oct(_mode(path))}"
        else:
            assert _mode(path) & 0o444 == 0o444, f"{path.name}: {oct(_mode(path))}"


def test_overwriting_a_world_readable_secret_file_closes_it(
    tmp_path: Path, routing: Routing
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    old = etc / "pjsip_hotline.conf"
    old.write_text("; an older copy\n", encoding="utf-8")
    old.chmod(0o666)
    write_config(etc, EXAMPLE, DIALPLAN, routing, overwrite=True)
    assert _mode(old) & 0o027 == 0
    assert "password=" in old.read_text(encoding="utf-8")


# --- deliverable 5: the threat model's checkable claims ----------------------------------------


def _settings(body: str, section: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current = None
    for raw in body.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            current = line[1 : line.index("]")]
        elif "=" in line and current == section:
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip().lstrip(">").strip()
    return found


def test_aris_http_and_ami_listen_on_loopback_only() -> None:
    files = split_example(EXAMPLE.read_text(encoding="utf-8"))
    http = _settings(files["http.conf"], "general")
    assert http["bindaddr"] == "127.0.0.1"
    assert "tlsenable" not in http or http["tlsbindaddr"].startswith("127.0.0.1")
    manager = _settings(files["manager.conf"], "general")
    assert manager["bindaddr"] == "127.0.0.1"
    assert manager.get("webenabled", "no") == "no"


def test_the_example_secrets_must_be_changed_before_use() -> None:
    files = split_example(EXAMPLE.read_text(encoding="utf-8"))
    for name in ("ari.conf", "manager.conf"):
        values = [line for line in files[name].splitlines() if SECRET_LINE.match(line)]
        assert values, name
        assert all("CHANGE-ME" in v for v in values), name


def test_secret_files_go_to_the_asterisk_group_of_the_system_they_are_for(
    tmp_path: Path, routing: Routing
) -> None:
    gid = 4242 if os.geteuid() == 0 else os.getgid()  # root may give any group; others their own
    (tmp_path / "group").write_text(f"root:x:0:\nasterisk:x:{gid}:\n", encoding="utf-8")
    written = write_config(tmp_path / "asterisk", EXAMPLE, DIALPLAN, routing)
    by_name = {p.name: p for p in written}
    for name in ("ari.conf", "manager.conf", "pjsip_hotline.conf"):
        assert by_name[name].stat().st_gid == gid
