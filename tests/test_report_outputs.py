"""`ivr report`: periods, every output format, the README's commands, and the Ministry's DOCX
(rendered with LibreOffice, its figures equal to the JSON report's)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.reports.periods import PeriodError, period_of
from tests.conftest import ROOT
from tests.test_report_measures import fixture_calls, store_with

TODAY = dt.date(2026, 11, 26)  # a Thursday


@pytest.mark.parametrize(
    ("named", "first", "last"),
    [
        ("2026-10", "2026-10-01", "2026-10-31"),
        ("2026-Q3", "2026-07-01", "2026-09-30"),
        ("2026", "2026-01-01", "2026-12-31"),
        ("this-week", "2026-11-23", "2026-11-29"),
        ("2026-02", "2026-02-01", "2026-02-28"),
    ],
)
def test_named_periods(named: str, first: str, last: str) -> None:
    p = period_of(None, None, named, TODAY)
    assert (p.first.isoformat(), p.last.isoformat()) == (first, last)


def test_bad_periods_are_refused() -> None:
    for args in [("2026-11-30", "2026-11-01", None), (None, None, "2026-13"), ("x", "y", None)]:
        with pytest.raises(PeriodError):
            period_of(*args, today=TODAY)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store_with(tmp_path, fixture_calls())
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(ROOT)
    return tmp_path


WEEK = ["--from", "2026-11-23", "--to", "2026-11-29"]


def test_json_and_csv(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *WEEK, "--by", "branch", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["received"] == 11
    assert data["period"] == {
        "from": "2026-11-23",
        "to": "2026-11-29",
        "timezone": "Asia/Ho_Chi_Minh",
    }
    assert data["complaints"]["received"] == 0  # no cases here: tests/test_report_feedback
    assert data["satisfaction"] == {"answers": 0, "mean": None, "csat_rate": None}
    out = store / "r.csv"
    assert main(["report", *WEEK, "--by", "branch", "--format", "csv", "--out", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    assert "Cải cách thủ tục hành chính" in raw.decode("utf-8-sig")


def test_xlsx_has_a_sheet_per_grouping_and_a_chart(store: Path) -> None:
    out = store / "r.xlsx"
    assert (
        main(["report", *WEEK, "--by", "branch", "day", "--format", "xlsx", "--out", str(out)]) == 0
    )
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        workbook = z.read("xl/workbook.xml").decode()
        sheet1 = z.read("xl/worksheets/sheet1.xml").decode()
    assert all(f'name="{n}"' in workbook for n in ("Nhánh", "Ngày", "Cả kỳ"))
    assert "xl/charts/chart1.xml" in names
    assert 'state="frozen"' in sheet1


def test_png_is_written_and_its_font_has_every_vietnamese_letter(store: Path) -> None:
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    out = store / "r.png"
    assert main(["report", *WEEK, "--format", "png", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cmap = TTFont(font_manager.findfont("DejaVu Sans", fallback_to_default=False)).getBestCmap()
    labels = "Cuộc gọi đến theo ngày nhánh giờ và thứ trong tuần Thứ Hai Ba Tư Năm Sáu Bảy Chủ nhật"
    assert all(ord(c) in cmap for c in labels)


def test_bad_usage_exits_2(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--period", "2026-13"]) == 2
    assert main(["report", *WEEK, "--format", "xlsx"]) == 2  # no --out
    assert "--out" in capsys.readouterr().err


def test_readme_commands_run(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Báo cáo", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^ivr report .*$", section, re.M)
    assert len(commands) >= 5
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)[1:]
        if "--out" not in argv and "--format" not in argv:
            argv += ["--format", "json"]
        argv += ["--routing", str(ROOT / "routing" / "hotline.yaml")]
        assert main(argv) == 0, command


needs_soffice = pytest.mark.skipif(
    shutil.which("soffice") is None or shutil.which("pdftotext") is None,
    reason="LibreOffice (libreoffice-writer-nogui) and poppler-utils are needed",
)


@needs_soffice
def test_ministry_docx_renders_and_matches_the_json(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *WEEK, "--by", "branch", "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    docx = store / "bao-cao.docx"
    assert main(["report", "ministry", *WEEK, "--out", str(docx)]) == 0
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{store}/lo",
         "--convert-to", "pdf", "--outdir", str(store), str(docx)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    pdf = store / "bao-cao.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert "(A4)" in info
    page1 = subprocess.run(
        ["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for words in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "SỞ NỘI VỤ",
                  "BÁO CÁO", "Kính gửi: Bộ Nội vụ"):  # fmt: skip
        assert words in page1
    text = " ".join(
        subprocess.run(
            ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert f"Tổng số cuộc gọi đến: {total['received']} cuộc" in text
    assert (
        f"(trong giờ hành chính {total['received_open']}; ngoài giờ {total['received_closed']}; ngày nghỉ lễ {total['received_holiday']})"
        in text
    )
    assert f"được cán bộ trả lời: {total['answered']} cuộc, đạt 50,0 %" in text
    assert total["answered_rate"] == 0.5
    assert "hài lòng của người gọi: chưa có lượt đánh giá nào trong kỳ" in text
    # margins: the body's left edge sits 30 mm in (pdftotext -bbox gives points)
    bbox = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
                          check=True, capture_output=True, text=True).stdout  # fmt: skip
    left = min(float(x) for x in re.findall(r'xMin="([\d.]+)"', bbox))
    assert 30 * 72 / 25.4 - 2 <= left <= 35 * 72 / 25.4
