"""Phản ánh, kiến nghị: the cases a person may see (overdue and due soon first), one case with
its timeline and the steps its owner may take, and a case opened from a call or a voicemail.

Everything goes through ivr.cases (the status machine, deadlines in working days, access and
masking): this module only reads forms and renders.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ivr.cases import access
from ivr.cases.deadlines import Standing, deadlines
from ivr.cases.digest import case_standing
from ivr.cases.owners import Owner, UnknownOwner, owner_of_branch, owner_of_unit
from ivr.cases.rules import Rules, RulesError, load_rules
from ivr.cases.status import ALLOWED, LABELS, RefusedTransition, Status
from ivr.cases.store import (
    CaseError,
    CaseFilter,
    NewCase,
    NotAllowed,
    NotFound,
    get_case,
    list_cases,
    move,
    open_case,
)
from ivr.cases.store import assign as store_assign
from ivr.routing.model import Routing
from ivr.web.auth import ENGINE, allow, viewer
from ivr.web.data import calls as call_data
from ivr.web.data import voicemails as vm_data
from ivr.web.keys import CONFIG
from ivr.web.pages.routing import DESK
from ivr.web.roles import ALL, Role, Viewer
from models import Case

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SHOW = {"open": "đang mở", "overdue": "quá hạn", "due_soon": "sắp đến hạn", "all": "tất cả"}
STANDING = {
    Standing.OVERDUE.value: "quá hạn",
    Standing.DUE_SOON.value: "sắp đến hạn",
    Standing.ON_TRACK.value: "trong hạn",
    Standing.DONE.value: "đã xong",
}
ORDER = {"overdue": 0, "due_soon": 1, "on_track": 2, "done": 3}
STATUSES = {s.value: label for s, label in LABELS.items()}
CHANNELS = {"hotline": "đường dây nóng", "voicemail": "lời nhắn", "zalo": "Zalo", "other": "khác"}


def _who(v: Viewer) -> access.Viewer:
    return access.Viewer(v.name, v.role.value, v.unit, v.branch)


def _setup(request: web.Request) -> tuple[Routing, Rules]:
    desk = request.app.get(DESK)
    routing = desk.routing() if desk is not None else None
    if routing is None:
        raise web.HTTPServiceUnavailable(text="Chưa nạp được tệp định tuyến: không tính được hạn.")
    try:
        return routing, load_rules(request.app[CONFIG].case_rules)
    except RulesError as e:
        raise web.HTTPServiceUnavailable(text=f"Quy định hồ sơ: {e}") from None


def _step_order(s: Status) -> tuple[bool, int]:
    """The machine's next steps in their natural order, a rejection last."""
    return s is Status.REJECTED, list(Status).index(s)


def _today() -> dt.date:
    return dt.datetime.now(VN).date()


def _row(c: Case, who: access.Viewer, routing: Routing, rules: Rules, today: dt.date) -> Any:
    name, phone = access.citizen(who, c.citizen_name, c.citizen_phone)
    return {
        "case": c,
        "citizen": name,
        "phone": phone,
        "standing": case_standing(routing, rules, c, today).value,
    }


@allow(ALL)
async def listing(request: web.Request) -> web.Response:
    routing, rules = _setup(request)
    show = request.query.get("show", "open")
    if show not in SHOW:
        raise web.HTTPBadRequest(text=f"không có bộ lọc '{show}'")
    who = _who(viewer(request))
    found = await list_cases(request.app[ENGINE], CaseFilter(open_only=show != "all"), who)
    today = _today()
    rows = [_row(c, who, routing, rules, today) for c in found]
    if show in ("overdue", "due_soon"):
        rows = [r for r in rows if r["standing"] == show]
    rows.sort(key=lambda r: (ORDER[r["standing"]], r["case"].answer_due, r["case"].number))
    context = {
        "rows": rows,
        "show": show,
        "shows": SHOW,
        "standings": STANDING,
        "statuses": STATUSES,
    }
    return aiohttp_jinja2.render_template("cases.html", request, context)


@allow(ALL)
async def detail(request: web.Request) -> web.Response:
    routing, rules = _setup(request)
    who = _who(viewer(request))
    try:
        case = await get_case(request.app[ENGINE], request.query.get("number", ""), who)
    except NotFound:
        raise web.HTTPNotFound(text="Không có hồ sơ này.") from None
    except NotAllowed:
        raise web.HTTPForbidden(text="Hồ sơ này thuộc đơn vị khác.") from None
    row = _row(case, who, routing, rules, _today())
    acts = access.may_act(who, case.owner_unit, case.branch)
    context = {
        **row,
        "may_act": acts,
        "next": [(s.value, s.label) for s in sorted(ALLOWED[Status(case.status)], key=_step_order)]
        if acts
        else [],
        "standings": STANDING,
        "statuses": STATUSES,
        "channels": CHANNELS,
        "error": request.query.get("error", ""),
    }
    return aiohttp_jinja2.render_template("case.html", request, context)


