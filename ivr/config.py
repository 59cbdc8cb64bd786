"""Settings for every `ivr` command: a TOML file, overridden by IVR_* environment variables.

Where the file is: ``--config FILE``, else the ``IVR_CONFIG`` variable, else none (defaults).
Relative paths written in the file (and the defaults, when there is a file) resolve against the
file's own folder, so a command gives the same answer from any current folder; a relative path
in an IVR_* variable, or any relative path when there is no file, resolves against the current
folder. The ARI password, the AMI secret and the database password are kept out of every log
line and repr.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ivr.redact import redact

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the dialplan and Asterisk templates
CONFIG_VAR = "IVR_CONFIG"
PATH_KEYS = ("routing", "prompts", "data_dir", "spool_dir", "cel_file", "zalo_token_file")
ENV_ONLY = ("zalo_secret_key", "zalo_oa_secret_key")  # secrets never written in the file
NO_FILE = ("", "none")  # cel_file: no CSV to read (PostgreSQL sites: cel_pgsql writes the table)
DEFAULT_CEL_FILE = "/var/log/asterisk/cel-custom/hotline.csv"  # cel_custom.conf's, as written
_ADDRESS = re.compile(r"[^\s]*:\d{1,5}")
EVENT_LOOPS = ("uvloop", "asyncio")  # event_loop: what `ivr run` and `ivr agi` run on


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
    event_loop: str = "uvloop"  # of `ivr run` and `ivr agi` (ivr.cli.loop): uvloop or asyncio
    ami_address: str = ""  # "host:port" of Asterisk's AMI; empty: not used
    ami_user: str = "ivr"
    ami_secret: str = field(default="", repr=False)
    metrics_address: str = "127.0.0.1:9108"  # /metrics and /healthz; empty: not served
    web_address: str = "127.0.0.1:8080"  # the web console (`ivr web`)
    agi_max_connections: int = 200  # FastAGI connections at once; more are refused
    agi_reply_timeout: float = 30.0  # seconds a FastAGI peer may take to answer one command
    # shedding (ivr.ari.overload): past one of these a new call goes to the dialplan's fallback
    max_calls: int = 400  # calls in progress; 0: no limit
    max_loop_lag_ms: int = 500  # how late the event loop may run; 0: not watched
    max_ari_latency_ms: int = 0  # ARI's smoothed answer time; 0: not watched
    # reconciliation: cel_custom's CSV ("none": no file, cel_pgsql writes the table itself)
    cel_file: str = DEFAULT_CEL_FILE
    # several controllers on one Asterisk (ivr.cluster, dialplan [hotline-cluster]): this one's
    # ARI application is hotline-<controller_id>; they know each other through PostgreSQL
    cluster: bool = False
    controller_id: str = ""
    # the survey over Zalo ZNS (ivr.survey.zalo): on when zalo_app_id and zalo_template_id are
    # set; its secrets come only from IVR_ZALO_SECRET_KEY and IVR_ZALO_OA_SECRET_KEY
    zalo_app_id: str = ""
    zalo_secret_key: str = field(default="", repr=False)  # the app's: refreshes the token
    zalo_oa_secret_key: str = field(default="", repr=False)  # the OA's: signs the webhook
    zalo_template_id: str = ""
    zalo_token_file: str = ""  # default: data_dir/zalo-token.json
    zalo_webhook_address: str = ""  # "host:port" where Zalo posts answers; empty: not served
    zalo_api_url: str = "https://business.openapi.zalo.me/message/template"
    zalo_oauth_url: str = "https://oauth.zaloapp.com/v4/oa/access_token"

    @property
    def zalo_enabled(self) -> bool:
        return bool(self.zalo_app_id and self.zalo_template_id)

    @property
    def zalo_token_path(self) -> Path:
        return Path(self.zalo_token_file or Path(self.data_dir) / "zalo-token.json")

    @property
    def ami_endpoint(self) -> tuple[str, int]:
        """(host, port) of AMI; the address was checked when the settings were loaded."""
        return _endpoint(self.ami_address, 5038)

    @property
    def metrics_endpoint(self) -> tuple[str, int]:
        return _endpoint(self.metrics_address, 9108)

    @property
    def web_endpoint(self) -> tuple[str, int]:
        return _endpoint(self.web_address, 8080)

    @property
    def spool_path(self) -> Path:
        return Path(self.spool_dir) if self.spool_dir else Path(self.data_dir) / "spool"

    @property
    def cel_path(self) -> Path | None:
        """The CEL file to read: none when set to "none", or when it is the default and
        Asterisk's CEL folder does not exist on this machine (no local Asterisk)."""
        if self.cel_file.strip().lower() in NO_FILE:
            return None
        path = Path(self.cel_file)
        if self.cel_file == DEFAULT_CEL_FILE and not path.parent.is_dir():
            return None
        return path

    def redacted(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ari_password"] = "***" if self.ari_password else ""
        out["ami_secret"] = "***" if self.ami_secret else ""
        for name in ENV_ONLY:
            out[name] = "***" if getattr(self, name) else ""
        out["ari_url"] = redact(self.ari_url)
        out["database_url"] = redact(self.database_url)
        return out


ENV = {f.name: f"IVR_{f.name.upper()}" for f in fields(Settings)}


def config_path(arg: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The settings file: the --config flag, else IVR_CONFIG, else none."""
    env = os.environ if environ is None else environ
    if arg is not None:
        return arg
    return Path(env[CONFIG_VAR]) if env.get(CONFIG_VAR) else None


def load_settings(
    path: Path | None, environ: Mapping[str, str] | None = None, *, require_ari: bool = True
) -> Settings:
    env = os.environ if environ is None else environ
    path = config_path(path, env)
    base = path.resolve().parent if path is not None else Path.cwd()
    values: dict[str, Any] = _read_file(path) if path is not None else {}
    for name, value in values.items():
        values[name] = _typed(name, value, f"{path}: '{name}'")
    from_env: set[str] = set()
    for name, var in ENV.items():
        if var in env:
            from_env.add(name)
            values[name] = _from_text(name, env[var], var)
    for name in PATH_KEYS:
        value = values.get(name, getattr(Settings, name))
        if value.strip().lower() not in NO_FILE:
            values[name] = str(_absolute(value, Path.cwd() if name in from_env else base))
    if values.get("database_url"):
        url_base = Path.cwd() if "database_url" in from_env else base
        values["database_url"] = _absolute_sqlite(values["database_url"], url_base)
    settings = Settings(**values)
    _check(settings, require_ari)
    return settings


_TYPES = {f.name: f.type for f in fields(Settings)}  # "str", "bool", "int", "float"
_KINDS = {"str": "chuỗi", "bool": "true/false", "int": "số nguyên dương", "float": "số giây dương"}
ZERO_IS_OFF = {"max_calls", "max_loop_lag_ms", "max_ari_latency_ms"}  # 0: that limit is off


def _typed(name: str, value: Any, where: str) -> Any:
    """A value from the TOML file, checked against the setting's type."""
    kind = _TYPES[name]
    if kind not in _KINDS:
        return value
    least = 0 if name in ZERO_IS_OFF else 1
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool) and value >= least,
        "float": isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0,
    }[kind]
    if not ok:
        raise ConfigError(f"{where} phải là {_expected(name)}, không phải {value!r}")
    return float(value) if kind == "float" else value


