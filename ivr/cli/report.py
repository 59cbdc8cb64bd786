"""`ivr report`: call-volume reports for supervisors; `ivr report ministry`: the DOCX draft of
the report to the Ministry. The figures come from ivr.reports; this module only parses flags,
opens the store and writes the output."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ivr.cli.codes import DONE, USAGE
from ivr.cli.settings import database_problem, database_url, require_database, settings_of
from ivr.cli.terminal import escape
from ivr.reports import excel, formats
from ivr.reports.agency import AgencyError, load_agency
from ivr.reports.grouping import GROUPINGS
from ivr.reports.measures import SERVICE_SECONDS, SHORT_ABANDON_SECONDS, Options
from ivr.reports.ministry import write_ministry
from ivr.reports.periods import TZ, PeriodError, parse_day, period_of
from ivr.reports.query import report_from_store
from ivr.reports.report import Report, local_today
from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing
from ivr.store.db import make_engine, require_current
from ivr.store.errors import NotReady

FORMATS = ("table", "csv", "xlsx", "json", "png")
BINARY = {"xlsx", "png"}


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="báo cáo cuộc gọi (bảng, csv, xlsx, json, png); `ivr report ministry` báo cáo gửi Bộ",
        description="Định nghĩa các chỉ số: ivr/reports/MEASURES.md",
    )
    p.add_argument("ministry", nargs="?", choices=["ministry"], help="báo cáo gửi Bộ Nội vụ (DOCX)")
    p.add_argument("--db", help="URL cơ sở dữ liệu (mặc định theo cấu hình)")
    p.add_argument("--from", dest="since", help="từ ngày YYYY-MM-DD (giờ Việt Nam)")
    p.add_argument("--to", dest="until", help="đến hết ngày YYYY-MM-DD")
    p.add_argument("--period", help="2026-10 (tháng), 2026-Q3 (quý), 2026 (năm), this-week…")
    p.add_argument("--by", action="extend", nargs="+", default=[], choices=GROUPINGS)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--out", type=Path, help="tệp kết quả (bắt buộc với xlsx, png, ministry)")
    p.add_argument("--as-of", help="nhóm đơn vị cũ theo đơn vị kế nhiệm vào ngày này (hoặc today)")
    p.add_argument("--short-abandon", type=float, default=SHORT_ABANDON_SECONDS, help="giây")
    p.add_argument("--service-seconds", type=float, default=SERVICE_SECONDS, help="giây")
    p.add_argument("--routing", type=Path, help="tệp định tuyến (mặc định theo cấu hình)")
    p.add_argument("--agency", type=Path, help="tệp thông tin cơ quan (báo cáo gửi Bộ)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    try:
        today = local_today(TZ)
        period = period_of(args.since, args.until, args.period, today)
        as_of = None
        if args.as_of is not None:
            as_of = today if args.as_of == "today" else parse_day(args.as_of)
        agency = load_agency(args.agency) if args.ministry else None
    except (PeriodError, AgencyError) as e:
        print(e, file=sys.stderr)
        return USAGE
    if (args.ministry or args.format in BINARY) and args.out is None:
        print("cần --out TỆP cho định dạng này", file=sys.stderr)
        return USAGE
    try:
        routing: Routing | None = load_routing(args.routing or Path(settings.routing))
    except RoutingError as e:
        print(f"tệp định tuyến: {e}", file=sys.stderr)
        return USAGE
    url = database_url(settings, args.db)
    require_database(url)
    by = list(dict.fromkeys(args.by or []))
    if args.ministry and "branch" not in by:
        by.append("branch")
    options = Options(args.short_abandon, args.service_seconds)
    try:
        report = asyncio.run(_build(url, period, by, routing, options, as_of))
    except NotReady as e:
        print(e, file=sys.stderr)
        return USAGE
    except (SQLAlchemyError, OSError) as e:  # down, refused, corrupt: one line (settings.py)
        code, line = database_problem(e, url)
        print(line, file=sys.stderr)
        return code
    if agency is not None:
        write_ministry(report, routing, agency, args.out, today)
        print(f"đã ghi báo cáo gửi Bộ: {args.out}")
        return DONE
    return _write(report, args.format, args.out)


async def _build(
    url: str, period: Any, by: list[str], routing: Routing | None, options: Options, as_of: Any
) -> Report:
    engine = make_engine(url, create=False)
    try:
        await require_current(engine)
        return await report_from_store(engine, period, by, routing, options, as_of)
    finally:
        await engine.dispose()


def _for_terminal(report: Report) -> Report:
    """The report with the store's names (phones, units, owners) escaped: a control character
    or a newline in one is shown, never obeyed nor taken for a new row."""
    groups = {
        by: [dataclasses.replace(r, label=escape(r.label)) for r in rows]
        for by, rows in report.groups.items()
    }
    owners = {k: escape(v) for k, v in report.owner_names.items()}
    return dataclasses.replace(report, groups=groups, owner_names=owners)


def _write(report: Report, fmt: str, out: Path | None) -> int:
    if fmt == "xlsx" and out is not None:
        excel.write_xlsx(report, out)
    elif fmt == "png" and out is not None:
        from ivr.reports import charts  # matplotlib: ~1 s to import, only for PNG

        charts.write_png(report, out)
    else:
        if fmt == "table" and out is None:
            sys.stdout.write(formats.table(_for_terminal(report)))
            return DONE
        text = {"table": formats.table, "csv": formats.csv_text, "json": formats.json_text}[fmt](
            report
        )
        if out is None:
            sys.stdout.write(text)  # CSV keeps its BOM: `> file.csv` opens in Excel
            return DONE
        out.write_text(text, encoding="utf-8")
    print(f"đã ghi {out}", file=sys.stderr)
    return DONE
