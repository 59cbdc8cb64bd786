"""Complaint cases and satisfaction answers in `ivr report` (table, JSON, CSV, XLSX) and the
Ministry's DOCX; every figure computed by hand from the fixture cases and answers below.

The week is Monday 23 – Sunday 29 November 2026, Vietnam time (its end: 30/11 00:00).

Cases (owner, received, answer deadline, what happened):
  K1 branch:4  Mon 23 09:00  due 27/11  answered Wed 25          received, resolved, on time
  K2 1001      Tue 24 10:00  due 25/11  answered Fri 27          received, resolved, late
  K3 branch:4  02/11         due 20/11  still open               overdue (not received this week)
  K4 branch:9  Thu 26 08:00  due 10/12  rejected Fri 27          received, rejected
  K5 1001      Sun 29 23:59  due 18/12  still open               received (the last minute counts)
  K6 1001      Mon 30 00:00  due 21/12  still open               after the week: nothing
  → received 4, resolved 2, on time 1 (50 %), rejected 1, overdue 1;
    branch:4 1/1/1/0/1, 1001 2/1/0/0/0, branch:9 1/0/0/1/0.

Answers (branch, phone, score): S1 4 cchc-4a 5 (Mon), S2 4 cchc-4b 3 (Tue), S3 1 cchc-1 4 (Zalo,
Wed), S4 1 cchc-1 1 (Sun 23:59); outside: S5 Mon 30 00:00 (5), S6 Sun 22 23:59 (2).
  → 4 answers, mean (5+3+4+1)/4 = 3.25, CSAT (above the middle, 4–5 of 5) 2/4 = 50 %;
    branch 4: mean 4.0, CSAT 50 %; branch 1: mean 2.5, CSAT 50 %; cchc-4a: 5.0, 100 %.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import zipfile
from pathlib import Path

import docx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cases.facts import read_facts
from ivr.cases.figures import Satisfaction, ScoreFact, on_five, period_figures, satisfied
from ivr.cli import main
from ivr.store.db import make_engine, sqlite_url, upgrade
from models import Call, CallStep, Case, SurveyAnswer
from tests.conftest import ROOT, vn_time
from tests.test_report_measures import fixture_calls, store_with

WEEK = ["--from", "2026-11-23", "--to", "2026-11-29"]


def _case(n: int, owner: str, received: str, due: str, **kw: object) -> Case:
    unit = None if owner.startswith("branch:") else owner
    branch = owner.removeprefix("branch:") if unit is None else None
    return Case(
        number=f"PAKN-2026-{n:04d}", year=2026, received_at=vn_time(received), channel="hotline",
        subject=f"K{n}", category="thủ tục hành chính", owner_unit=unit, branch=branch,
        owner_name={"branch:4": "Văn phòng UBND tỉnh", "1001": "Sở Nội vụ"}.get(owner, owner),
        forward_due=dt.date.fromisoformat(due), answer_due=dt.date.fromisoformat(due),
        status=kw.pop("status", "received"), **kw,
    )  # fmt: skip


def _answer(at: str, score: int, branch: str, phone: str, source: str = "ivr") -> SurveyAnswer:
    return SurveyAnswer(
        answered_at=vn_time(at), score=score, branch=branch, endpoint=phone, source=source,
        external_id=f"z-{at}" if source == "zalo" else None,
    )  # fmt: skip


def feedback_rows() -> list[Case | SurveyAnswer]:
    return [
        _case(1, "branch:4", "2026-11-23 09:00", "2026-11-27", status="answered",
              answered_at=vn_time("2026-11-25 10:00")),
        _case(2, "1001", "2026-11-24 10:00", "2026-11-25", status="answered",
              answered_at=vn_time("2026-11-27 15:00")),
        _case(3, "branch:4", "2026-11-02 09:00", "2026-11-20"),
        _case(4, "branch:9", "2026-11-26 08:00", "2026-12-10", status="rejected",
              closed_at=vn_time("2026-11-27 09:00")),
        _case(5, "1001", "2026-11-29 23:59", "2026-12-18"),
        _case(6, "1001", "2026-11-30 00:00", "2026-12-21"),
        _answer("2026-11-23 10:00", 5, "4", "PJSIP/cchc-4a"),
        _answer("2026-11-24 10:00", 3, "4", "PJSIP/cchc-4b"),
        _answer("2026-11-25 10:00", 4, "1", "PJSIP/cchc-1", "zalo"),
        _answer("2026-11-29 23:59", 1, "1", "PJSIP/cchc-1"),
        _answer("2026-11-30 00:00", 5, "1", "PJSIP/cchc-1"),
        _answer("2026-11-22 23:59", 2, "1", "PJSIP/cchc-1"),
    ]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = store_with(tmp_path, fixture_calls())

    async def fill() -> None:
        engine = make_engine(url, create=False)
        async with AsyncSession(engine) as s, s.begin():
            s.add_all(feedback_rows())
        await engine.dispose()

    asyncio.run(fill())
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(ROOT)
    return tmp_path


COMPLAINTS = {"received": 4, "resolved": 2, "on_time": 1, "rejected": 1, "overdue": 1,
              "on_time_rate": 0.5}  # fmt: skip


def test_json_has_the_period_s_cases_and_answers(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *WEEK, "--by", "branch", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complaints"] == COMPLAINTS
    by_owner = {k: list(v.values())[:5] for k, v in data["complaints_by_owner"].items()}
    assert by_owner == {"branch:4": [1, 1, 1, 0, 1], "1001": [2, 1, 0, 0, 0],
                        "branch:9": [1, 0, 0, 1, 0]}  # fmt: skip
    assert data["owner_names"]["1001"] == "Sở Nội vụ"
    assert data["satisfaction"] == {"answers": 4, "mean": 3.25, "csat_rate": 0.5}
    assert data["satisfaction_by_branch"] == {
        "1": {"answers": 2, "mean": 2.5, "csat_rate": 0.5},
        "4": {"answers": 2, "mean": 4.0, "csat_rate": 0.5},
    }
    assert data["satisfaction_by_phone"]["PJSIP/cchc-4a"] == {
        "answers": 1,
        "mean": 5.0,
        "csat_rate": 1.0,
    }


def test_table_says_it_in_words(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *WEEK]) == 0
    out = capsys.readouterr().out
    assert (
        "Phản ánh, kiến nghị: tiếp nhận 4; đã trả lời 2, trong đó đúng hạn 1 (50,0 %); "
        "từ chối 1; quá hạn chưa trả lời 1"
    ) in out
    assert "  Sở Nội vụ: tiếp nhận 2; đã trả lời 1, trong đó đúng hạn 0 (0,0 %)" in out
    assert (
        "Mức độ hài lòng: 4 lượt đánh giá, điểm trung bình 3,25/5, "
        "tỷ lệ hài lòng (điểm trên mức giữa thang) 50,0 %"
    ) in out
    assert "  Nhánh 1: 2 lượt đánh giá, điểm trung bình 2,50/5" in out


def test_csv_and_xlsx_carry_them_in_the_rows_that_have_them(store: Path) -> None:
    out = store / "r.csv"
    assert (
        main(
            [
                "report",
                *WEEK,
                "--by",
                "branch",
                "--by",
                "phone",
                "--format",
                "csv",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_bytes().decode("utf-8-sig")
    rows = {(r["Nhóm theo"], r["Mã"]): r for r in csv.DictReader(text.splitlines())}
    total = rows[("total", "total")]
    assert [total[h] for h in ("PAKN tiếp nhận", "PAKN đã trả lời", "PAKN đúng hạn")] == [
        "4",
        "2",
        "1",
    ]
    assert [total[h] for h in ("PAKN từ chối", "PAKN quá hạn")] == ["1", "1"]
    assert [total[h] for h in ("Lượt đánh giá", "Điểm hài lòng TB", "Tỷ lệ hài lòng (CSAT)")] == [
        "4",
        "3.25",
        "0.5",
    ]
    four = rows[("branch", "4")]  # branch 4's answers, and the cases it owns as branch:4
    assert (four["Điểm hài lòng TB"], four["PAKN quá hạn"], four["PAKN tiếp nhận"]) == (
        "4.0",
        "1",
        "1",
    )
    assert rows[("phone", "PJSIP/cchc-4a")]["Tỷ lệ hài lòng (CSAT)"] == "1.0"
    assert rows[("phone", "PJSIP/cchc-4a")]["PAKN tiếp nhận"] == ""  # cases have no phone
    xlsx = store / "r.xlsx"
    assert main(["report", *WEEK, "--by", "branch", "--format", "xlsx", "--out", str(xlsx)]) == 0
    with zipfile.ZipFile(xlsx) as z:
        shared = z.read("xl/sharedStrings.xml").decode()
        total_sheet = z.read("xl/worksheets/sheet2.xml").decode()  # Nhánh, then Cả kỳ
    assert "Tỷ lệ hài lòng (CSAT)" in shared
    assert "<v>3.25</v>" in total_sheet


def test_ministry_docx_states_cases_and_satisfaction(store: Path) -> None:
    out = store / "bc.docx"
    assert main(["report", "ministry", *WEEK, "--out", str(out)]) == 0
    text = "\n".join(p.text for p in docx.Document(str(out)).paragraphs)
    assert (
        "Phản ánh, kiến nghị tiếp nhận và xử lý: tiếp nhận 4; đã trả lời 2, trong đó đúng hạn 1 "
        "(50,0 %); từ chối 1; quá hạn chưa trả lời 1."
    ) in text
    assert (
        "Mức độ hài lòng của người gọi: 4 lượt đánh giá, điểm trung bình 3,25/5, "
        "tỷ lệ hài lòng (điểm trên mức giữa thang) 50,0 %."
    ) in text
    assert (
        "- Nhánh 4 (Cải cách thủ tục hành chính): 2 lượt đánh giá, điểm trung bình 4,00/5" in text
    )
    # the results section also gives the cases by owner and by category (hand counts above)
    assert (
        "- Sở Nội vụ: tiếp nhận 2; đã trả lời 1, trong đó đúng hạn 0 (0,0 %); từ chối 0; "
        "quá hạn chưa trả lời 0;"
    ) in text
    assert (
        "- Loại “thủ tục hành chính”: tiếp nhận 4; đã trả lời 2, trong đó đúng hạn 1 "
        "(50,0 %); từ chối 1; quá hạn chưa trả lời 1;"
    ) in text


# --- CSAT on any scale (ivr.cases.figures; MEASURES.md) ---------------------------------------
# Branch 3 asked on a 3-point scale: 3, 2, 1, 3 → satisfied (above 2): 3, 3 → 2/4 = 50 %;
#   on the 5-point scale 5, 3, 1, 5 → mean 14/4 = 3.5.
# Branch 5 on a 5-point scale: 5, 4, 3 → satisfied (above 3): 5, 4 → 2/3 = 66.7 %; mean 12/3 = 4.0.
# Together: 4/7 = 57.1 %, mean 26/7 = 3.714… → 3.71.
# The other scales: 2 of 2 satisfied (→ 5), 1 of 2 not (→ 1); 3 of 4 satisfied (→ 3.67), 2 of 4 not.
MIXED = [("3", 3, 3), ("3", 2, 3), ("3", 1, 3), ("3", 3, 3), ("5", 5, 5), ("5", 4, 5), ("5", 3, 5)]


def test_csat_counts_each_answer_above_the_middle_of_its_own_scale() -> None:
    at = vn_time("2026-11-24 10:00")
    facts = [ScoreFact(at, score, branch=b, scale=n) for b, score, n in MIXED]
    f = period_figures([], facts, vn_time("2026-11-23 00:00"), vn_time("2026-11-30 00:00"))
    assert f.satisfaction == Satisfaction(7, 3.71, 57.1)
    assert f.satisfaction_by_branch == {
        "3": Satisfaction(4, 3.5, 50.0),
        "5": Satisfaction(3, 4.0, 66.7),
    }
    assert [satisfied(s, 2) for s in (1, 2)] == [False, True]
    assert [satisfied(s, 4) for s in (1, 2, 3, 4)] == [False, False, True, True]
    assert [round(on_five(s, 4), 2) for s in (1, 2, 3, 4)] == [1.0, 2.33, 3.67, 5.0]


async def test_an_answer_is_read_with_the_scale_its_call_recorded(tmp_path: Path) -> None:
    """The answered step says ``scale=N`` (ivr.flow.survey); a call without it, and Zalo's
    rating, are on 5 points."""
    await asyncio.to_thread(upgrade, sqlite_url(tmp_path))
    engine = make_engine(sqlite_url(tmp_path))
    at = vn_time("2026-11-24 10:00")
    rows: list[object] = []
    for key, detail in (("n/three", "scale=3"), ("n/old", "PJSIP/cchc-4a")):
        rows.append(
            Call(id=key, channel_id=key[2:], node="n", controller="c", linked_id=key,
                 caller_number="0912345678", started_at=at, disposition="answered",
                 routing_version="v")
        )  # fmt: skip
        rows.append(CallStep(call_id=key, seq=1, node="survey", kind="survey",
                             outcome="answered", input="3", detail=detail, at=at))  # fmt: skip
        rows.append(SurveyAnswer(call_id=key, source="ivr", answered_at=at, score=3))
    rows.append(SurveyAnswer(source="zalo", external_id="z", answered_at=at, score=3))
    try:
        async with AsyncSession(engine) as s, s.begin():
            s.add_all(rows)
        _, scores = await read_facts(engine, at - dt.timedelta(hours=1), at + dt.timedelta(hours=1))
    finally:
        await engine.dispose()
    by_call = {(a.source, a.score, a.scale) for a in scores}
    assert by_call == {("ivr", 3, 3), ("ivr", 3, 5), ("zalo", 3, 5)}
    assert sum(satisfied(a.score, a.scale) for a in scores) == 1  # 3 of 3 only


# --- CSAT per month ------------------------------------------------------------------------------
# October and November 2026: the fixture's November answers are S1 5, S2 3, S3 4, S4 1, S5 5 (Mon
# 30/11 00:00), S6 2 (Sun 22/11) → 6 answers, mean 20/6 = 3.33, CSAT (4–5: 5, 4, 5) 3/6 = 0.5;
# one answer added on 15/10 (4) → October 1 answer, mean 4.0, CSAT 1.0.


def test_satisfaction_per_month(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def october() -> None:
        engine = make_engine(sqlite_url(store), create=False)
        async with AsyncSession(engine) as s, s.begin():
            s.add(_answer("2026-10-15 10:00", 4, "4", "PJSIP/cchc-4a"))
        await engine.dispose()

    asyncio.run(october())
    months = ["--from", "2026-10-01", "--to", "2026-11-30", "--by", "month"]
    assert main(["report", *months, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["satisfaction_by_month"] == {
        "2026-10": {"answers": 1, "mean": 4.0, "csat_rate": 1.0},
        "2026-11": {"answers": 6, "mean": 3.33, "csat_rate": 0.5},
    }
    assert main(["report", *months]) == 0
    out = capsys.readouterr().out
    assert "  Tháng 10/2026: 1 lượt đánh giá, điểm trung bình 4,00/5" in out
    assert "  Tháng 11/2026: 6 lượt đánh giá, điểm trung bình 3,33/5" in out
    csv_out = store / "m.csv"
    assert main(["report", *months, "--format", "csv", "--out", str(csv_out)]) == 0
    text = csv_out.read_bytes().decode("utf-8-sig")
    rows = {(r["Nhóm theo"], r["Mã"]): r for r in csv.DictReader(text.splitlines())}
    assert rows[("month", "2026-11")]["Lượt đánh giá"] == "6"
    assert rows[("month", "2026-11")]["Tỷ lệ hài lòng (CSAT)"] == "0.5"
