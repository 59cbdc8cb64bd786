"""`ivr db`, `ivr calls`, `ivr voicemails`: the store, for admins, supervisors and clerks."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.reconcile import add_reconcile
from ivr.cli.rollups import add_rollups
from ivr.cli.settings import database_problem, database_url, require_database, settings_of
from ivr.cli.terminal import escape, json_text
from ivr.store.backup import BackupFailed, backup_sqlite
from ivr.store.db import make_engine, require_current, upgrade
from ivr.store.errors import NotReady
from ivr.store.purge import Purged, purge
from ivr.store.queries import (
    AmbiguousCall,
    CallFilter,
    get_call,
    list_calls,
    list_voicemails,
    mask_number,
    set_voicemail_status,
)
from models import Call, Voicemail

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def add_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="cơ sở dữ liệu ghi cuộc gọi").add_subparsers()
    up = db.add_parser("upgrade", help="tạo hoặc nâng cấp cơ sở dữ liệu")
    _db_arg(up)
    up.set_defaults(func=_cmd_upgrade)
    pg = db.add_parser("purge", help="xoá cuộc gọi cũ (dữ liệu cá nhân: số người gọi)")
    _db_arg(pg)
    pg.add_argument("--older-than", required=True, help="vd. 2y, 18m, 90d")
    pg.set_defaults(func=_cmd_purge)
    bk = db.add_parser(
        "backup", help="sao lưu cơ sở dữ liệu SQLite khi tổng đài đang chạy (một bản nhất quán)"
    )
    bk.add_argument("file", type=Path, help="tệp sao lưu mới (không ghi đè tệp đã có)")
    _db_arg(bk)
    bk.set_defaults(func=_cmd_backup)
    add_reconcile(db, _db_arg, _with_engine)
    add_rollups(db, _db_arg, _with_engine)

    calls = sub.add_parser("calls", help="danh sách cuộc gọi; `ivr calls show ID` xem diễn biến")
    _db_arg(calls)
    calls.add_argument("show", nargs="?", choices=["show"], help=argparse.SUPPRESS)
    calls.add_argument("call_id", nargs="?", help=argparse.SUPPRESS)
    calls.add_argument("--from", dest="since", help="từ ngày YYYY-MM-DD (giờ Việt Nam)")
    calls.add_argument("--to", dest="until", help="đến hết ngày YYYY-MM-DD")
    calls.add_argument("--branch", help="nhánh 1–9")
    calls.add_argument("--unit", help="mã đơn vị")
    calls.add_argument("--disposition", help="answered, voicemail, no_answer, …")
    calls.add_argument("--caller", help="số người gọi")
    calls.add_argument("--limit", type=int, default=200)
    _output_args(calls)
    calls.set_defaults(func=_cmd_calls)

    vms = sub.add_parser("voicemails", help="lời nhắn (mới trước); `mark ID heard|handled`")
    _db_arg(vms)
    vms.add_argument("mark", nargs="?", choices=["mark"], help=argparse.SUPPRESS)
    vms.add_argument("vm_id", nargs="?", type=int, help=argparse.SUPPRESS)
    vms.add_argument(
        "status", nargs="?", choices=["new", "heard", "handled"], help=argparse.SUPPRESS
    )
    vms.add_argument("--by", default="", help="người đánh dấu (khi mark)")
    vms.add_argument("--filter-status", choices=["new", "heard", "handled"])
    vms.add_argument("--branch")
    _output_args(vms)
    vms.set_defaults(func=_cmd_voicemails)


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        help="URL cơ sở dữ liệu (mặc định database_url trong cấu hình, IVR_DATABASE_URL, "
        "hoặc ivr.db trong thư mục dữ liệu data_dir)",
    )


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="xuất JSON cho chương trình khác")
    p.add_argument("--mask", action="store_true", help="che số điện thoại người gọi")


def _database_url(args: argparse.Namespace) -> str:
    return database_url(settings_of(args), args.db)


def _with_engine(args: argparse.Namespace, job: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    url = _database_url(args)
    require_database(url)  # a reader never creates the database

    async def go() -> int:
        engine = make_engine(url, create=False)
        try:
            await require_current(engine)  # missing or out-of-date schema: one line, exit 2
            return await job(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except NotReady as e:
        print(e, file=sys.stderr)
        return USAGE
    except (SQLAlchemyError, OSError) as e:  # down, refused, corrupt, read-only: one line
        code, line = database_problem(e, url)
        print(line, file=sys.stderr)
        return code


def _cmd_upgrade(args: argparse.Namespace) -> int:
    url = _database_url(args)
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as e:
        print(f"không nâng cấp được cơ sở dữ liệu: {str(e).splitlines()[0]}", file=sys.stderr)
        return FAILED
    print(f"cơ sở dữ liệu đã ở phiên bản mới nhất: {_safe(url)}")
    return DONE


def _cmd_backup(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    url = database_url(settings, args.db)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        print(
            "cơ sở dữ liệu PostgreSQL sao lưu bằng công cụ của nó: pg_dump --format=custom "
            f"--file={escape(str(args.file))} (cùng máy chủ, cơ sở dữ liệu và tài khoản như "
            f"{escape(_safe(url))})",
            file=sys.stderr,
        )
        return USAGE
    require_database(url)  # never creates one to copy
    try:
        done = backup_sqlite(Path(str(parsed.database)), args.file)
    except FileExistsError:
        print(f"đã có tệp {escape(str(args.file))}: chọn tên khác", file=sys.stderr)
        return USAGE
    except (OSError, sqlite3.Error, BackupFailed) as e:
        print(f"không sao lưu được vào {escape(str(args.file))}: {escape(str(e))}", file=sys.stderr)
        return FAILED
    counts = done.counts
    print(
        f"đã sao lưu vào {escape(str(done.path))} ({done.size_bytes / 1e6:.1f} MB, phiên bản "
        f"{escape(done.revision)}): {counts['calls']} cuộc gọi, {counts['voicemails']} lời nhắn, "
        f"{counts['cases']} hồ sơ, {counts['web_users']} tài khoản"
    )
    recordings = settings.recordings_dir
    print(
        f"tệp âm thanh lời nhắn không nằm trong cơ sở dữ liệu: sao lưu riêng {escape(recordings)}"
    )
    return DONE


def _safe(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)


def parse_age(text: str, now: dt.datetime) -> dt.datetime:
    m = re.fullmatch(r"(\d+)([ymd])", text.strip())
    if not m:
        raise ValueError(f"'{text}': cần dạng như 2y (năm), 18m (tháng), 90d (ngày)")
    n, unit = int(m.group(1)), m.group(2)
    days = {"y": 365 * n, "m": 30 * n, "d": n}[unit]
    return now - dt.timedelta(days=days)


def _cmd_purge(args: argparse.Namespace) -> int:
    try:
        before = parse_age(args.older_than, dt.datetime.now(dt.UTC))
    except ValueError as e:
        print(e, file=sys.stderr)
        return USAGE

    settings = settings_of(args)
    recordings = Path(settings.recordings_dir)

    async def job(engine: AsyncEngine) -> int:
        done = await purge(engine, before, recordings, settings.spool_path)
        print(f"đã xoá {done.calls} cuộc gọi bắt đầu trước {done.before.astimezone(VN):%d/%m/%Y}")
        return _purged(done, recordings)

    return _with_engine(args, job)


def _purged(done: Purged, recordings: Path) -> int:
    """The rest of what a purge removed; FAILED when an audio or quarantine file it should
    remove is left."""
    print(
        f"  cùng {done.voicemails} tin nhắn thoại ({done.files_removed} tệp âm thanh đã xoá), "
        f"{done.cel_events} sự kiện CEL, {done.zalo_rows} khảo sát Zalo"
    )
    if done.quarantined:
        print(f"  cùng {done.quarantined} tệp cách ly cũ trong thư mục dự phòng (spool_dir)")
    if done.spared or done.spared_files:
        print(
            f"  giữ lại {done.spared} cuộc gọi cũ và {done.spared_files} tệp cách ly "
            "mà hồ sơ phản ánh chưa đóng còn dùng"
        )
    if done.files_missing:
        print(
            f"  {len(done.files_missing)} tệp âm thanh không có trong {escape(str(recordings))} "
            "ở máy này: xoá trên máy chạy Asterisk (recordings_dir)",
            file=sys.stderr,
        )
        for location in done.files_missing:
            print(f"    {escape(location)}", file=sys.stderr)
    for failure in done.files_failed:
        print(f"  không xoá được tệp âm thanh {escape(failure)}", file=sys.stderr)
    for failure in done.quarantine_failed:
        print(f"  thư mục cách ly: không xoá được {escape(failure)}", file=sys.stderr)
    return FAILED if done.files_failed or done.quarantine_failed else DONE


def _day(text: str | None, end: bool) -> dt.datetime | None:
    if text is None:
        return None
    day = dt.date.fromisoformat(text) + (dt.timedelta(days=1) if end else dt.timedelta())
    return dt.datetime.combine(day, dt.time(), VN)


def _local(t: dt.datetime | None) -> str:
    return t.astimezone(VN).strftime("%d/%m/%Y %H:%M:%S") if t else ""


def _cmd_calls(args: argparse.Namespace) -> int:
    if args.show:
        if not args.call_id:
            print("cần mã cuộc gọi: ivr calls show ID", file=sys.stderr)
            return USAGE
        return _with_engine(args, lambda e: _show_call(e, args))
    try:
        f = CallFilter(
            _day(args.since, False),
            _day(args.until, True),
            args.branch,
            args.unit,
            args.disposition,
            args.caller,
            args.limit,
        )
    except ValueError:
        print("--from/--to cần dạng YYYY-MM-DD", file=sys.stderr)
        return USAGE

    async def job(engine: AsyncEngine) -> int:
        rows = await list_calls(engine, f)
        if args.json:
            print(json_text([_call_json(c, args.mask) for c in rows]))
            return DONE
        print(
            f"{'Bắt đầu':<19}  {'Người gọi':<12}  {'Kết quả':<11}  {'Nhánh':<5}  "
            f"{'Đơn vị':<6}  {'Chờ':>4}  {'Nói':>4}  Mã cuộc gọi"
        )
        for c in rows:
            who = escape(mask_number(c.caller_number) if args.mask else c.caller_number)
            print(
                f"{_local(c.started_at):<19}  {who:<12}  {escape(c.disposition):<11}  "
                f"{escape(c.branch or ''):<5}  {escape(c.unit or ''):<6}  {c.wait_seconds:>4.0f}  "
                f"{c.talk_seconds:>4.0f}  {escape(c.id)}"
            )
        print(f"({len(rows)} cuộc gọi)")
        return DONE

    return _with_engine(args, job)


async def _show_call(engine: AsyncEngine, args: argparse.Namespace) -> int:
    try:
        c = await get_call(engine, args.call_id)
    except AmbiguousCall as e:
        print(e, file=sys.stderr)
        return USAGE
    if c is None:
        print(f"không có cuộc gọi {args.call_id}", file=sys.stderr)
        return FAILED
    data = _call_json(c, args.mask)
    data["steps"] = [
        {
            "seq": s.seq,
            "node": s.node,
            "kind": s.kind,
            "outcome": s.outcome,
            "input": s.input,
            "detail": s.detail,
            "at": s.at.isoformat(),
        }
        for s in c.steps
    ]
    if c.voicemail is not None:
        data["voicemail"] = _vm_json(c.voicemail)
    if args.json:
        print(json_text(data))
        return DONE
    print(f"Cuộc gọi {escape(c.id)} từ {escape(data['caller_number'])} — {escape(c.disposition)}")
    print(
        f"  bắt đầu {_local(c.started_at)}, kết thúc {_local(c.ended_at)}; "
        f"chờ {c.wait_seconds:.0f} s, đàm thoại {c.talk_seconds:.0f} s"
    )
    print(f"  đường đi: {escape(c.path).replace('>', ' → ')}   phím: {escape(c.digits) or '—'}")
    if c.endpoint:
        print(f"  máy trả lời: {escape(c.endpoint)}")
    if c.hangup_cause is not None:
        print(f"  mã kết thúc (Q.850): {c.hangup_cause} {escape(c.hangup_cause_text or '')}")
    for s in c.steps:
        extra = f" [{escape(s.input)}]" if s.input else ""
        detail = f" — {escape(s.detail)}" if s.detail else ""
        print(f"  {_local(s.at)}  {escape(s.node):<14} {escape(s.outcome)}{extra}{detail}")
    if c.voicemail is not None:
        v = c.voicemail
        where = escape(v.location)
        print(f"  lời nhắn #{v.id}: {where} ({v.duration_seconds:g} s, {escape(v.status)})")
    return DONE


def _call_json(c: Call, mask: bool) -> dict[str, Any]:
    return {
        "id": c.id,
        "channel_id": c.channel_id,
        "node": c.node,
        "controller": c.controller,
        "caller_number": mask_number(c.caller_number) if mask else c.caller_number,
        "started_at": c.started_at.isoformat(),
        "ended_at": c.ended_at.isoformat() if c.ended_at else None,
        "disposition": c.disposition,
        "path": c.path.split(">") if c.path else [],
        "digits": c.digits,
        "branch": c.branch,
        "unit": c.unit,
        "endpoint": c.endpoint,
        "wait_seconds": c.wait_seconds,
        "talk_seconds": c.talk_seconds,
        "routing_version": c.routing_version,
        "hangup_by": c.hangup_by,
        "hangup_cause": c.hangup_cause,
    }


def _vm_json(v: Voicemail) -> dict[str, Any]:
    return {
        "id": v.id,
        "call_id": v.call_id,
        "file": v.location,
        "duration_seconds": v.duration_seconds,
        "size_bytes": v.size_bytes,
        "sha256": v.sha256,
        "branch": v.branch,
        "unit": v.unit,
        "recorded_at": v.recorded_at.isoformat(),
        "status": v.status,
        "status_by": v.status_by,
    }


def _cmd_voicemails(args: argparse.Namespace) -> int:
    if args.mark:
        if args.vm_id is None or args.status is None:
            print("cách dùng: ivr voicemails mark ID heard|handled --by TÊN", file=sys.stderr)
            return USAGE

        async def mark(engine: AsyncEngine) -> int:
            ok = await set_voicemail_status(
                engine, args.vm_id, args.status, args.by, dt.datetime.now(dt.UTC)
            )
            print(
                f"lời nhắn #{args.vm_id}: {args.status}"
                if ok
                else f"không có lời nhắn #{args.vm_id}",
                file=sys.stdout if ok else sys.stderr,
            )
            return DONE if ok else FAILED

        return _with_engine(args, mark)

    async def job(engine: AsyncEngine) -> int:
        rows = await list_voicemails(engine, args.filter_status, args.branch)
        if args.json:
            out = []
            for v in rows:
                d = _vm_json(v)
                n = v.call.caller_number
                d["caller_number"] = mask_number(n) if args.mask else n
                out.append(d)
            print(json_text(out))
            return DONE
        for v in rows:
            n = escape(mask_number(v.call.caller_number) if args.mask else v.call.caller_number)
            where = f"nhánh {v.branch}" if v.branch else (f"đơn vị {v.unit}" if v.unit else "chung")
            print(
                f"#{v.id:<5} {escape(v.status):<8} {_local(v.recorded_at)}  {n:<12} "
                f"{escape(where):<12} {v.duration_seconds:>4.0f} s  {escape(v.location)}"
            )
        print(f"({len(rows)} lời nhắn)")
        return DONE

    return _with_engine(args, job)
