"""`ivr cases …` (phản ánh, kiến nghị) and `ivr survey import`: thin, over ivr.cases.

``--by NAME`` says who acts; when NAME is a web console account its role and unit apply (a
clerk acts only on their unit's cases, a supervisor only reads), otherwise the shell user is an
admin. ``--at``/``--today`` fix the clock (tests, back-dated paper cases).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ivr.cases import digest as digests
from ivr.cases import mail
from ivr.cases.access import Viewer, citizen
from ivr.cases.deadlines import Standing, deadlines
from ivr.cases.owners import Owner, UnknownOwner, owner_of_branch, owner_of_unit
from ivr.cases.rules import Rules, RulesError, load_rules
from ivr.cases.status import LABELS, RefusedTransition, Status
from ivr.cases.store import CaseError, CaseFilter, NewCase, assign, get_case, list_cases, move
from ivr.cases.store import open_case as store_open
from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import database_url, require_database, settings_of
from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing
from ivr.store.db import make_engine, require_current
from ivr.store.errors import NotReady
from ivr.store.queries import AmbiguousCall, get_call
from ivr.survey.store import BadAnswers, import_rows
from models import Case, User, Voicemail

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CHANNELS = ("hotline", "voicemail", "zalo", "other")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def add_commands(sub: Any) -> None:
    cases = sub.add_parser("cases", help="hồ sơ phản ánh, kiến nghị").add_subparsers()
    p = _leaf(cases, "open", "mở hồ sơ từ cuộc gọi, lời nhắn hoặc nhập tay", _cmd_open)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--call", help="mã cuộc gọi <node>/<kênh> (xem `ivr calls`)")
    src.add_argument("--voicemail", type=int, help="số lời nhắn (xem `ivr voicemails`)")
    p.add_argument("--channel", choices=CHANNELS, help="kênh (mặc định theo nguồn)")
    p.add_argument("--subject", required=True, help="tiêu đề")
    p.add_argument("--content", default="", help="nội dung ghi trung thực")
    p.add_argument("--category", required=True, help="loại (danh sách trong tệp quy định)")
    p.add_argument("--name", default="", help="họ tên người phản ánh")
    p.add_argument("--phone", default="", help="số điện thoại (mặc định số gọi đến)")
    owner = p.add_mutually_exclusive_group()
    owner.add_argument("--unit", help="mã đơn vị chủ trì (danh bạ)")
    owner.add_argument("--branch", help="nhánh 1–9: cơ quan phụ trách nhánh")
    p.add_argument("--assignee", help="người xử lý")
    p.add_argument("--at", help="thời điểm tiếp nhận 'YYYY-MM-DD HH:MM' (mặc định bây giờ)")
    _by(p, required=True)

    p = _leaf(cases, "list", "danh sách hồ sơ", _cmd_list)
    p.add_argument("--owner", help="mã đơn vị hoặc branch:N")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--overdue", action="store_true", help="chỉ hồ sơ quá hạn")
    p.add_argument("--due-soon", action="store_true", help="chỉ hồ sơ sắp đến hạn")
    p.add_argument("--today", help="ngày tính hạn YYYY-MM-DD (mặc định hôm nay)")
    _view_args(p)

    p = _leaf(cases, "show", "xem một hồ sơ và diễn biến", _cmd_show)
    p.add_argument("number", help="số hồ sơ, vd. PAKN-2026-0013")
    _view_args(p)

    p = _leaf(cases, "assign", "giao người xử lý", _cmd_assign)
    p.add_argument("number")
    p.add_argument("assignee")
    _by(p, required=True)
    p.add_argument("--at", help=argparse.SUPPRESS)

    for name, target, help_ in (
        ("forward", Status.FORWARDED, "chuyển xử lý"),
        ("verify", Status.VERIFYING, "đang xác minh"),
        ("reply", Status.ANSWERED, "đã trả lời (--answer nội dung trả lời)"),
        ("close", Status.CLOSED, "đóng hồ sơ"),
        ("reject", Status.REJECTED, "từ chối (--reason lý do)"),
    ):
        p = _leaf(cases, name, help_, _cmd_move)
        p.set_defaults(target=target)
        p.add_argument("number")
        if target is Status.ANSWERED:
            p.add_argument("--answer", required=True, dest="note")
        elif target is Status.REJECTED:
            p.add_argument("--reason", required=True, dest="note")
        else:
            p.add_argument("--note", default="")
        _by(p, required=True)
        p.add_argument("--at", help=argparse.SUPPRESS)

    p = _leaf(
        cases, "digest", "bản tin hằng ngày theo đơn vị (in ra; gửi e-mail với --send)", _cmd_digest
    )
    p.add_argument("--today", help="ngày YYYY-MM-DD (mặc định hôm nay)")
    p.add_argument("--send", action="store_true", help="gửi e-mail theo [smtp] và [recipients]")

    survey = sub.add_parser("survey", help="khảo sát mức độ hài lòng").add_subparsers()
    p = _leaf(survey, "import", "nhập kết quả khảo sát Zalo (CSV)", _cmd_survey_import)
    p.add_argument("file", type=Path, help="CSV: tracking_id,call,score,answered_at")


def _leaf(sub: Any, name: str, help_: str, func: Callable[[argparse.Namespace], int]) -> Any:
    p = sub.add_parser(name, help=help_)
    p.add_argument("--db", help="URL cơ sở dữ liệu (mặc định theo cấu hình)")
    p.add_argument("--routing", type=Path, help="tệp định tuyến (mặc định theo cấu hình)")
    p.add_argument("--rules", type=Path, help="tệp quy định hồ sơ TOML (biến IVR_CASES_RULES)")
    p.set_defaults(func=func)
    return p


def _by(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--by", required=required, help="người thực hiện (tài khoản bảng điều khiển)")


def _view_args(p: argparse.ArgumentParser) -> None:
    _by(p, required=False)
    p.add_argument("--json", action="store_true")
    p.add_argument("--mask", action="store_true", help="che tên và số điện thoại người dân")


class Usage(Exception):
    """Bad usage found while reading the arguments (exit 2)."""


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)


def _instant(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=VN)
    except ValueError:
        raise Usage(f"--at '{text}': cần dạng 'YYYY-MM-DD HH:MM'") from None


def _today(text: str | None) -> dt.date:
    if text is None:
        return dt.datetime.now(VN).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Usage(f"--today '{text}': cần dạng YYYY-MM-DD") from None


def _run(
    args: argparse.Namespace, job: Callable[[AsyncEngine, Routing, Rules], Awaitable[int]]
) -> int:
    """Settings, routing, rules, then the job against a current database; errors to exit codes."""
    settings = settings_of(args)
    try:
        rules = load_rules(args.rules)
        routing = load_routing(args.routing or Path(settings.routing))
    except (RulesError, RoutingError) as e:
        print(e, file=sys.stderr)
        return USAGE
    url = database_url(settings, args.db)
    require_database(url)

    async def go() -> int:
        engine = make_engine(url, create=False)
        try:
            await require_current(engine)
            return await job(engine, routing, rules)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except (Usage, NotReady, RulesError, UnknownOwner, AmbiguousCall) as e:
        print(e, file=sys.stderr)
        return USAGE
    except (CaseError, RefusedTransition) as e:
        print(e, file=sys.stderr)
        return FAILED
    except SQLAlchemyError as e:
        print(f"lỗi cơ sở dữ liệu: {str(e).splitlines()[0]}", file=sys.stderr)
        return FAILED
    except OSError as e:
        print(f"không gửi được e-mail: {e}", file=sys.stderr)
        return FAILED


async def _viewer(engine: AsyncEngine, name: str | None) -> Viewer:
    if not name:
        return Viewer("admin")
    async with AsyncSession(engine) as s:
        user = (await s.scalars(select(User).where(User.name == name))).one_or_none()
    if user is None:
        return Viewer(name)
    if user.disabled:
        raise CaseError(f"tài khoản {name} đã bị khoá")
    return Viewer(name, user.role, user.unit, user.branch)


def _cmd_open(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        at = _instant(args.at)
        viewer = await _viewer(engine, args.by)
        category = rules.category(args.category)
        channel, phone, call_id, vm_id, branch, unit = (
            args.channel,
            args.phone,
            None,
            None,
            args.branch,
            args.unit,
        )
        if args.call or args.voicemail is not None:
            found = await _source(engine, args.call, args.voicemail)
            call_id, vm_id = found["call_id"], found["voicemail_id"]
            phone = phone or found["phone"]
            channel = channel or found["channel"]
            if unit is None and branch is None:
                unit, branch = found["unit"], found["branch"]
        day = at.astimezone(VN).date()
        owner = _owner(routing, unit, branch, day)
        if viewer.role == "supervisor" or (viewer.role == "clerk" and not _mine(viewer, owner)):
            raise CaseError(f"{viewer.name} không được mở hồ sơ cho {owner.name}")
        new = NewCase(
            received_at=at,
            channel=channel or "other",
            subject=args.subject,
            category=category,
            owner=owner,
            citizen_name=args.name,
            citizen_phone=phone,
            content=args.content,
            assignee=args.assignee,
            call_id=call_id,
            voicemail_id=vm_id,
        )
        case = await store_open(engine, routing, new, deadlines(routing, rules, at), viewer.name)
        print(
            f"đã mở hồ sơ {case.number}: {owner.name}; chuyển trước {case.forward_due:%d/%m/%Y}, "
            f"trả lời trước {case.answer_due:%d/%m/%Y}"
        )
        if owner.note:
            print(f"ghi chú: {owner.note}")
        return DONE

    return _run(args, job)


def _mine(viewer: Viewer, owner: Owner) -> bool:
    return (viewer.unit is not None and viewer.unit == owner.unit) or (
        viewer.branch is not None and viewer.branch == owner.branch
    )


def _owner(routing: Routing, unit: str | None, branch: str | None, day: dt.date) -> Owner:
    if unit:
        return owner_of_unit(routing, unit, day)
    if branch:
        return owner_of_branch(routing, branch, day)
    raise Usage("cần đơn vị chủ trì: --unit MÃ hoặc --branch N (hoặc cuộc gọi đã vào nhánh/đơn vị)")


async def _source(engine: AsyncEngine, key: str | None, vm: int | None) -> dict[str, Any]:
    if vm is not None:
        async with AsyncSession(engine) as s:
            v = await s.get(Voicemail, vm)
            if v is None:
                raise CaseError(f"không có lời nhắn số {vm}")
            key = v.call_id
    assert key is not None
    call = await get_call(engine, key)
    if call is None:
        raise CaseError(f"không có cuộc gọi {key}")
    return {
        "call_id": call.id,
        "voicemail_id": vm,
        "phone": call.caller_number,
        "channel": "voicemail" if vm is not None else "hotline",
        "unit": call.unit,
        "branch": call.branch,
    }


def _line(
    c: Case, viewer: Viewer, mask: bool, routing: Routing, rules: Rules, today: dt.date
) -> dict[str, Any]:
    name, phone = citizen(viewer, c.citizen_name, c.citizen_phone, force_mask=mask)
    return {
        "number": c.number,
        "received_at": c.received_at.astimezone(VN).isoformat(timespec="minutes"),
        "channel": c.channel,
        "status": c.status,
        "category": c.category,
        "owner": c.owner_unit or f"branch:{c.branch}",
        "owner_name": c.owner_name,
        "assignee": c.assignee or "",
        "subject": c.subject,
        "citizen_name": name,
        "citizen_phone": phone,
        "forward_due": c.forward_due.isoformat(),
        "answer_due": c.answer_due.isoformat(),
        "standing": digests.case_standing(routing, rules, c, today).value,
        "call": c.call_id or "",
    }


def _cmd_list(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        today = _today(args.today)
        viewer = await _viewer(engine, args.by)
        status = Status(args.status) if args.status else None
        open_only = args.overdue or args.due_soon
        rows = await list_cases(engine, CaseFilter(args.owner, status, open_only=open_only), viewer)
        lines = [_line(c, viewer, args.mask, routing, rules, today) for c in rows]
        wanted = {Standing.OVERDUE.value} if args.overdue else set()
        wanted |= {Standing.DUE_SOON.value} if args.due_soon else set()
        if wanted:
            lines = [x for x in lines if x["standing"] in wanted]
        if args.json:
            print(json.dumps(lines, ensure_ascii=False, indent=2))
            return DONE
        for x in lines:
            print(
                _clean(
                    f"{x['number']}  {x['received_at'][:16]}  {LABELS[Status(x['status'])]:<14}  "
                    f"hạn {x['answer_due']}  {x['owner']:<9}  {x['citizen_phone']:<12}  {x['subject']}"
                )
            )
        print(f"({len(lines)} hồ sơ)")
        return DONE

    return _run(args, job)


def _cmd_show(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        viewer = await _viewer(engine, args.by)
        c = await get_case(engine, args.number, viewer)
        data = _line(c, viewer, args.mask, routing, rules, dt.datetime.now(VN).date())
        data["content"] = c.content
        data["answer"] = c.answer
        data["reject_reason"] = c.reject_reason
        data["timeline"] = [
            {
                "at": e.at.astimezone(VN).isoformat(timespec="minutes"),
                "who": e.who,
                "kind": e.kind,
                "before": e.before,
                "after": e.after,
                "note": e.note,
            }
            for e in c.events
        ]
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
            return DONE
        for key in (
            "number",
            "received_at",
            "channel",
            "category",
            "owner_name",
            "assignee",
            "citizen_name",
            "citizen_phone",
            "subject",
            "content",
            "forward_due",
            "answer_due",
            "answer",
            "reject_reason",
        ):
            if data[key]:
                print(_clean(f"{key:<14} {data[key]}"))
        print(f"{'status':<14} {LABELS[Status(c.status)]}")
        print("diễn biến:")
        for e in data["timeline"]:
            before = _label(e["before"]) if e["kind"] == "status" else e["before"]
            after = _label(e["after"]) if e["kind"] == "status" else e["after"]
            verb = "giao" if e["kind"] == "assign" else "trạng thái"
            print(
                _clean(
                    f"  {e['at'][:16]}  {e['who']:<12} {verb}: {before or '—'} → {after}"
                    + (f"  ({e['note']})" if e["note"] else "")
                )
            )
        return DONE

    return _run(args, job)


def _label(value: str) -> str:
    return LABELS[Status(value)] if value else ""


def _cmd_assign(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        viewer = await _viewer(engine, args.by)
        c = await assign(engine, args.number, args.assignee, viewer, _instant(args.at))
        print(_clean(f"{c.number}: giao cho {c.assignee}"))
        return DONE

    return _run(args, job)


def _cmd_move(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        viewer = await _viewer(engine, args.by)
        c = await move(engine, args.number, args.target, viewer, _instant(args.at), args.note)
        print(f"{c.number}: {LABELS[Status(c.status)]}")
        return DONE

    return _run(args, job)


def _cmd_digest(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        today = _today(args.today)
        if args.send and rules.smtp is None:
            raise Usage("chưa cấu hình [smtp] trong tệp quy định: không gửi được e-mail")
        rows = await list_cases(engine, CaseFilter(open_only=True, limit=100_000), Viewer("admin"))
        sent = 0
        for d in digests.build(routing, rules, rows, today):
            text = digests.render(d, today)
            print(_clean(text))
            to = rules.recipients.get(d.owner, ())
            if args.send and rules.smtp is not None and to:
                subject = f"Hồ sơ PAKN {d.owner_name} ngày {today:%d/%m/%Y}"
                await mail.send(rules.smtp, mail.message(rules.smtp, to, subject, text))
                sent += 1
        if args.send:
            print(f"đã gửi {sent} e-mail")
        return DONE

    return _run(args, job)


def _cmd_survey_import(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine, routing: Routing, rules: Rules) -> int:
        try:
            with args.file.open(encoding="utf-8-sig", newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError) as e:
            raise Usage(f"{args.file}: không đọc được tệp: {e}") from None
        try:
            added, known = await import_rows(engine, rows)
        except BadAnswers as e:
            raise Usage(f"{args.file}: {e}") from None
        print(f"đã nhập {added} câu trả lời ({known} đã có từ trước)")
        return DONE

    return _run(args, job)
