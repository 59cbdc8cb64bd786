"""The agency's own text for the Ministry report (a TOML file the admin edits) and the wording
template (a TOML file the agency may change without code)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "agency.example.toml"
DEFAULT_TEMPLATE = HERE / "ministry_template.toml"


class AgencyError(ValueError):
    """The agency file or the template cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class Agency:
    province: str
    place: str
    parent_agency: str
    agency: str
    agency_name: str  # as written in a sentence: "Sở Nội vụ"
    agency_short: str
    report_number: str
    subject: str
    recipient: str
    legal_basis: list[str]
    deployed_from: str
    survey_channel: str
    signer_for: str
    signer_title: str
    signer_name: str
    recipients: list[str]
    template: str = ""


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise AgencyError(f"{path}: không đọc được ({e})") from None


def load_agency(path: Path | None) -> Agency:
    src = path or EXAMPLE
    data = _read(src)
    names = {f.name for f in fields(Agency)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AgencyError(f"{src}: khoá không biết: {', '.join(unknown)}")
    missing = sorted(n for n in names - set(data) if n != "template")
    if missing:
        raise AgencyError(f"{src}: thiếu {', '.join(missing)}")
    for key in ("legal_basis", "recipients"):
        items = data[key]
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise AgencyError(f"{src}: '{key}' phải là danh sách chuỗi")
    lists = ("legal_basis", "recipients")
    bad = [k for k, v in data.items() if k not in lists and not isinstance(v, str)]
    if bad:
        raise AgencyError(f"{src}: '{bad[0]}' phải là chuỗi")
    agency = Agency(**data)  # type: ignore[arg-type]
    if agency.template and not Path(agency.template).is_absolute():
        agency = replace(agency, template=str((src.parent / agency.template).resolve()))
    return agency


def load_template(agency: Agency) -> dict[str, str]:
    path = Path(agency.template) if agency.template else DEFAULT_TEMPLATE
    data = _read(path)
    base = _read(DEFAULT_TEMPLATE)
    merged = {**base, **data}  # a template may change only some paragraphs
    bad = [k for k, v in merged.items() if not isinstance(v, str)]
    if bad:
        raise AgencyError(f"{path}: '{bad[0]}' phải là chuỗi")
    return {k: str(v) for k, v in merged.items()}
