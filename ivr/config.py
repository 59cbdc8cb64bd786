"""Settings for `ivr run`: a TOML file, overridden by IVR_* environment variables.

The ARI password is kept out of every log line and repr.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    ari_url: str = "http://127.0.0.1:8088/ari"
    ari_user: str = "ivr"
    ari_password: str = field(default="", repr=False)
    ari_app: str = "hotline"
    routing: str = "routing/hotline.yaml"
    prompts: str = "prompts/manifest.yaml"
    data_dir: str = "data"
    database_url: str = field(default="", repr=False)  # default: SQLite under data_dir
    spool_dir: str = ""  # default: data_dir/spool
    sound_prefix: str = "hotline"
    recordings_dir: str = "/var/spool/asterisk/recording"
    log_json: bool = False
    ami_address: str = ""  # "host:port" of Asterisk's AMI; empty: not used
    ami_user: str = "ivr"
    ami_secret: str = field(default="", repr=False)

    @property
    def ami_endpoint(self) -> tuple[str, int]:
        """(host, port) of AMI; the address was checked when the settings were loaded."""
        host, _, port = self.ami_address.rpartition(":")
        return host or "127.0.0.1", int(port or 5038)

    def redacted(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ari_password"] = "***" if self.ari_password else ""
        out["ami_secret"] = "***" if self.ami_secret else ""
        out["database_url"] = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", self.database_url)
        return out


ENV = {f.name: f"IVR_{f.name.upper()}" for f in fields(Settings)}


def load_settings(
    path: Path | None, environ: dict[str, str] | None = None, *, require_ari: bool = True
) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{path}: không đọc được tệp cấu hình: {e.strerror}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: cấu hình TOML sai: {e}") from e
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(f"{path}: khoá không được biết đến: {', '.join(unknown)}")
        values.update(doc)
    for name, var in ENV.items():
        if var in env:
            values[name] = (
                env[var].lower() in {"1", "true", "yes"} if name == "log_json" else env[var]
            )
    for name, value in values.items():
        expected = bool if name == "log_json" else str
        if not isinstance(value, expected):
            raise ConfigError(f"'{name}' phải là {'true/false' if expected is bool else 'chuỗi'}")
    settings = Settings(**values)
    if settings.ami_address and not re.fullmatch(r"[^\s:]*:\d{1,5}", settings.ami_address):
        raise ConfigError(
            f"ami_address '{settings.ami_address}' cần dạng HOST:CỔNG, vd. 127.0.0.1:5038"
        )
    if require_ari and not settings.ari_password:
        raise ConfigError(
            f"chưa có mật khẩu ARI: đặt ari_password trong tệp cấu hình hoặc {ENV['ari_password']}"
        )
    return settings
