"""`ivr service-units`: the systemd units that keep a site's `ivr` running (ivr.ops.units)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import settings_of
from ivr.cli.terminal import escape
from ivr.config import config_path
from ivr.ops.units import Site, units, unsafe

ENABLED = ("ivr.service", "ivr-web.service", "ivr-backup.timer")  # ivr-agi: only AGI sites


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "service-units",
        help="ghi các tệp systemd (ivr run, ivr web, ivr agi, sao lưu mỗi đêm) cho máy này",
    )
    p.add_argument("directory", type=Path, help="thư mục đích, vd. /etc/systemd/system")
    p.add_argument("--user", default="ivr", help="tài khoản chạy dịch vụ (mặc định ivr)")
    p.add_argument(
        "--group", default="asterisk", help="nhóm đọc được tệp CEL và ghi âm (mặc định asterisk)"
    )
    p.add_argument(
        "--backup-dir", type=Path, default=Path("/var/backups/ivr"), help="nơi để bản sao lưu"
    )
    p.add_argument("--overwrite", action="store_true", help="ghi đè tệp đã có")
    p.set_defaults(func=_cmd_units)


def _cmd_units(args: argparse.Namespace) -> int:
    config = config_path(getattr(args, "config", None))
    if config is None:
        print(
            "dịch vụ cần một tệp cấu hình: --config /etc/ivr/ivr.toml (hoặc biến IVR_CONFIG)",
            file=sys.stderr,
        )
        return USAGE
    settings = settings_of(args)
    site = Site(_installed(), config.resolve(), args.user, args.group, args.backup_dir.resolve())
    problem = unsafe(site, settings)
    if problem is not None:
        print(f"không ghi được tệp dịch vụ: {escape(problem)}", file=sys.stderr)
        return USAGE
    rendered = units(site, settings)
    existing = [n for n in rendered if (args.directory / n).exists()]
    if existing and not args.overwrite:
        print(f"đã có {', '.join(existing)}: thêm --overwrite để ghi đè", file=sys.stderr)
        return USAGE
    try:
        args.directory.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (args.directory / name).write_text(text, encoding="utf-8")
    except OSError as e:
        print(
            f"không ghi được vào {escape(str(args.directory))}: {e.strerror or e}", file=sys.stderr
        )
        return FAILED
    for name in rendered:
        print(args.directory / name)
    enable = " ".join(n for n in rendered if n in ENABLED)
    print(f"rồi: systemctl daemon-reload && systemctl enable --now {enable}")
    return DONE


def _installed() -> Path:
    """The `ivr` beside this Python: the installation's virtual environment's (not resolved: a
    virtual environment's python is a link to the system's)."""
    return Path(os.path.dirname(os.path.abspath(sys.executable))) / "ivr"
