"""Where a voicemail's audio file lies on this machine, if anywhere we may touch."""

from __future__ import annotations

from pathlib import Path


def recording_file(location: str, recordings: Path) -> Path | None:
    """The file a voicemail row's ``location`` names (relative: inside ``recordings``), only if
    it is a file inside the recordings folder: a row never leads the console, or a purge,
    anywhere else."""
    root = recordings.resolve()
    path = Path(location)
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
