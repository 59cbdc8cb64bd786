"""The `ivr` command: the top-level parser, assembled from one thin module per command group.

Every command exits 0 when done, 1 when it ran and failed, 2 on bad usage or configuration
(ivr.cli.codes; shown in `ivr --help`).

What belongs here: argument parsing, printing for admins (in Vietnamese), exit codes. What does
not: any rule of the hotline; each command calls into the package that owns its concern.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ivr import logs
from ivr.cli import asterisk, cases, demo, prompts, report, routing, serve, store, units, users, web
from ivr.cli.codes import EPILOG, FAILED, INTERRUPTED, USAGE
from ivr.cli.settings import MissingDatabase, add_config_everywhere, log_level
from ivr.config import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return USAGE
    logs.configure(json=getattr(args, "log_json", False), level=getattr(args, "log_level", "INFO"))
    try:
        code: int = args.func(args)
        return code
    except MissingDatabase as e:
        print(e, file=sys.stderr)
        return USAGE
    except ConfigError as e:
        print(f"cấu hình: {e}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:  # the reader stopped reading (`ivr calls | head`): end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush cannot fail
        return FAILED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ivr",
        description="Tổng đài hỗ trợ công tác CCHC trên Asterisk",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--log-level", default="INFO", type=log_level, help="DEBUG, INFO, WARNING, ERROR"
    )
    sub = p.add_subparsers(title="lệnh")
    for group in (serve, demo, routing, asterisk, store, prompts, report, web, users, cases, units):
        group.add_commands(sub)
    add_config_everywhere(p)
    return p