def _expected(name: str) -> str:
    return "số nguyên ≥ 0 (0: tắt)" if name in ZERO_IS_OFF else _KINDS[str(_TYPES[name])]


def _from_text(name: str, text: str, var: str) -> Any:
    """A value from an IVR_* variable (always text), turned into the setting's type."""
    kind = _TYPES[name]
    if kind not in {"int", "float", "bool"}:
        return text
    if kind == "bool":
        return text.strip().lower() in {"1", "true", "yes"}
    try:
        value: Any = int(text) if kind == "int" else float(text)
    except ValueError:
        raise ConfigError(f"{var} phải là {_expected(name)}, không phải {text!r}") from None
    return _typed(name, value, var)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: không đọc được tệp cấu hình: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: tệp cấu hình không phải UTF-8 (byte lạ ở vị trí {e.start})"
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: cấu hình TOML sai: {e}") from e
    unknown = sorted(set(doc) - set(ENV))
    if unknown:
        raise ConfigError(f"{path}: khoá không được biết đến: {', '.join(unknown)}")
    secrets = sorted(set(doc) & set(ENV_ONLY))
    if secrets:
        where = ", ".join(ENV[n] for n in secrets)
        raise ConfigError(f"{path}: {', '.join(secrets)} chỉ đặt qua biến môi trường ({where})")
    return doc


