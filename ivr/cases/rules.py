"""The province's rules for cases: categories and deadlines (configurable, with defaults).

Defaults, and what they rest on (see the README's "Phản ánh, kiến nghị" section):

- ``forward_days`` = 5 working days: Nghị định 20/2008/NĐ-CP, Điều 9 khoản 1 điểm d — feedback
  outside the receiving agency's competence is forwarded within at most 05 working days. The
  decree is amended by Nghị định 48/2013/NĐ-CP and 92/2017/NĐ-CP (guidance: Thông tư
  02/2017/TT-VPCP), as a province's regulation lists them; the amended article's text could not be
  read from the stored copies, so the province should confirm the figure (README).
- ``answer_days`` = 10 working days: a design choice. Nghị định 20/2008 (Điều 14) fixes no
  number of days for handling; 10 follows the complex-case limit of Thông tư 11/2014/TT-BCT
  (Điều 13), a ministry comparator that does not bind a province. Change it here.
- ``due_soon_days`` = 2 working days: when a case shows in the due-soon list (a design choice).

A rules file is TOML (``--rules FILE`` or IVR_CASES_RULES); every key is optional::

    forward_days = 5
    answer_days = 10
    due_soon_days = 2
    schedule = "office"          # the routing file's schedule that counts working days
    categories = ["thủ tục hành chính", "..."]
    [smtp]                       # the daily digest by e-mail; absent: printed only
    address = "127.0.0.1:25"
    sender = "tongdai@example.gov.vn"
    user = ""                    # the password comes from IVR_SMTP_PASSWORD, never the file
    [recipients]                 # owner unit code (or "branch:N") → e-mail addresses
    "1009" = ["vp@example.gov.vn"]
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RULES_VAR = "IVR_CASES_RULES"
SMTP_PASSWORD_VAR = "IVR_SMTP_PASSWORD"

DEFAULT_CATEGORIES = (
    "thủ tục hành chính",
    "thái độ/hành vi cán bộ (sách nhiễu, vòi vĩnh)",
    "quy định hành chính",
    "khác",
)


class RulesError(ValueError):
    """A rules file that cannot be used (message in Vietnamese)."""


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    user: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Rules:
    forward_days: int = 5
    answer_days: int = 10
    due_soon_days: int = 2
    schedule: str = "office"
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    smtp: Smtp | None = None
    recipients: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def category(self, text: str) -> str:
        """The configured category ``text`` names (case-insensitive), or RulesError."""
        for c in self.categories:
            if c.casefold() == text.strip().casefold():
                return c
        raise RulesError(f"loại '{text}' không có trong danh sách: {'; '.join(self.categories)}")


_INTS = ("forward_days", "answer_days", "due_soon_days")
_KEYS = {*_INTS, "schedule", "categories", "smtp", "recipients"}


def load_rules(path: Path | None, environ: dict[str, str] | None = None) -> Rules:
    env = dict(os.environ) if environ is None else environ
    if path is None and env.get(RULES_VAR):
        path = Path(env[RULES_VAR])
    if path is None:
        return Rules()
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise RulesError(f"{path}: không đọc được tệp quy định: {e.strerror}") from e
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RulesError(f"{path}: tệp quy định sai: {e}") from e
    return _rules(doc, str(path), env.get(SMTP_PASSWORD_VAR, ""))


def _rules(doc: dict[str, Any], where: str, password: str) -> Rules:
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise RulesError(f"{where}: khoá không được biết đến: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in _INTS:
        if key in doc:
            v = doc[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= 365:
                raise RulesError(f"{where}: '{key}' phải là số ngày làm việc từ 1 đến 365")
            values[key] = v
    if "schedule" in doc:
        if not isinstance(doc["schedule"], str):
            raise RulesError(f"{where}: 'schedule' phải là tên một lịch trong tệp định tuyến")
        values["schedule"] = doc["schedule"]
    if "categories" in doc:
        cats = doc["categories"]
        if (
            not isinstance(cats, list)
            or not cats
            or not all(isinstance(c, str) and c for c in cats)
        ):
            raise RulesError(f"{where}: 'categories' phải là danh sách tên loại, không rỗng")
        values["categories"] = tuple(cats)
    if "smtp" in doc:
        values["smtp"] = _smtp(doc["smtp"], where, password)
    if "recipients" in doc:
        values["recipients"] = _recipients(doc["recipients"], where)
    return Rules(**values)


def _smtp(table: Any, where: str, password: str) -> Smtp:
    if not isinstance(table, dict) or not isinstance(table.get("address"), str):
        raise RulesError(f'{where}: [smtp] cần address = "HOST:CỔNG"')
    host, _, port = table["address"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RulesError(f"{where}: [smtp] address '{table['address']}' cần dạng HOST:CỔNG")
    sender = table.get("sender")
    if not isinstance(sender, str) or "@" not in sender:
        raise RulesError(f"{where}: [smtp] cần sender = địa chỉ e-mail gửi đi")
    user = table.get("user", "")
    if not isinstance(user, str):
        raise RulesError(f"{where}: [smtp] user phải là chuỗi")
    return Smtp(host=host.strip("[]"), port=int(port), sender=sender, user=user, password=password)


def _recipients(table: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(table, dict):
        raise RulesError(f"{where}: [recipients] phải là bảng mã đơn vị → danh sách e-mail")
    out: dict[str, tuple[str, ...]] = {}
    for owner, addresses in table.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and "@" in a for a in addresses
        ):
            raise RulesError(f"{where}: [recipients] '{owner}' phải là danh sách địa chỉ e-mail")
        out[owner] = tuple(addresses)
    return out
