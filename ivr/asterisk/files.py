"""Writing Asterisk's configuration files: a file that holds a password or a secret is created
0640 (read by its owner and group, never by other users); the others 0644.

The group of a secret file is the ``asterisk`` group of the system the folder belongs to (its
``../group`` file: /etc/group for /etc/asterisk, a chroot's own for a chroot's), so Asterisk,
which runs as user asterisk, can read it; else the folder's group. Changing the group needs the
right to (root, or a member of the group); without it the file keeps the writer's group.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

SECRET_MODE = 0o640
PUBLIC_MODE = 0o644
_SECRET_LINE = re.compile(r"^\s*(password|secret)\s*=", re.MULTILINE)


def holds_secrets(body: str) -> bool:
    return _SECRET_LINE.search(body) is not None


def write_file(path: Path, body: str) -> None:
    """``body`` into ``path``; a secret file is never readable by others, not even while being
    written (an existing file is emptied only after its mode is narrowed)."""
    secret = holds_secrets(body)
    mode = SECRET_MODE if secret else PUBLIC_MODE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(fd, mode)  # an existing file keeps its old mode otherwise
        if secret:
            _give_to_asterisk(fd, path.parent)
        out.truncate(0)
        out.write(body)


def _give_to_asterisk(fd: int, folder: Path) -> None:
    gid = _asterisk_gid(folder.resolve().parent / "group")
    if gid is None:
        gid = folder.stat().st_gid
    with contextlib.suppress(PermissionError):
        os.fchown(fd, -1, gid)


def _asterisk_gid(group_file: Path) -> int | None:
    try:
        lines = group_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == "asterisk" and fields[2].isdigit():
            return int(fields[2])
    return None