@allow(ALL)
async def change(request: web.Request) -> web.Response:
    """One step of the machine (status, with its note) or an assignment, then back to the case."""
    form = await request.post()
    number = str(form.get("number", ""))
    who = _who(viewer(request))
    now = dt.datetime.now(dt.UTC)
    note = str(form.get("note", "")).strip()[:4000]
    try:
        if form.get("assignee") is not None:
            await store_assign(
                request.app[ENGINE], number, str(form["assignee"]).strip()[:64], who, now
            )
        else:
            await move(
                request.app[ENGINE], number, Status(str(form.get("status", ""))), who, now, note
            )
    except NotFound:
        raise web.HTTPNotFound(text="Không có hồ sơ này.") from None
    except NotAllowed:
        raise web.HTTPForbidden(text="Bạn không được xử lý hồ sơ này.") from None
    except (ValueError, CaseError, RefusedTransition) as e:
        raise web.HTTPFound(f"/cases/detail?number={quote(number)}&error={quote(str(e))}") from None
    raise web.HTTPFound(f"/cases/detail?number={quote(number)}")


async def _source(request: web.Request, v: Viewer) -> dict[str, Any]:
    """What a call (``call=KEY``) or a voicemail (``voicemail=ID``) gives the new case."""
    if v.role is Role.SUPERVISOR:
        raise web.HTTPForbidden(text="Giám sát viên theo dõi hồ sơ, không mở hồ sơ.")
    engine = request.app[ENGINE]
    vm_id: int | None = None
    key = request.query.get("call", "")
    if "voicemail" in request.query:
        try:
            vm_id = int(request.query["voicemail"])
        except ValueError:
            raise web.HTTPBadRequest(text="mã lời nhắn không hợp lệ") from None
        try:
            vm = await vm_data.one(engine, v, vm_id)
        except vm_data.NotYours:
            raise web.HTTPForbidden(text="Lời nhắn này thuộc đơn vị khác.") from None
        if vm is None:
            raise web.HTTPNotFound(text="Không có lời nhắn này.")
        key = vm.call_id
    if not key:
        raise web.HTTPBadRequest(
            text="Hồ sơ mở từ một cuộc gọi (call=…) hoặc một lời nhắn (voicemail=…)."
        )
    try:
        call = await call_data.one(engine, v, key)
    except call_data.NotYours:
        raise web.HTTPForbidden(text="Cuộc gọi này thuộc đơn vị khác.") from None
    if call is None:
        raise web.HTTPNotFound(text="Không có cuộc gọi này.")
    return {
        "call": call,
        "voicemail_id": vm_id,
        "channel": "voicemail" if vm_id is not None else "hotline",
    }


def _owner(routing: Routing, unit: str | None, branch: str | None, day: dt.date) -> Owner:
    if unit:
        return owner_of_unit(routing, unit, day)
    if branch:
        return owner_of_branch(routing, branch, day)
    raise UnknownOwner("cần đơn vị chủ trì: mã đơn vị hoặc số nhánh")


def _may_open(v: Viewer, owner: Owner) -> bool:
    if v.role is Role.ADMIN:
        return True
    if v.role is Role.SUPERVISOR:
        return False
    return (v.unit is not None and v.unit == owner.unit) or (
        v.branch is not None and v.branch == owner.branch
    )


@allow(ALL)
async def new_form(request: web.Request) -> web.Response:
    _, rules = _setup(request)
    v = viewer(request)
    src = await _source(request, v)
    call = src["call"]
    form = {
        "unit": call.unit or "",
        "branch": call.branch or "" if not call.unit else "",
        "subject": "",
        "category": rules.categories[0],
        "name": "",
        "content": "",
    }
    return _render_new(request, rules, src, form, "")


def _render_new(
    request: web.Request, rules: Rules, src: dict[str, Any], form: dict[str, str], error: str
) -> web.Response:
    context = {"src": src, "form": form, "categories": rules.categories, "error": error}
    return aiohttp_jinja2.render_template(
        "case_new.html", request, context, status=400 if error else 200
    )


@allow(ALL)
async def create(request: web.Request) -> web.Response:
    routing, rules = _setup(request)
    v = viewer(request)
    src = await _source(request, v)
    posted = await request.post()
    form = {
        k: str(posted.get(k, "")).strip()
        for k in ("unit", "branch", "subject", "category", "name", "content")
    }
    call = src["call"]
    now = dt.datetime.now(dt.UTC)
    try:
        if not form["subject"]:
            raise CaseError("cần ghi tóm tắt nội dung phản ánh")
        owner = _owner(routing, form["unit"] or None, form["branch"] or None, _today())
        if not _may_open(v, owner):
            raise CaseError(f"{v.name} không được mở hồ sơ cho {owner.name}")
        new = NewCase(
            received_at=now,
            channel=src["channel"],
            subject=form["subject"][:255],
            category=rules.category(form["category"]),
            owner=owner,
            citizen_name=form["name"][:128],
            citizen_phone=call.caller_number,
            content=form["content"][:8000],
            call_id=call.id,
            voicemail_id=src["voicemail_id"],
        )
        case = await open_case(
            request.app[ENGINE], routing, new, deadlines(routing, rules, now), v.name
        )
    except (CaseError, UnknownOwner, RulesError, RefusedTransition) as e:
        return _render_new(request, rules, src, form, str(e))
    raise web.HTTPFound(f"/cases/detail?number={quote(case.number)}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/cases", listing)
    app.router.add_get("/cases/detail", detail)
    app.router.add_post("/cases/change", change)
    app.router.add_get("/cases/new", new_form)
    app.router.add_post("/cases/new", create)
