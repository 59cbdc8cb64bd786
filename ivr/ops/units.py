"""systemd units for a site: the controller, the console, FastAGI, and a daily backup.

Rendered from the site's settings (pure: the CLI writes them, `ivr service-units`), so each unit
runs this installation's `ivr` with the settings file given, as an unprivileged user:

* ``ivr.service``: `ivr run`, after Asterisk (and PostgreSQL when the store is there), restarted
  on failure (meanwhile Asterisk sends new callers to the dialplan's fallback);
* ``ivr-web.service``: `ivr web`, the console;
* ``ivr-agi.service``: `ivr agi`, for sites whose dialplan calls AGI (not enabled by default);
* ``ivr-backup.service`` and ``ivr-backup.timer``: `ivr db backup` every night into a folder,
  for SQLite stores (PostgreSQL sites use their own dumps).

Secrets stay out of the units: an optional ``EnvironmentFile`` (the settings file's folder,
``ivr.env``) holds ``IVR_ARI_PASSWORD`` and the like. The user joins Asterisk's group to read the
CEL file and the voicemail recordings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ivr.config import Settings

DESCRIPTION = "Tổng đài hỗ trợ công tác CCHC"


@dataclass(frozen=True)
class Site:
    """Where this installation is and who runs it."""

    ivr: Path  # the `ivr` command of this installation (its virtual environment's)
    config: Path  # the settings file, absolute
    user: str = "ivr"
    group: str = "asterisk"  # Asterisk's: the CEL file and recordings are readable to it
    backup_dir: Path = Path("/var/backups/ivr")
    backup_at: str = "*-*-* 02:30:00"  # systemd OnCalendar


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+:@/-]*")  # nothing systemd or sh would read as syntax
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")  # a POSIX user or group name


def unsafe(site: Site, settings: Settings) -> str | None:
    """What cannot go into a unit as it is (a space, a quote, `%`, `$`, a line break: systemd
    would split or expand it), or None."""
    folders = [settings.data_dir, settings.spool_dir] if settings.spool_dir else [settings.data_dir]
    for path in [site.ivr, site.config, site.backup_dir, *(Path(f).resolve() for f in folders)]:
        if not _PLAIN_PATH.fullmatch(str(path)):
            return f"đường dẫn {path!r}: chỉ dùng chữ không dấu, số và . _ - + : @ /"
    for name in (site.user, site.group):
        if not _NAME.fullmatch(name):
            return f"tên {name!r} không phải tên tài khoản hay nhóm"
    return None


def units(site: Site, settings: Settings) -> dict[str, str]:
    """File name → text of every unit for this site (checked by :func:`unsafe` first)."""
    data = Path(settings.data_dir)
    spool = Path(settings.spool_dir or data / "spool")
    sqlite = not settings.database_url or make_url(settings.database_url).get_backend_name() == (
        "sqlite"
    )
    after = "network-online.target asterisk.service" + ("" if sqlite else " postgresql.service")
    writable = _paths(data, spool)
    found = {
        "ivr.service": _service(site, "run", f"{DESCRIPTION}: bộ điều khiển ARI", after, writable),
        "ivr-web.service": _service(
            site, "web", f"{DESCRIPTION}: bảng điều khiển web", after, writable
        ),
        "ivr-agi.service": _service(site, "agi", f"{DESCRIPTION}: FastAGI", after, writable),
    }
    if sqlite:
        found["ivr-backup.service"] = _backup(site, writable)
        found["ivr-backup.timer"] = _timer(site)
    return found


def _paths(*folders: Path) -> str:
    # "-": a folder not made yet is no reason for the service not to start
    return " ".join(f"-{p.resolve()}" for p in dict.fromkeys(folders))


def _common(site: Site, writable: str) -> str:
    return (
        f"User={site.user}\n"
        f"SupplementaryGroups={site.group}\n"
        f"Environment=IVR_CONFIG={site.config}\n"
        f"EnvironmentFile=-{site.config.parent / 'ivr.env'}\n"
        f"WorkingDirectory={site.config.parent}\n"
        "UMask=0027\n"  # the store, spool and copies hold callers' numbers
        "NoNewPrivileges=yes\n"
        "PrivateTmp=yes\n"
        "ProtectSystem=full\n"
        "ProtectHome=read-only\n"
        f"ReadWritePaths={writable}\n"
    )


def _service(site: Site, command: str, description: str, after: str, writable: str) -> str:
    return (
        "[Unit]\n"
        f"Description={description}\n"
        f"After={after}\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        f"ExecStart={site.ivr} {command}\n"
        "Restart=on-failure\n"
        "RestartSec=2s\n"
        f"{_common(site, writable)}"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _backup(site: Site, writable: str) -> str:
    # the file's name carries the day; systemd reads `%` and `$` itself: doubled, they reach sh
    target = f"{site.backup_dir}/ivr-$$(date +%%F).db"
    return (
        "[Unit]\n"
        f"Description={DESCRIPTION}: sao lưu cơ sở dữ liệu\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        # "+": made as root, owned by the service's user (its parent, /var/backups, is root's)
        f"ExecStartPre=+/usr/bin/install -d -o {site.user} -g {site.group} -m 0750 "
        f"{site.backup_dir}\n"
        f'ExecStart=/bin/sh -c \'exec "{site.ivr}" db backup "{target}"\'\n'
        f"{_common(site, f'{writable} -{site.backup_dir}')}"
    )


def _timer(site: Site) -> str:
    return (
        "[Unit]\n"
        f"Description={DESCRIPTION}: sao lưu mỗi đêm\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={site.backup_at}\n"
        "Persistent=true\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
