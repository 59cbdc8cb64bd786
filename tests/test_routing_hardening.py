"""Hostile routing files (issue 14): each is refused with file:line:col, fast, never a traceback."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.routing.load import MAX_BYTES, RoutingError, load_routing, parse_routing

from .conftest import MANIFEST_FILE
from .test_routing_load import GOOD, PROMPTS, problems, problems_bytes


def at(text: str, needle: str, nth: int = 0) -> str:
    """``line:col`` (1-based) where the ``nth`` occurrence of ``needle`` starts in ``text``."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{col}"


def laughs(levels: int) -> str:
    lines = ['l0: &l0 ["ha", "ha", "ha", "ha", "ha", "ha", "ha", "ha", "ha", "ha"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


# --- row 7: aliases and nesting ---------------------------------------------------------------


def test_aliases_are_refused_at_the_first_alias() -> None:
    text = laughs(4)
    (only,) = problems(text)
    assert only.startswith(f"r.yaml:{at(text, '*l0')}: ")
    assert "bí danh" in only


def test_a_merge_key_alias_in_a_real_file_is_refused() -> None:
    text = GOOD.replace(
        "  bye: {type: hangup, prompts: [goodbye]}",
        "  bye: &end {type: hangup, prompts: [goodbye]}\n  bye2: {<<: *end}",
    )
    (only,) = problems(text)
    assert only.startswith(f"r.yaml:{at(text, '*end')}: ")


def test_billion_laughs_fails_fast_in_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs(9))
    code = main(["routing", "check", str(bomb), "--prompts", str(MANIFEST_FILE)])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"{bomb}:{at(laughs(9), '*l0')}: " in err


def test_deep_nesting_is_a_problem_not_a_recursion_error() -> None:
    text = "hotline: " + "[" * 5000 + "]" * 5000 + "\n"
    (only,) = problems(text)
    assert only.startswith("r.yaml:1:")
    assert "lồng" in only


# --- row 8: size ------------------------------------------------------------------------------


def test_a_50_mb_file_is_refused_without_being_parsed(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.write(GOOD.encode())
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(RoutingError) as info:
        load_routing(huge, PROMPTS)
    (only,) = [str(p) for p in info.value.problems]
    assert only.startswith(f"{huge}:1:1: ")
    assert "quá lớn" in only


def test_the_size_limit_holds_for_bytes_too() -> None:
    data = GOOD.encode() + b"#" * MAX_BYTES
    (only,) = problems_bytes(data)
    assert only.startswith("r.yaml:1:1: ")
    assert "quá lớn" in only


# --- row 9: control characters in the file ----------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\u202e"])
def test_a_raw_control_character_is_pointed_at(char: str) -> None:
    text = GOOD.replace("owner: Sở Nội vụ", f"owner: Sở{char}Nội vụ")
    (only,) = problems_bytes(text.encode())
    assert only.startswith(f"r.yaml:{at(text, char)}: ")
    assert f"U+{ord(char):04X}" in only


# --- row 14: control characters in names that reach Asterisk ----------------------------------


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("{name: Một,", '{name: "Một\\n[evil]",', '"Một'),
        ("owner: Sở Nội vụ", 'owner: "Sở Nội vụ\\r\\nEXEC System id"', '"Sở'),
        ("name: Thử", 'name: "Thử\\e[31m"', '"Thử'),
        ('"1": {name', '"1\\n[evil]": {name', '"1\\n'),
        ("prompts: [goodbye]", 'prompts: ["goodbye\\tx"]', '"goodbye'),
    ],
)
def test_a_control_character_in_a_name_is_refused(old: str, new: str, needle: str) -> None:
    text = GOOD.replace(old, new)
    found = problems(text, None)
    assert any(p.startswith(f"r.yaml:{at(text, needle)}: ") and "U+00" in p for p in found), found


def test_a_name_written_as_a_block_scalar_keeps_no_newline() -> None:
    text = GOOD.replace("  name: Thử\n", "  name: |\n    Thử\n    [evil]\n")
    found = problems(text, None)
    assert any(p.startswith(f"r.yaml:{at(text, '|')}: ") and "U+000A" in p for p in found), found


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("prompts: [goodbye]", 'prompts: ["goodbye then-EXEC"]', '"goodbye'),
        ("{context: hotline-fallback}", '{context: "hotline fallback"}', '"hotline'),
        ("[PJSIP/cchc-1]", '["PJSIP/cchc-1&PJSIP/evil"]', '"PJSIP'),
        ("[PJSIP/cchc-1]", '["PJSIP/cchc-1]"]', '"PJSIP'),
    ],
)
def test_tokens_sent_to_asterisk_allow_only_safe_characters(
    old: str, new: str, needle: str
) -> None:
    text = GOOD.replace(old, new)
    found = problems(text, None)
    assert any(p.startswith(f"r.yaml:{at(text, needle)}: ") for p in found), found


# --- row 20: YAML 1.1 -------------------------------------------------------------------------


