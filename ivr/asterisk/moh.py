"""Music-on-hold classes that say a dial node's confirmation while the desks ring (FastAGI).

Dial cannot play a file to the caller while it rings, but its ``m(class)`` option plays a
music-on-hold class from the moment the desks are called until one answers. Each distinct list
of prompts a ``dial`` node announces (``announce: while_ringing``, ``music: ringback``) gets a
class of ``mode=files``, ``sort=alpha``, ``loop_last=yes`` whose folder holds, in that order, the
prompts and then one 5 s cycle of Vietnam's ringback: a channel starting the class starts at its
first file (res_musiconhold keeps no position for a channel new to the class), so the caller
hears the prompts, then the ringback looped, however long the desks ring.

The folder is ``sounds/<language>/hotline/moh/<class>/`` under Asterisk's data folder (a relative
``directory=`` is read from there); ``ivr prompts build --install`` fills it with links to the
installed prompts. The class is named from its prompts alone, so the AGI session names it from
the DialRequest without reading the configuration.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ivr.routing.model import DialNode, Routing

RINGBACK = "ringback-vn"  # 425 Hz, 1 s on, 4 s off (indications.conf [vn] ring)
PREFIX = "hotline"  # the sounds' folder under the language, as `ivr prompts build --install`
FORMATS = (".wav", ".sln16")


CLASS = "hotline-announce"
NAME_LIMIT = 79  # res_musiconhold keeps 80 bytes of a class's name, its NUL included
_SEPARATOR = "+"  # in no prompt id (letters, digits, . _ -), harmless in Dial's m() and a path


def class_name(prompts: Sequence[str]) -> str:
    """The class that announces ``prompts``; the same list gives the same name everywhere.
    It reads as its prompts (``hotline-announce+please-hold+branch-4``: what AMI's
    MusicOnHoldStart shows) unless that is too long, then it is a digest of them."""
    name = _SEPARATOR.join([CLASS, *prompts])
    if len(name) <= NAME_LIMIT:
        return name
    return f"{CLASS}-{hashlib.sha256(chr(10).join(prompts).encode()).hexdigest()[:16]}"


def prompts_of(name: str) -> list[str] | None:
    """The prompts a readable class name says (None for a digest or another class)."""
    head, *prompts = name.split(_SEPARATOR)
    return prompts if head == CLASS and prompts else None


def announced(routing: Routing) -> list[tuple[str, ...]]:
    """Each distinct prompt list a dial node says while its desks ring, in the file's order."""
    seen: dict[tuple[str, ...], None] = {}
    for node in routing.nodes.values():
        if isinstance(node, DialNode) and uses_class(node.announce, node.music, node.prompts):
            seen.setdefault(tuple(node.prompts), None)
    return list(seen)


def uses_class(announce: str, music: str, prompts: Sequence[str]) -> bool:
    """A class is used when the prompts play while ringing and ringback follows them (a node
    with its own ``music: moh:X`` keeps its prompts before the Dial over FastAGI: README)."""
    return announce == "while_ringing" and music == "ringback" and bool(prompts)


def folder(language: str, name: str) -> str:
    """The class's folder, relative to Asterisk's data folder (astdatadir)."""
    return f"sounds/{language}/{PREFIX}/moh/{name}"


def musiconhold_conf(routing: Routing) -> str:
    """musiconhold.conf: Asterisk's usual ``default`` class and one class per announced list."""
    lines = [
        "; Music on hold. The hotline-announce+… classes say a dial node's prompts, then ringback,",
        "; while the desks ring (ivr agi: Dial's m() option). Their folders are filled by",
        "; `ivr prompts build --install`; rerun both commands when a dial node's prompts change.",
        "[default]",
        "mode=files",
        "directory=moh",
    ]
    language = routing.hotline.language
    for prompts in announced(routing):
        name = class_name(prompts)
        lines += [
            "",
            f"; {' + '.join(prompts)} + {RINGBACK}",
            f"[{name}]",
            "mode=files",
            f"directory={folder(language, name)}",
            "sort=alpha",
            "loop_last=yes",
        ]
    return "\n".join(lines) + "\n"


def entries(prompts: Sequence[str]) -> list[tuple[str, str]]:
    """(file in the class folder, prompt it stands for), in the order Asterisk sorts them."""
    width = max(3, len(str(len(prompts))))
    named = [(f"{i:0{width}d}-{p}", p) for i, p in enumerate(prompts)]
    return [*named, ("9" * width + f"-{RINGBACK}", RINGBACK)]


def install_classes(sounds_language_dir: Path, lists: Iterable[Sequence[str]]) -> int:
    """The class folders under ``<sounds>/<language>/hotline/moh/``: relative links to the
    installed prompts (they work inside a chroot too). Folders of classes no longer used are
    removed. Returns the number of links made."""
    base = sounds_language_dir / PREFIX / "moh"
    base.mkdir(parents=True, exist_ok=True)
    wanted = {class_name(p): p for p in lists}
    for old in base.iterdir():
        if old.is_dir() and old.name.startswith(CLASS) and old.name not in wanted:
            _clear(old)
            old.rmdir()
    made = 0
    for name, prompts in wanted.items():
        target = base / name
        target.mkdir(exist_ok=True)
        _clear(target)
        for entry, prompt in entries(prompts):
            for ext in FORMATS:
                os.symlink(f"../../{prompt}{ext}", target / f"{entry}{ext}")
                made += 1
    return made


def _clear(directory: Path) -> None:
    for f in directory.iterdir():
        if f.is_symlink() or f.is_file():
            f.unlink()
