"""One CEL event, and how a line of ``cel_custom``'s CSV file becomes one (pure).

The line's fields are those of :data:`MAPPING`, which `ivr asterisk-config` writes into
cel_custom.conf, led by a format tag so that a file written by another mapping is refused rather
than misread.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

FORMAT = "ivr1"

# (name in CelEvent, the cel_custom expression that fills it)
FIELDS = (
    ("eid", "${ENTITYID}"),
    ("eventtype", "${eventtype}"),
    ("eventtime", "${eventtime}"),
    ("cid_name", "${CALLERID(name)}"),
    ("cid_num", "${CALLERID(num)}"),
    ("cid_dnid", "${CALLERID(dnid)}"),
    ("exten", "${CHANNEL(exten)}"),
    ("context", "${CHANNEL(context)}"),
    ("channame", "${CHANNEL(channame)}"),
    ("appname", "${CHANNEL(appname)}"),
    ("appdata", "${CHANNEL(appdata)}"),
    ("uniqueid", "${CHANNEL(uniqueid)}"),
    ("linkedid", "${CHANNEL(linkedid)}"),
    ("peer", "${BRIDGEPEER}"),
    ("extra", "${eventextra}"),
)

_NAMES = tuple(name for name, _ in FIELDS)
MAPPING = ",".join(
    [f"${{CSV_QUOTE({FORMAT})}}", *(f"${{CSV_QUOTE({expr})}}" for _, expr in FIELDS)]
)


class CelLineError(ValueError):
    """A line that is not one of ours (another mapping, or cut short)."""


@dataclass(frozen=True, slots=True)
class CelEvent:
    eventtype: str
    eventtime: float  # Unix time
    uniqueid: str
    linkedid: str
    channame: str = ""
    context: str = ""
    exten: str = ""
    appname: str = ""
    appdata: str = ""
    cid_name: str = ""
    cid_num: str = ""
    cid_dnid: str = ""
    peer: str = ""
    extra: str = ""
    eid: str = ""


def parse_line(line: str) -> CelEvent:
    """A CSV line of :data:`MAPPING` (without its line end); CelLineError otherwise."""
    return CelEvent(**row_of(line))


def row_of(line: str) -> dict[str, Any]:
    """A CSV line of :data:`MAPPING` as a row of ``cel`` (CelEvent's fields, the time a float):
    what the file's lines are copied as, without an object per line in between."""
    try:
        row = next(csv.reader([line], strict=True), [])
    except csv.Error as e:
        raise CelLineError(f"dòng CEL không đọc được: {e}") from e
    if not row or row[0] != FORMAT:
        raise CelLineError(f"dòng CEL không theo mẫu {FORMAT} của ivr (cel_custom.conf khác?)")
    if len(row) != len(FIELDS) + 1:
        raise CelLineError(f"dòng CEL có {len(row) - 1} trường, cần {len(FIELDS)}")
    values: dict[str, Any] = dict(zip(_NAMES, row[1:], strict=True))
    try:
        values["eventtime"] = float(values["eventtime"])
    except ValueError as e:
        raise CelLineError(f"thời điểm CEL sai: {values.get('eventtype')}") from e
    if not values["eventtype"] or not values["uniqueid"] or not values["linkedid"]:
        raise CelLineError("dòng CEL thiếu loại sự kiện hoặc mã kênh")
    return values
