"""`ivr users add|list|disable|enable|password`: the web console's accounts.

Passwords come from a prompt (typed twice, not echoed) or from ``--password-file FILE`` (its
first line), never from the command line, where every user of the machine could read them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import database_url, require_database, settings_of
from ivr.store.db import make_engine, require_current
from ivr.store.errors import NotReady
from ivr.web.data import users
from ivr.web.passwords import WeakPassword, hash_password
from ivr.web.roles import LABELS, Role

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("users", help="tài khoản bảng điều khiển web").add_subparsers()
    add = p.add_parser("add", help="thêm tài khoản", allow_abbrev=False)
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--unit", help="mã đơn vị của chuyên viên (clerk)")
    add.add_argument("--branch", help="nhánh 1–9 của chuyên viên (clerk)")
    _password_arg(add)
    add.set_defaults(func=_cmd_add)
    ls = p.add_parser("list", help="danh sách tài khoản")
    ls.set_defaults(func=_cmd_list)
    for name, disabled, text in (("disable", True, "khoá"), ("enable", False, "mở khoá")):
        d = p.add_parser(name, help=f"{text} tài khoản")
        d.add_argument("name")
        d.set_defaults(func=_cmd_disable, disabled=disabled)
    pw = p.add_parser("password", help="đặt mật khẩu mới", allow_abbrev=False)
    pw.add_argument("name")
    _password_arg(pw)
    pw.set_defaults(func=_cmd_password)


def _password_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-file", type=Path, help="đọc mật khẩu từ dòng đầu của tệp (mặc định: hỏi)"
    )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            lines = args.password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise WeakPassword(f"không đọc được {args.password_file}: {e}") from None
        return lines[0] if lines else ""
    if not sys.stdin.isatty():  # a script, a pipe, a service: no one to type it twice
        raise NoTerminal(
            "không có terminal để nhập mật khẩu (stdin không phải terminal): "
            "dùng --password-file TỆP (dòng đầu của tệp)"
        )
    try:
        first = getpass.getpass("Mật khẩu: ")
        again = getpass.getpass("Nhập lại: ")
    except EOFError:
        raise NoTerminal("chưa nhập mật khẩu (hết dữ liệu vào)") from None
    if again != first:
        raise WeakPassword("hai lần nhập không khớp")
    return first


class NoTerminal(ValueError):
    """A password to prompt for, and no terminal to prompt on: bad usage (exit 2)."""


def _with_engine(args: argparse.Namespace, job: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    url = database_url(settings_of(args))
    require_database(url)

    async def go() -> int:
        engine = make_engine(url, create=False)
        try:
            await require_current(engine)
            return await job(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except NotReady as e:
        print(e, file=sys.stderr)
        return USAGE
    except users.AccountError as e:
        print(f"lỗi: {e}", file=sys.stderr)
        return FAILED
    except SQLAlchemyError as e:
        print(f"lỗi cơ sở dữ liệu: {str(e).splitlines()[0]}", file=sys.stderr)
        return FAILED


def _cmd_add(args: argparse.Namespace) -> int:
    role = Role(args.role)
    try:
        users.check_scope(role, args.unit, args.branch)
        hashed = hash_password(_read_password(args))
    except ValueError as e:
        print(f"lỗi: {e}", file=sys.stderr)
        return USAGE

    async def job(engine: AsyncEngine) -> int:
        await users.add_user(engine, args.name, role, hashed, unit=args.unit, branch=args.branch)
        print(f"đã thêm tài khoản {args.name} ({LABELS[role]})")
        return DONE

    return _with_engine(args, job)


def _cmd_list(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine) -> int:
        for a in await users.list_users(engine):
            scope = " ".join(
                x for x in (a.unit and f"đơn vị {a.unit}", a.branch and f"nhánh {a.branch}") if x
            )
            last = (
                a.last_login_at.astimezone(VN).strftime("%Y-%m-%d %H:%M")
                if a.last_login_at
                else "-"
            )
            state = "đã khoá" if a.disabled else "hoạt động"
            print(f"{a.name}\t{a.role.value}\t{scope or '-'}\t{state}\tđăng nhập cuối {last}")
        return DONE

    return _with_engine(args, job)


def _cmd_disable(args: argparse.Namespace) -> int:
    async def job(engine: AsyncEngine) -> int:
        await users.set_disabled(engine, args.name, args.disabled)
        print(f"đã {'khoá' if args.disabled else 'mở khoá'} tài khoản {args.name}")
        return DONE

    return _with_engine(args, job)


def _cmd_password(args: argparse.Namespace) -> int:
    try:
        hashed = hash_password(_read_password(args))
    except ValueError as e:
        print(f"lỗi: {e}", file=sys.stderr)
        return USAGE

    async def job(engine: AsyncEngine) -> int:
        await users.set_password(engine, args.name, hashed)
        print(f"đã đặt mật khẩu mới cho {args.name}")
        return DONE

    return _with_engine(args, job)