def _check(settings: Settings, require_ari: bool) -> None:
    for name, example in (
        ("ami_address", "127.0.0.1:5038"),
        ("metrics_address", "127.0.0.1:9108"),
        ("web_address", "127.0.0.1:8080"),
        ("zalo_webhook_address", "127.0.0.1:8091"),
    ):
        value = getattr(settings, name)
        if value and not _ADDRESS.fullmatch(value):
            raise ConfigError(f"{name} '{value}' cần dạng HOST:CỔNG, vd. {example}")
    if settings.event_loop not in EVENT_LOOPS:
        raise ConfigError(
            f"event_loop '{settings.event_loop}' không hợp lệ: dùng {' hoặc '.join(EVENT_LOOPS)}"
        )
    if settings.metrics_address and settings.metrics_endpoint[1] > 65535:
        raise ConfigError(f"metrics_address '{settings.metrics_address}': cổng quá 65535")
    if settings.cluster:
        _check_cluster(settings)
    if settings.zalo_enabled and not settings.zalo_secret_key:
        raise ConfigError(
            f"khảo sát Zalo cần secret key của ứng dụng: đặt {ENV['zalo_secret_key']}"
        )
    if require_ari and not settings.ari_password:
        raise ConfigError(
            f"chưa có mật khẩu ARI: đặt ari_password trong tệp cấu hình hoặc {ENV['ari_password']}"
        )


_CONTROLLER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")


def _check_cluster(settings: Settings) -> None:
    """cluster = true: a plain controller id (it names the ARI app) and a PostgreSQL store."""
    if not _CONTROLLER_ID.fullmatch(settings.controller_id):
        raise ConfigError(
            f"cluster = true cần controller_id ({ENV['controller_id']}): tên riêng của bộ điều "
            f"khiển này, chữ, số, '.', '_' hoặc '-', tối đa 40 ký tự (vd. ctl-a), "
            f"không phải {settings.controller_id!r}"
        )
    if make_url(settings.database_url or "sqlite://").get_backend_name() != "postgresql":
        raise ConfigError(
            "cluster = true cần database_url PostgreSQL (postgresql+asyncpg://NGƯỜI:MK@MÁY/TÊN): "
            "các bộ điều khiển biết nhau còn sống qua khoá của PostgreSQL"
        )


def _absolute(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


SUPPORTED_DATABASES = ("sqlite+aiosqlite", "postgresql+asyncpg")


def check_database_url(url: str, where: str = "database_url") -> None:
    """ConfigError unless the URL names a backend and driver this program runs on."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{where}: không phải URL cơ sở dữ liệu; cần "
            f"sqlite+aiosqlite:///ĐƯỜNG/DẪN/ivr.db hoặc postgresql+asyncpg://NGƯỜI:MK@MÁY/TÊN"
        ) from None
    if parsed.drivername not in SUPPORTED_DATABASES:
        raise ConfigError(
            f"{where}: không hỗ trợ '{parsed.drivername}'; dùng "
            f"{' hoặc '.join(SUPPORTED_DATABASES)} (vd. postgresql+asyncpg://NGƯỜI:MK@MÁY/TÊN)"
        )


def _absolute_sqlite(url: str, base: Path) -> str:
    """A relative SQLite file in a URL resolves like any other path; other URLs are kept."""
    check_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return url
    database = _absolute(parsed.database, base)
    return parsed.set(database=str(database)).render_as_string(hide_password=False)


def _endpoint(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port or default_port)
