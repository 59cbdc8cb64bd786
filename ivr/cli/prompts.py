"""`ivr prompts build` and `ivr prompts check`: the prompts' audio."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ivr.cli.codes import DONE, FAILED, USAGE
from ivr.cli.settings import settings_of
from ivr.config import PROJECT_ROOT, Settings
from ivr.prompts.manifest import ManifestError, load_manifest
from ivr.routing.load import RoutingError, load_routing
from ivr.routing.model import Routing


def add_commands(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="tạo và kiểm tra âm thanh lời nhắc").add_subparsers()
    pb = prompts.add_parser("build", help="tạo âm thanh từ lời đọc (espeak-ng) hoặc tệp ghi âm")
    _file_args(pb)
    pb.add_argument(
        "--install",
        type=Path,
        metavar="SOUNDS_DIR",
        help="chép vào thư mục âm thanh của Asterisk, vd. /var/lib/asterisk/sounds",
    )
    pb.add_argument("--force", action="store_true", help="tạo lại tất cả")
    pb.set_defaults(func=_cmd_prompts_build)
    pc = prompts.add_parser("check", help="mọi lời nhắc định tuyến cần đã có đủ định dạng")
    _file_args(pc)
    pc.add_argument(
        "--dialplan",
        type=Path,
        default=PROJECT_ROOT / "dialplan" / "hotline.conf",
        help="dialplan của dự án (mặc định dialplan/hotline.conf trong dự án)",
    )
    pc.set_defaults(func=_cmd_prompts_check)


def _file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--routing", type=Path, help="tệp định tuyến (mặc định routing trong cấu hình)")
    p.add_argument("--manifest", type=Path, help="danh mục lời nhắc (mặc định prompts)")
    p.add_argument(
        "--out",
        type=Path,
        help="thư mục âm thanh (mặc định sounds/NGÔN_NGỮ/sound_prefix cạnh danh mục)",
    )


def _files(args: argparse.Namespace) -> tuple[Path, Path, Settings]:
    """The routing and manifest files: the flags, else the settings (any current folder)."""
    settings = settings_of(args)
    return (
        args.routing or Path(settings.routing),
        args.manifest or Path(settings.prompts),
        settings,
    )


def _out(args: argparse.Namespace, manifest: Path, routing: Routing, settings: Settings) -> Path:
    if args.out is not None:
        return Path(args.out)
    return manifest.parent / "sounds" / routing.hotline.language / settings.sound_prefix


def _cmd_prompts_build(args: argparse.Namespace) -> int:
    from ivr.asterisk.moh import announced
    from ivr.prompts.build import PromptBuildError, build, install
    from ivr.prompts.manifest import with_units

    routing_file, manifest_file, settings = _files(args)
    try:
        manifest = load_manifest(manifest_file)
        routing = load_routing(routing_file, list(manifest))
        out = _out(args, manifest_file, routing, settings)
        built = build(with_units(manifest, routing), manifest_file.parent, out, args.force)
    except (RoutingError, ManifestError) as e:
        print(e, file=sys.stderr)
        return USAGE
    except PromptBuildError as e:
        print(e, file=sys.stderr)
        return FAILED
    changed = [b for b in built if b.changed]
    for b in changed:
        print(f"  {b.id:<24} {b.seconds:5.1f} s  ({b.source})")
    print(f"{len(changed)} lời nhắc được tạo, {len(built) - len(changed)} không đổi; ở {out}")
    if args.install:
        try:
            n = install(out, args.install, announced(routing))
        except OSError as e:
            print(f"không chép được vào {args.install}: {e}", file=sys.stderr)
            return FAILED
        print(f"đã chép {n} tệp vào {args.install / 'vi' / 'hotline'}")
    return DONE


def _cmd_prompts_check(args: argparse.Namespace) -> int:
    import re

    from ivr.prompts.check import check
    from ivr.prompts.manifest import unit_prompts
    from ivr.routing.model import node_prompts

    routing_file, manifest_file, settings = _files(args)
    try:
        routing = load_routing(routing_file, list(load_manifest(manifest_file)))
        dialplan = args.dialplan.read_text(encoding="utf-8")
    except (RoutingError, ManifestError, OSError) as e:
        print(e, file=sys.stderr)
        return USAGE
    needed = {p for node in routing.nodes.values() for _, p in node_prompts(node)}
    needed |= set(unit_prompts(routing))
    needed |= set(re.findall(r"hotline/([A-Za-z0-9_-]+)", dialplan))
    present, missing = check(sorted(needed), _out(args, manifest_file, routing, settings))
    for pid, seconds in present:
        print(f"  {pid:<24} {seconds:5.1f} s")
    if missing:
        for m in missing:
            print(f"THIẾU {m.id}: {', '.join(m.formats)}", file=sys.stderr)
        print(f"{len(missing)} lời nhắc còn thiếu (chạy `ivr prompts build`)", file=sys.stderr)
        return FAILED
    total = sum(s for _, s in present)
    print(f"đủ {len(present)} lời nhắc ở mọi định dạng ({total:.0f} s âm thanh)")
    return DONE
