"""The `ivr` commands as an admin runs them: output, exit codes, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.asterisk.config import split_example
from ivr.asterisk.pjsip import phones
from ivr.cli import main
from ivr.routing.model import Routing

from .conftest import ROOT, ROUTING_FILE


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_routing_check_good(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "routing", "check", str(ROUTING_FILE))
    assert code == 0
    assert "hợp lệ — 28 nút, 9 nhánh, 68 đơn vị" in out


def test_routing_check_bad_names_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "routing" / "bad.yaml"
    bad.parent.mkdir()
    text = ROUTING_FILE.read_text().replace("next: main-menu", "next: main-menuu")
    text = text.replace('{code: "3002"', "{code: 3002")
    bad.write_text(text)
    code, _, err = run(
        capsys, "routing", "check", str(bad), "--prompts", str(ROOT / "prompts" / "manifest.yaml")
    )
    assert code == 1
    assert f"{bad}:100:12: units.27.code: giá trị 3002 phải là chuỗi trong dấu nháy" in err
    assert "1 lỗi, tệp không được dùng" in err
    # shape first, then the graph: once the number is quoted, the bad target shows
    bad.write_text(text.replace("{code: 3002", '{code: "3002"'))
    code, _, err = run(
        capsys, "routing", "check", str(bad), "--prompts", str(ROOT / "prompts" / "manifest.yaml")
    )
    assert code == 1
    assert "nodes.greeting.next: nút đích 'main-menuu' không tồn tại" in err


@pytest.mark.parametrize(
    ("at", "digits", "clerk", "message", "expect"),
    [
        ("2026-02-17 09:00", "4", "answer", "0", "Kết quả: closed"),  # Tết 2026: a holiday
        ("2026-02-17 09:00", "", "answer", "8", "Kết quả: voicemail"),
        ("2026-11-25 09:00", "4", "answer", "0", "Kết quả: answered, nhánh 4, máy PJSIP/cchc-4a"),
        ("2026-11-25 09:00", "6", "busy", "10", "Kết quả: voicemail, nhánh 6"),
        ("2026-11-25 09:00", "6", "no_answer", "0", "Kết quả: no_answer, nhánh 6"),
        (
            "2026-11-25 09:00",
            "0 3002#",
            "answer",
            "0",
            "Kết quả: answered, đơn vị 3002, máy PJSIP/dv-3002",
        ),
        ("2026-11-25 09:00", "# _ _", "answer", "0", "Kết quả: abandoned"),
        # Phường IV (3104) merged into phường Vị Tân (3002) on 1/7/2025 (NQ 1668/NQ-UBTVQH15)
        ("2025-06-30 09:00", "0 3104#", "answer", "0", "found [3104] — UBND Phường IV"),
        ("2025-06-30 09:00", "0 3104#", "answer", "0", "đơn vị 3104, máy PJSIP/dv-3104"),
        (
            "2025-07-01 09:00",
            "0 3104#",
            "answer",
            "0",
            "replaced [3104] — 3104 UBND Phường IV → 3002 UBND phường Vị Tân",
        ),
        ("2025-07-01 09:00", "0 3104#", "answer", "0", "đơn vị 3002, máy PJSIP/dv-3002"),
        # branch 7 passed from Sở Thông tin và Truyền thông to Sở Khoa học và Công nghệ on 1/3/2025
        ("2025-02-28 09:00", "7", "answer", "0", "ngày 28/02/2025 do Sở Thông tin và Truyền thông"),
        ("2025-03-03 09:00", "7", "answer", "0", "ngày 03/03/2025 do Sở Khoa học và Công nghệ"),
    ],
)
def test_routing_simulate(
    capsys: pytest.CaptureFixture[str],
    at: str,
    digits: str,
    clerk: str,
    message: str,
    expect: str,
) -> None:
    code, out, _ = run(
        capsys,
        "routing",
        "simulate",
        str(ROUTING_FILE),
        "--at",
        at,
        "--digits",
        digits,
        "--clerk",
        clerk,
        "--message",
        message,
    )
    assert code == 0
    assert expect in out


def test_simulate_the_readme_example_shows_the_holiday(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "routing",
        "simulate",
        "routing/hotline.yaml",
        "--at",
        "2026-02-17 09:00",
        "--digits",
        "4",
    )
    assert code == 0
    assert "start          hours      holiday — Tết Nguyên Đán" in out


def test_simulate_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "routing", "simulate", str(ROUTING_FILE), "--at", "tomorrow")
    assert code == 2
    assert 'cần dạng "YYYY-MM-DD HH:MM"' in err
    code, _, err = run(
        capsys,
        "routing",
        "simulate",
        str(ROUTING_FILE),
        "--at",
        "2026-11-25 09:00",
        "--digits",
        "4x",
    )
    assert code == 2
    assert "không phải phím điện thoại" in err


def test_pjsip_has_every_phone_once(capsys: pytest.CaptureFixture[str], routing: Routing) -> None:
    code, out, _ = run(capsys, "pjsip", str(ROUTING_FILE))
    assert code == 0
    names = [p.name for p in phones(routing)]
    assert len(names) == len(set(names)) == 11 + 68  # branch phones + every unit, old and new
    for name in names:
        assert f"[{name}](hotline-phone)" in out
        assert f"[{name}](hotline-auth)" in out
        assert f"[{name}](hotline-aor)" in out
    assert "password=CHANGE" not in out


def test_pjsip_knows_a_phone_named_only_in_a_dated_branch_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    change = "reason: Sở Thông tin và Truyền thông hợp nhất"
    text = ROUTING_FILE.read_text()
    assert change in text
    dated = tmp_path / "hotline.yaml"
    dated.write_text(
        text.replace(change, "endpoints: [PJSIP/cchc-7-khcn], " + change)
    )  # from 2025-03-01 branch 7 rings a new phone, never named among its first ones
    code, out, err = run(capsys, "pjsip", str(dated))
    assert code == 0, err
    assert "[cchc-7-khcn](hotline-phone)" in out
    assert "[cchc-7-khcn](hotline-auth)" in out
    assert "[cchc-7-khcn](hotline-aor)" in out
    assert (
        "; Nhánh 7: Ứng dụng công nghệ thông tin (Sở Khoa học và Công nghệ, từ 01/03/2025)" in out
    )
    assert "[cchc-7](hotline-phone)" in out  # the phone before the change stays known


def test_asterisk_config_writes_every_file_and_keeps_existing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "etc"
    args = [
        "asterisk-config",
        str(target),
        "--routing",
        str(ROUTING_FILE),
        "--example",
        str(ROOT / "asterisk.conf.example"),
        "--dialplan",
        str(ROOT / "dialplan" / "hotline.conf"),
    ]
    code, out, _ = run(capsys, *args, "--static-contacts", "127.0.0.1:5070")
    assert code == 0
    written = {Path(line).name for line in out.split()}
    assert written == {
        "http.conf",
        "ari.conf",
        "pjsip.conf",
        "extensions.conf",
        "manager.conf",
        "rtp.conf",
        "indications.conf",
        "modules.conf",
        "logger.conf",
        "pjsip_hotline.conf",
        "hotline.conf",
        "cel.conf",
        "cel_custom.conf",
        "cel_pgsql.conf",
        "musiconhold.conf",
    }
    assert "load=cel_custom.so" in (target / "modules.conf").read_text()
    assert "contact=sip:cchc-1@127.0.0.1:5070" in (target / "pjsip_hotline.conf").read_text()
    code, _, err = run(capsys, *args)
    assert code == 1
    assert "--overwrite" in err


def test_the_asterisk_side_agrees_with_the_routing(routing: Routing) -> None:
    parts = split_example((ROOT / "asterisk.conf.example").read_text())
    dialplan = (ROOT / "dialplan" / "hotline.conf").read_text()
    assert "#include pjsip_hotline.conf" in parts["pjsip.conf"]
    assert "#include hotline.conf" in parts["extensions.conf"]
    assert "bindaddr=127.0.0.1" in parts["http.conf"]
    # callers hear ringback while a desk rings only with a tone zone
    assert "country=vn" in parts["indications.conf"]
    assert "\nring=425/1000,0/4000\n" in parts["indications.conf"]
    # ARI's outbound websockets need res_websocket_client: never left out of the modules
    assert "autoload=yes" in parts["modules.conf"]
    assert "noload=res_websocket_client" not in parts["modules.conf"]
    assert "noload=res_ari" not in parts["modules.conf"]
    assert "noload=res_stasis" not in parts["modules.conf"]
    assert f"[{routing.hotline.fallback.context}]" in dialplan
    assert "Stasis(${HOTLINE_APP})" in dialplan
    assert "HOTLINE_APP=hotline" in dialplan
    operators = "&".join(routing.branches["9"].endpoints)
    assert f"HOTLINE_OPERATORS={operators}" in dialplan


def test_run_refuses_a_config_without_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_ARI_PASSWORD", raising=False)
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('ari_url = "http://127.0.0.1:8088/ari"\n')
    code, _, err = run(capsys, "run", "--config", str(cfg))
    assert code == 2
    assert "chưa có mật khẩu ARI" in err
    cfg.write_text('ari_pasword = "x"\n')
    code, _, err = run(capsys, "run", "--config", str(cfg))
    assert code == 2
    assert "khoá không được biết đến: ari_pasword" in err


def test_the_readme_demo_command_shows_every_call_as_expected(tmp_path: Path) -> None:
    # from another folder, with the data folder set: the demo keeps its calls there
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATA_DIR"] = str(tmp_path / "data")

    def ivr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ivr.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=env,
            check=False,
        )

    proc = ivr("demo", "--speed", "20")
    assert proc.returncode == 0, proc.stderr
    assert "Tất cả cuộc gọi cho kết quả như mong đợi." in proc.stdout
    assert proc.stdout.count("✓") == 6
    # an old code dialled after the 2025 merger: the record shows both units
    assert "mã 3104: 3104 UBND Phường IV → 3002 UBND phường Vị Tân" in proc.stdout
    # it ends with the commands that list its calls, and they do
    listed = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("  ivr ")]
    assert [cmd[0] for cmd in listed] == ["calls", "voicemails"]
    calls = ivr(*listed[0], "--json")
    assert calls.returncode == 0, calls.stderr
    rows = json.loads(calls.stdout)
    assert len(rows) == 6
    assert {"answered", "voicemail", "closed"} <= {r["disposition"] for r in rows}
    voicemails = ivr(*listed[1], "--json")
    assert voicemails.returncode == 0, voicemails.stderr
    assert {v["call_id"] for v in json.loads(voicemails.stdout)} <= {r["id"] for r in rows}
    assert json.loads(voicemails.stdout)
    assert (tmp_path / "data" / "ivr.db").is_file()