def test_a_yaml_1_1_directive_is_refused_with_a_clear_message() -> None:
    text = "%YAML 1.1\n---\n" + GOOD.replace('{code: "0101"', "{code: 0101")
    (only,) = problems(text)
    assert only.startswith("r.yaml:1:1: ")
    assert "%YAML 1.1" in only
    assert "1.2" in only


def test_a_yaml_1_2_directive_is_fine() -> None:
    r = parse_routing(("%YAML 1.2\n---\n" + GOOD).encode(), "r.yaml", PROMPTS)
    assert r.units[0].code == "0101"


def test_tag_directives_and_custom_tags_are_refused() -> None:
    text = "%TAG !x! tag:example.com,2000:\n---\n" + GOOD
    (only,) = problems(text)
    assert only.startswith("r.yaml:1:1: ")
    text = GOOD.replace("name: Thử", "name: !python/name:os.system Thử")
    (only,) = problems(text)
    assert only.startswith(f"r.yaml:{at(text, '!python')}: ")


# --- row 21: Unicode normalisation ------------------------------------------------------------

NFC = "hành-chính"
NFD = unicodedata.normalize("NFD", NFC)


def test_nfd_and_nfc_spellings_of_a_key_are_duplicates() -> None:
    assert NFC != NFD
    text = GOOD.replace("  office:\n", f"  {NFC}:\n    weekly: {{tue: []}}\n  {NFD}:\n", 1)
    found = problems(text, None)
    assert f'r.yaml:{at(text, NFD)}: khoá bị lặp: "{NFC}"' in found[0]


def test_a_reference_spelt_in_nfd_resolves_to_the_nfc_key() -> None:
    text = GOOD.replace("  office:\n", f"  {NFC}:\n", 1).replace(
        "schedule: office", f"schedule: {NFD}"
    )
    text = text.replace(
        "owner: Sở Nội vụ, endpoints", f"owner: Sở Nội vụ, schedule: {NFD}, endpoints"
    )
    r = parse_routing(text.encode(), "r.yaml", PROMPTS)
    assert list(r.schedules) == [NFC]
    assert r.branches["1"].schedule == NFC


def test_names_are_stored_in_nfc() -> None:
    text = GOOD.replace("owner: Sở Nội vụ", "owner: " + unicodedata.normalize("NFD", "Sở Nội vụ"))
    r = parse_routing(text.encode(), "r.yaml", PROMPTS)
    assert r.branches["1"].owner == unicodedata.normalize("NFC", "Sở Nội vụ")


# --- row 11: every node reaches an end --------------------------------------------------------


def test_a_cycle_of_prompts_with_no_exit_is_refused() -> None:
    text = GOOD.replace('{"1": b1, "0": dir}', '{"1": b1, "0": dir, "2": loop-a}') + (
        "  loop-a: {type: prompt, prompts: [goodbye], next: loop-b}\n"
        "  loop-b: {type: prompt, prompts: [goodbye], next: loop-a}\n"
    )
    found = problems(text)
    assert [p.split(": ", 1)[0] for p in found] == [
        f"r.yaml:{at(text, 'loop-a: ')}",
        f"r.yaml:{at(text, 'loop-b: ')}",
    ]
    assert "không dẫn tới kết thúc" in found[0]


def test_a_menu_whose_every_choice_loops_back_is_refused() -> None:
    text = GOOD.replace('{"1": b1, "0": dir}', '{"1": b1, "0": dir, "2": trap}') + (
        "  trap: {type: menu, prompts: [main-menu], choices: {'1': trap-say}, default: trap-say}\n"
        "  trap-say: {type: prompt, prompts: [goodbye], next: trap}\n"
    )
    found = problems(text)
    assert any(p.startswith(f"r.yaml:{at(text, 'trap: ')}: ") for p in found), found


def test_a_loop_a_silent_caller_never_leaves_is_refused() -> None:
    # pressing 1 leaves, but a caller who presses nothing goes round menu → again → menu forever
    text = GOOD.replace("    default: bye\n", "    default: again\n", 1) + (
        "  again: {type: prompt, prompts: [main-menu], next: menu}\n"
    )
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(f"r.yaml:{at(text, 'menu:')}: ")
    assert "menu → again → menu" in found[0]


def test_a_loop_through_a_choice_is_fine() -> None:
    # "press 9 to hear the menu again" is a loop the caller chooses, with exits beside it
    text = GOOD.replace('{"1": b1, "0": dir}', '{"1": b1, "0": dir, "9": again}') + (
        "  again: {type: prompt, prompts: [main-menu], next: menu}\n"
    )
    parse_routing(text.encode(), "r.yaml", PROMPTS)


def test_a_dial_that_ends_the_call_when_answered_is_an_end() -> None:
    text = GOOD.replace(
        '  b1: {type: dial, branch: "1", on: {busy: vm, no_answer: vm, unreachable: vm}}',
        '  b1: {type: dial, branch: "1", on: {busy: b1, no_answer: b1, unreachable: b1}}',
    )
    parse_routing(text.encode(), "r.yaml", PROMPTS)
