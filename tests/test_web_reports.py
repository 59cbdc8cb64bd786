"""Báo cáo in the console: the period form, the charts' data, and the downloads (CSV, XLSX, JSON,
the Ministry's DOCX) read back with their own parsers; every figure equals the JSON report."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import docx
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cli import main
from ivr.web.app import make_app
from ivr.web.data.report_files import ascii_name
from ivr.web.routing_desk import RoutingDesk
from models import CallStep, SurveyAnswer
from tests.conftest import vn_time
from tests.test_report_feedback import feedback_rows
from tests.test_web import ROOT, T0, Site, call, make_site, signed_in, web_config

DAY = "from=2026-11-25&to=2026-11-25"
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The console's site, and two calls a desk answered (branch 1 and branch 6) on the day."""
    s = await make_site(tmp_path)
    async with AsyncSession(s.engine) as db, db.begin():
        for key, branch in (("a-1", "1"), ("a-6", "6")):
            at = T0 + dt.timedelta(minutes=10)
            db.add(call(key, at, branch=branch, answered_at=at + dt.timedelta(seconds=12)))
            db.add(
                CallStep(
                    call_id=key,
                    seq=0,
                    node="main-menu",
                    kind="menu",
                    outcome="chosen",
                    input=branch,
                    at=at,
                )
            )
            db.add(
                CallStep(
                    call_id=key,
                    seq=1,
                    node=f"dial-{branch}",
                    kind="dial",
                    outcome="answered",
                    input="",
                    at=at + dt.timedelta(seconds=40),
                )
            )
    yield s
    await s.engine.dispose()


@pytest.fixture
async def client(site: Site) -> AsyncIterator[TestClient[object, object]]:
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert desk.reload()
    async with TestClient(TestServer(make_app(site.engine, web_config(site), desk))) as c:
        yield c


def filename_of(r: ClientResponse) -> str:
    header = r.headers["Content-Disposition"]
    assert header.startswith("attachment;")
    m = re.search(r"filename\*=UTF-8''(\S+)", header)
    assert m, header
    fallback = re.search(r'filename="([^"]+)"', header)
    assert fallback
    assert fallback.group(1).isascii()
    return unquote(m.group(1))


async def json_report(c: TestClient[object, object], query: str) -> dict[str, object]:
    r = await c.get(f"/reports/download/json?{query}")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    data: dict[str, object] = json.loads(await r.read())
    return data


def branch_rows(report: dict[str, object]) -> dict[str, dict[str, object]]:
    groups = report["groups"]
    assert isinstance(groups, dict)
    return {row["key"]: row for row in groups["branch"]}


def xlsx_sheets(body: bytes) -> dict[str, list[list[object]]]:
    """Every sheet's cells as rows of strings and numbers, read from the workbook's XML."""
    book = zipfile.ZipFile(io.BytesIO(body))
    strings = [
        "".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t"))
        for si in ET.fromstring(book.read("xl/sharedStrings.xml")).findall("m:si", NS)
    ]
    rels = ET.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = {r.get("Id"): r.get("Target") for r in rels}
    sheets: dict[str, list[list[object]]] = {}
    for sheet in ET.fromstring(book.read("xl/workbook.xml")).find("m:sheets", NS) or []:
        root = ET.fromstring(book.read(f"xl/{target[sheet.get(RELS)]}"))
        rows = []
        for row in root.iter(f"{{{NS['m']}}}row"):
            cells: list[object] = []
            for c in row.findall("m:c", NS):
                v = c.find("m:v", NS)
                if v is None or v.text is None:
                    cells.append(None)
                elif c.get("t") == "s":
                    cells.append(strings[int(v.text)])
                else:
                    cells.append(float(v.text))
            rows.append(cells)
        sheets[str(sheet.get("name"))] = rows
    return sheets


