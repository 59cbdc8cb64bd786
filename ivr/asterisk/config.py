"""`ivr asterisk-config DIR`: the files of asterisk.conf.example, the dialplan and the phones.

The phones' pjsip sections are generated from the routing YAML, so the PBX and the routing
never drift; the dialplan is copied from dialplan/hotline.conf.
"""

from __future__ import annotations

import re
from pathlib import Path

from ivr.asterisk.pjsip import render
from ivr.routing.model import Routing

MARK = re.compile(r"^;;; file: (\S+)\s*$", re.MULTILINE)


def split_example(text: str) -> dict[str, str]:
    """The example's parts, by file name (each introduced by ';;; file: NAME')."""
    parts = MARK.split(text)
    return {
        name: body.strip("\n") + "\n" for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def write_config(
    target: Path,
    example: Path,
    dialplan: Path,
    routing: Routing,
    *,
    overwrite: bool = False,
    static_contacts: tuple[str, int] | None = None,
    qualify: bool = True,
) -> list[Path]:
    files = split_example(example.read_text(encoding="utf-8"))
    files["pjsip_hotline.conf"] = render(routing, static_contacts=static_contacts, qualify=qualify)
    files["hotline.conf"] = dialplan.read_text(encoding="utf-8")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in files.items():
        path = target / name
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} đã có; thêm --overwrite để ghi đè")
        path.write_text(body, encoding="utf-8")
        written.append(path)
    return written
