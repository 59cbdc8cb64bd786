"""The report's columns: one list shared by the table, CSV and XLSX (header, value, kind)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr.reports.measures import Figures


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str
    value: Callable[[Figures], float | int | None]
    kind: str  # "count", "rate" (0..1) or "seconds"


COLUMNS = (
    Column("received", "Cuộc gọi đến", lambda f: f.received, "count"),
    Column("received_open", "Trong giờ", lambda f: f.received_open, "count"),
    Column("received_closed", "Ngoài giờ", lambda f: f.received_closed, "count"),
    Column("received_holiday", "Ngày nghỉ lễ", lambda f: f.received_holiday, "count"),
    Column("answered", "Được trả lời", lambda f: f.answered, "count"),
    Column("answered_rate", "Tỷ lệ trả lời", lambda f: f.answered_rate, "rate"),
    Column("abandoned_menu", "Bỏ máy ở lời chào", lambda f: f.abandoned_menu, "count"),
    Column("abandoned_ringing", "Bỏ máy khi đổ chuông", lambda f: f.abandoned_ringing, "count"),
    Column("abandoned_short", "…trong đó dưới ngưỡng ngắn", lambda f: f.abandoned_short, "count"),
    Column("voicemail", "Để lại lời nhắn", lambda f: f.voicemail, "count"),
    Column(
        "no_answer_no_message",
        "Không ai nghe, không nhắn",
        lambda f: f.no_answer_no_message,
        "count",
    ),
    Column("service_level", "Mức phục vụ", lambda f: f.service_level, "rate"),
    Column("waiting_mean", "Chờ TB (giây)", lambda f: f.waiting.mean, "seconds"),
    Column("waiting_median", "Chờ trung vị", lambda f: f.waiting.median, "seconds"),
    Column("waiting_p90", "Chờ P90", lambda f: f.waiting.p90, "seconds"),
    Column("talk_mean", "Đàm thoại TB (giây)", lambda f: f.talk.mean, "seconds"),
    Column("talk_median", "Đàm thoại trung vị", lambda f: f.talk.median, "seconds"),
    Column("talk_p90", "Đàm thoại P90", lambda f: f.talk.p90, "seconds"),
)


def shown(value: float | int | None, kind: str) -> str:
    """A value as a person reads it: 87,5 % for rates, 1:05 for durations, "–" for none."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f} %".replace(".", ",")
    if kind == "seconds":
        m, s = divmod(round(value), 60)
        return f"{m}:{s:02d}"
    return str(value)