async def test_page_shows_the_period_and_draws_from_json_data(
    client: TestClient[object, object],
) -> None:
    await signed_in(client, "giamsat")
    html = await (await client.get(f"/reports?{DAY}&by=branch&by=disposition")).text()
    assert "Kỳ 25/11/2026 – 25/11/2026: 6 cuộc gọi đến, 2 được trả lời" in html
    assert "Theo nhánh" in html
    assert "Theo kết quả" in html
    m = re.search(r'id="chart-branches"[^>]*data-chart="([^"]+)"', html)
    assert m
    chart = json.loads(m.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert chart["labels"][0].startswith("1.")
    # branch 1: c-evil, a-1; branch 6: c-6, c-out, a-6; no branch: c-unit
    assert chart["series"] == [
        {"label": "Cuộc gọi đến", "data": [2, 3, 1]},
        {"label": "Được trả lời", "data": [1, 1, 0]},
    ]
    assert 'src="/static/chart.umd.js' in html  # vendored, no CDN
    assert "https://" not in html


async def test_bad_period_is_a_clear_error(client: TestClient[object, object]) -> None:
    await signed_in(client, "giamsat")
    r = await client.get("/reports?from=2026-11-30&to=2026-11-01")
    assert r.status == 400
    assert "đứng trước" in await r.text()
    r = await client.get("/reports?period=quý-ba")
    assert r.status == 400
    assert "không hợp lệ" in await r.text()
    r = await client.get(f"/reports/download/xlsx?{DAY}&by=nhánh")
    assert r.status == 400
    assert (await client.get(f"/reports/download/pdf?{DAY}")).status == 404


@pytest.mark.parametrize("who", ["sotaichinh", "sonoivu"])
async def test_clerks_cannot_download(client: TestClient[object, object], who: str) -> None:
    await signed_in(client, who)
    for kind in ("csv", "xlsx", "json", "docx"):
        assert (await client.get(f"/reports/download/{kind}?{DAY}")).status == 403


async def test_signed_out_cannot_download(client: TestClient[object, object]) -> None:
    r = await client.get(f"/reports/download/csv?{DAY}", allow_redirects=False)
    assert r.status == 302


async def test_csv_download_equals_the_json(client: TestClient[object, object]) -> None:
    await signed_in(client, "giamsat")
    report = await json_report(client, f"{DAY}&by=branch")
    total = report["total"]
    assert isinstance(total, dict)
    assert (total["received"], total["answered"], total["voicemail"]) == (6, 2, 2)
    r = await client.get(f"/reports/download/csv?{DAY}&by=branch")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert filename_of(r) == "Báo cáo tổng đài 25-11-2026 đến 25-11-2026.csv"
    text = (await r.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    by_key = {(row["Nhóm theo"], row["Mã"]): row for row in rows}
    for key, want in branch_rows(report).items():
        row = by_key[("branch", key)]
        assert int(row["Cuộc gọi đến"]) == want["received"]
        assert int(row["Được trả lời"]) == want["answered"]
        assert int(row["Để lại lời nhắn"]) == want["voicemail"]
    assert int(by_key[("total", "total")]["Cuộc gọi đến"]) == total["received"]


async def test_xlsx_download_equals_the_json(client: TestClient[object, object]) -> None:
    await signed_in(client, "admin")
    report = await json_report(client, f"{DAY}&by=branch")
    r = await client.get(f"/reports/download/xlsx?{DAY}&by=branch")
    assert r.status == 200
    assert r.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert filename_of(r) == "Báo cáo tổng đài 25-11-2026 đến 25-11-2026.xlsx"
    sheets = xlsx_sheets(await r.read())
    assert list(sheets) == ["Nhánh", "Cả kỳ"]
    header, *rows = sheets["Nhánh"]
    received, answered = header.index("Cuộc gọi đến"), header.index("Được trả lời")
    got = {str(row[0]): (row[received], row[answered]) for row in rows}
    want = {k: (float(v["received"]), float(v["answered"])) for k, v in branch_rows(report).items()}
    assert got == want
    total = report["total"]
    assert isinstance(total, dict)
    assert sheets["Cả kỳ"][1][received] == total["received"]


async def test_ministry_docx_download_equals_the_json(client: TestClient[object, object]) -> None:
    await signed_in(client, "giamsat")
    report = await json_report(client, f"{DAY}&by=branch")
    r = await client.get(f"/reports/download/docx?{DAY}")  # branch is added for the table
    assert r.status == 200
    assert r.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    name = filename_of(r)
    assert name == "Báo cáo gửi Bộ Nội vụ 25-11-2026 đến 25-11-2026.docx"
    assert ascii_name(name) == "Bao-cao-gui-Bo-Noi-vu-25-11-2026-den-25-11-2026.docx"
    document = docx.Document(io.BytesIO(await r.read()))
    text = "\n".join(p.text for p in document.paragraphs)
    total = report["total"]
    assert isinstance(total, dict)
    assert f"Tổng số cuộc gọi đến: {total['received']} cuộc" in text
    assert f"trả lời {total['answered']} cuộc" in text
    table = next(t for t in document.tables if t.rows[0].cells[0].text == "Nhánh")
    got = {row.cells[0].text: (row.cells[2].text, row.cells[3].text) for row in table.rows[1:]}
    want = {k: (str(v["received"]), str(v["answered"])) for k, v in branch_rows(report).items()}
    assert got == want


def docx_text(body: bytes) -> str:
    """Every paragraph of the document, its tables' cells included (the agency header is one)."""
    document = docx.Document(io.BytesIO(body))
    cells = [
        p.text for t in document.tables for row in t.rows for c in row.cells for p in c.paragraphs
    ]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def agency_file(tmp_path: Path) -> Path:
    """The example with this agency's own text, as an admin edits it."""
    text = (ROOT / "ivr" / "reports" / "agency.example.toml").read_text(encoding="utf-8")
    for old, new in (
        ('agency = "SỞ NỘI VỤ"', 'agency = "SỞ KIỂM THỬ"'),
        ('report_number = "..."', 'report_number = "417"'),
        ('signer_name = "..."', 'signer_name = "Trần Thị Kiểm Thử"'),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "co-quan.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_ministry_docx_uses_the_agency_file_the_cli_uses(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's DOCX is written from the agency file it was started with (`ivr web
    --agency`), and reads as `ivr report ministry --agency` writes it from the same file."""
    agency = agency_file(tmp_path)
    desk = RoutingDesk(site.routing_file, ROOT / "prompts" / "manifest.yaml")
    assert desk.reload()
    config = dataclasses.replace(web_config(site), agency=agency)
    async with TestClient(TestServer(make_app(site.engine, config, desk))) as c:
        await signed_in(c, "giamsat")
        r = await c.get(f"/reports/download/docx?{DAY}")
        assert r.status == 200
        web_text = docx_text(await r.read())
    assert "Trần Thị Kiểm Thử" in web_text
    assert "SỞ KIỂM THỬ" in web_text
    assert "Số: 417/BC-SNV" in web_text
    assert "SỞ NỘI VỤ" not in web_text  # not the example's
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    out = tmp_path / "cli.docx"
    argv = ["report", "ministry", "--db", site.url, "--routing", str(site.routing_file)]
    argv += ["--from", "2026-11-25", "--to", "2026-11-25", "--agency", str(agency)]
    assert await asyncio.to_thread(main, [*argv, "--out", str(out)]) == 0
    assert docx_text(out.read_bytes()) == web_text


def test_web_refuses_a_bad_agency_file_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IVR_DATABASE_URL", raising=False)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    bad = tmp_path / "co-quan.toml"
    bad.write_text('agency = "SỞ KIỂM THỬ"\n', encoding="utf-8")  # the rest is missing
    assert main(["web", "--agency", str(bad), "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "thiếu" in err


class FeedbackCells(HTMLParser):
    """The page's complaint and satisfaction tables: {table id: {row key: {figure: raw value}}}
    (the raw value as the cell's data-v; its text kept too)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self.texts: dict[str, list[str]] = {}
        self._table = self._row = self._cell = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and "feedback" in a.get("class", ""):
            self._table = a["id"]
            self.tables[self._table] = {}
            self.texts[self._table] = []
        elif tag == "tr" and self._table and "data-key" in a:
            self._row = a["data-key"]
            self.tables[self._table][self._row] = {}
        elif tag == "td" and self._row and "data-k" in a:
            self.tables[self._table][self._row][a["data-k"]] = a["data-v"]
            self._cell = a["data-k"]

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.texts[self._table].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = ""
        elif tag == "tr":
            self._row = ""
        elif tag == "table":
            self._table = ""


def as_numbers(cells: dict[str, str]) -> dict[str, float | None]:
    return {k: float(v) if v else None for k, v in cells.items()}


def json_numbers(figures: dict[str, object], keys: list[str]) -> dict[str, float | None]:
    return {k: None if figures[k] is None else float(figures[k]) for k in keys}  # type: ignore[arg-type]


async def cli_json(site: Site, tmp_path: Path, *period: str) -> dict[str, Any]:
    out = tmp_path / f"{'_'.join(period)}.json"
    argv = ["report", "--db", site.url, "--routing", str(site.routing_file), *period]
    assert await asyncio.to_thread(main, [*argv, "--format", "json", "--out", str(out)]) == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


async def test_page_shows_cases_and_satisfaction_as_the_cli_reports_them(
    site: Site,
    client: TestClient[object, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Complaint cases (received, resolved, on time, overdue; by category and owner) and CSAT
    (per branch, phone, month) on Báo cáo equal `ivr report --format json` for the same period
    """
    async with AsyncSession(site.engine) as s, s.begin():
        s.add_all(feedback_rows())
        s.add(
            SurveyAnswer(
                answered_at=vn_time("2026-10-15 10:00"), score=2, branch="6",
                endpoint="PJSIP/cchc-6", source="ivr",
            )
        )  # fmt: skip
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    await signed_in(client, "giamsat")
    r = await client.get("/reports?from=2026-10-01&to=2026-11-29&by=branch")
    assert r.status == 200
    page = FeedbackCells()
    page.feed(await r.text())
    cli = await cli_json(site, tmp_path, "--from", "2026-10-01", "--to", "2026-11-29")
    complaint_keys = ["received", "resolved", "on_time", "on_time_rate", "rejected", "overdue"]
    csat_keys = ["answers", "mean", "csat_rate"]
    t = page.tables
    assert as_numbers(t["complaints"]["total"]) == json_numbers(cli["complaints"], complaint_keys)
    for table, key in (
        ("complaints-by-category", "complaints_by_category"),
        ("complaints-by-owner", "complaints_by_owner"),
    ):
        assert {k: as_numbers(v) for k, v in t[table].items()} == {
            k: json_numbers(v, complaint_keys) for k, v in cli[key].items()
        }
    assert as_numbers(t["csat"]["total"]) == json_numbers(cli["satisfaction"], csat_keys)
    for table, key in (("csat-by-branch", "satisfaction_by_branch"),
                       ("csat-by-phone", "satisfaction_by_phone"),
                       ("csat-by-month", "satisfaction_by_month")):  # fmt: skip
        assert {k: as_numbers(v) for k, v in t[table].items()} == {
            k: json_numbers(v, csat_keys) for k, v in cli[key].items()
        }
    assert set(t["csat-by-month"]) == {"2026-10", "2026-11"}
    # what the page says is what was counted: the fixture's figures, computed by hand there
    assert t["complaints"]["total"]["received"] == "5"  # K1–K5: K3 (2 Nov) is in this period
    assert t["csat-by-month"]["2026-10"] == {"answers": "1", "mean": "2.0", "csat_rate": "0.0"}
    assert "Sở Nội vụ" in (await r.text())
    assert "50,0 %" in page.texts["complaints"]  # on time 1 of 2 resolved
