"""The routing graph as typed data: what an admin writes in routing/*.yaml.

Pure data and its shape rules; reading YAML lives in :mod:`ivr.routing.load`, graph checks in
:mod:`ivr.routing.check`. The call flow imports this module, never the YAML reader.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from holidays.registry import EntityLoader
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from ivr.routing.problems import CONTROL_RE, control_message

# the resource after TECH/ reaches Dial() and pjsip.conf section names: no & , ; [ ] " or spaces
ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9_.@:+*#/=-]+$")
DIGITS_RE = re.compile(r"^[0-9]+$")
TIME_RANGE_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_date(v: object) -> dt.date:
    """A date as the admin writes it: "YYYY-MM-DD" (quoted or not)."""
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"'{v}' không phải ngày dạng YYYY-MM-DD") from None
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    raise ValueError('ngày phải viết dạng "YYYY-MM-DD"')


Date = Annotated[dt.date, BeforeValidator(parse_date)]


def _text(value: str) -> str:
    """Free text (names, owners, reasons): anything printable, on one line."""
    m = CONTROL_RE.search(value)
    if m:
        raise ValueError(f"{control_message(m.group())} (ở ký tự thứ {m.start() + 1})")
    return value


def _token(pattern: str, allowed: str) -> AfterValidator:
    """A word sent to Asterisk as is (a prompt id, a context): only the characters it needs."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        _text(value)
        if not regex.match(value):
            raise ValueError(f"'{value}' chứa ký tự không được phép (chỉ dùng {allowed})")
        return value

    return AfterValidator(check)


_WORD = "chữ cái không dấu, chữ số và . _ -"
Text = Annotated[str, AfterValidator(_text)]
Word = Annotated[str, Field(min_length=1), _token(r"^[A-Za-z0-9_.-]+$", _WORD)]
NodeName = Word
PromptId = Word
Extension = Annotated[
    str,
    Field(min_length=1),
    _token(r"^[A-Za-z0-9_.+*#!\[\]-]+$", "chữ số, chữ cái và _ . + * # ! [ ] -"),
]
Music = Annotated[str, Field(min_length=1), _token(r"^[A-Za-z0-9_.:-]+$", _WORD + " :")]
TimeZone = Annotated[str, _token(r"^[A-Za-z0-9_+/-]+$", _WORD + " /")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _endpoint(value: str) -> str:
    if not ENDPOINT_RE.match(value):
        raise ValueError(
            f"'{value}' không phải endpoint Asterisk dạng CÔNG_NGHỆ/tên (vd. PJSIP/so-noi-vu)"
        )
    return value


Endpoint = Annotated[str, AfterValidator(_endpoint)]


class TimeRange(Strict):
    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        m = TIME_RANGE_RE.match(text)
        if not m:
            raise ValueError(f"'{text}' không phải khoảng giờ dạng HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        end = dt.time.max if (h2, m2) == (24, 0) else dt.time(h2, m2)
        start = dt.time(h1, m1)
        if end <= start:
            raise ValueError(f"'{text}': giờ kết thúc phải sau giờ bắt đầu")
        return cls(start=start, end=end)

    def contains(self, t: dt.time) -> bool:
        return self.start <= t < self.end


def _ranges(value: object) -> list[TimeRange]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('phải là danh sách các khoảng giờ dạng "HH:MM-HH:MM"')
    return [TimeRange.parse(v) for v in value]


class Override(Strict):
    """A dated exception: a swapped working day, an extra closure."""

    date: dt.date
    reason: Text
    hours: list[TimeRange] = Field(default_factory=list)  # empty: closed all day

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        return parse_date(v)

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, v: object) -> list[TimeRange]:
        return _ranges(v)


# the codes `holidays` knows, aliases included: what list_supported_countries() keys, without
# importing every country's module for its subdivisions (125 ms at each routing load)
_HOLIDAY_COUNTRIES = frozenset(EntityLoader.get_country_codes(include_aliases=True))


class Schedule(Strict):
    weekly: dict[str, list[TimeRange]]
    public_holidays: Word | None = "VN"  # a country code of the `holidays` package, or none
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("weekly", mode="before")
    @classmethod
    def _weekly(cls, v: object) -> dict[str, list[TimeRange]]:
        if not isinstance(v, dict):
            raise ValueError("phải là bảng thứ → danh sách khoảng giờ")
        out: dict[str, list[TimeRange]] = {}
        for day, ranges in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"'{day}' không phải thứ trong tuần ({', '.join(WEEKDAYS)})")
            out[day] = _ranges(ranges)
        return out

    @field_validator("public_holidays")
    @classmethod
    def _known_country(cls, v: str | None) -> str | None:
        # unknown to `holidays`, every call would fail at the hours node: refused here instead
        if v is not None and v not in _HOLIDAY_COUNTRIES:
            raise ValueError(
                f"'{v}' không phải mã quốc gia mà thư viện holidays biết (vd. VN); "
                "để null nếu không dùng ngày lễ"
            )
        return v

    @model_validator(mode="after")
    def _unique_dates(self) -> Schedule:
        seen: set[dt.date] = set()
        for o in self.overrides:
            if o.date in seen:
                raise ValueError(f"ngày {o.date} có hai ngoại lệ")
            seen.add(o.date)
        return self


class BranchChange(Strict):
    """From ``from`` on, the branch has a new owner and/or new phones (what is not given stays)."""

    since: Date = Field(alias="from")
    owner: Text | None = None
    endpoints: list[Endpoint] | None = Field(default=None, min_length=1)
    reason: Text = ""

    @model_validator(mode="after")
    def _changes_something(self) -> BranchChange:
        if self.owner is None and self.endpoints is None:
            raise ValueError("một thay đổi cần 'owner' hoặc 'endpoints' (hoặc cả hai)")
        return self


@dataclass(frozen=True, slots=True)
class BranchState:
    owner: str
    endpoints: tuple[str, ...]


class Branch(Strict):
    name: Text
    owner: Text  # the first owner; `changes` say who owns it from a date on
    endpoints: list[Endpoint] = Field(min_length=1)
    schedule: Text = "office"
    changes: list[BranchChange] = Field(default_factory=list)

    @property
    def all_endpoints(self) -> list[str]:
        """Every phone the branch has at any date, once each (the PBX must know them all)."""
        phones = [*self.endpoints, *(e for c in self.changes for e in c.endpoints or ())]
        return list(dict.fromkeys(phones))

    def on(self, day: dt.date) -> BranchState:
        """Owner and phones on ``day``: the first ones, then every change dated on or before it."""
        owner, endpoints = self.owner, tuple(self.endpoints)
        for change in sorted(self.changes, key=lambda c: c.since):
            if change.since > day:
                break
            owner = change.owner or owner
            endpoints = tuple(change.endpoints) if change.endpoints else endpoints
        return BranchState(owner, endpoints)


UnitKind = Literal["department", "district", "commune", "agency"]


def _digits(what: str) -> AfterValidator:
    def check(v: str) -> str:
        if not DIGITS_RE.match(v):
            raise ValueError(f"{what} '{v}' chỉ gồm chữ số")
        return v

    return AfterValidator(check)


class Unit(Strict):
    """A directory entry. Dated entries (``valid_from``/``valid_until``, both days included)
    describe units that were created or ended; ``replaced_by`` names the code of the unit that
    took an ended unit over, so its old code still reaches someone."""

    code: Annotated[str, _digits("mã đơn vị")]
    name: Text
    kind: UnitKind
    endpoint: Endpoint
    parent: str | None = None  # a district's code, for communes
    spoken: Text | None = None  # how the prompt says the name, when spelling misleads (Phường I)
    valid_from: Date | None = None
    valid_until: Date | None = None
    replaced_by: Annotated[str, _digits("mã đơn vị thay thế")] | None = None

    @model_validator(mode="after")
    def _period(self) -> Unit:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError(
                f"valid_until ({self.valid_until}) đứng trước valid_from ({self.valid_from})"
            )
        if self.replaced_by is not None and self.valid_until is None:
            raise ValueError("'replaced_by' cần 'valid_until': ngày cuối đơn vị này hoạt động")
        return self

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    @property
    def said(self) -> str:
        return self.spoken or self.name


class Fallback(Strict):
    context: Word
    extension: Extension = "s"
    priority: int = 1


class Hotline(Strict):
    name: Text
    number: Extension
    entry: NodeName
    language: Word = "vi"
    timezone: TimeZone = "Asia/Ho_Chi_Minh"
    fallback: Fallback


class NodeBase(Strict):
    branch: Text | None = None


class PromptNode(NodeBase):
    type: Literal["prompt"]
    prompts: list[PromptId] = Field(min_length=1)
    next: NodeName


class MenuNode(NodeBase):
    type: Literal["menu"]
    prompts: list[PromptId] = Field(min_length=1)
    choices: dict[Text, NodeName] = Field(min_length=1)
    timeout: float = Field(default=5.0, gt=0, le=60)
    retries: int = Field(default=3, ge=1, le=10)
    invalid_prompts: list[PromptId] = Field(default_factory=list)
    no_input_prompts: list[PromptId] = Field(default_factory=list)
    default: NodeName
    repeat_key: Text = "*"

    @field_validator("choices")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not re.match(r"^[0-9#]$", k):
                raise ValueError(f"phím '{k}' không hợp lệ (một chữ số 0–9 hoặc #)")
        return v


class HoursNode(NodeBase):
    type: Literal["hours"]
    schedule: Text | None = None  # default: the branch's schedule
    open: NodeName
    closed: NodeName
    holiday: NodeName | None = None  # default: closed


class DialOutcomes(Strict):
    answered: NodeName | None = None  # default: the call ends after the conversation
    busy: NodeName
    no_answer: NodeName
    unreachable: NodeName


class DialNode(NodeBase):
    type: Literal["dial"]
    prompts: list[PromptId] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)  # default: the branch's phones
    strategy: Literal["ring_all", "in_turn"] = "ring_all"
    ring_seconds: float = Field(default=20.0, gt=0, le=300)
    music: Music = "ringback"
    # When ``prompts`` play: while the desks ring (they are dialled as soon as the choice is
    # final; ringback or music after the prompts), or before they are dialled. FastAGI plays
    # them while ringing through a music-on-hold class of Dial's m() (ivr/asterisk/moh.py).
    announce: Literal["while_ringing", "before"] = "while_ringing"
    on: DialOutcomes


class VoicemailNode(NodeBase):
    type: Literal["voicemail"]
    prompts: list[PromptId] = Field(min_length=1)
    max_seconds: int = Field(default=120, ge=5, le=600)
    max_silence_seconds: int = Field(default=5, ge=1, le=60)
    thanks_prompts: list[PromptId] = Field(default_factory=list)
    next: NodeName


class DirectoryNode(NodeBase):
    type: Literal["directory"]
    prompts: list[PromptId] = Field(min_length=1)
    timeout: float = Field(default=6.0, gt=0, le=60)
    retries: int = Field(default=3, ge=1, le=10)
    not_found_prompts: list[PromptId] = Field(default_factory=list)
    ended_prompts: list[PromptId] = Field(default_factory=list)  # said after an ended unit's name
    connecting_prompts: list[PromptId] = Field(default_factory=list)  # said before the unit's name
    ring_seconds: float = Field(default=25.0, gt=0, le=300)
    music: Music = "ringback"
    on: DialOutcomes
    fail: NodeName


SURVEY_KEYS = "12345"  # the widest scale: 1 (very dissatisfied) … 5 (very satisfied)


class SurveyNode(NodeBase):
    """After a conversation the desk ended: one question, one key 1–``scale``, then ``next``. No
    key (or another key) ``retries`` times: no answer is recorded and the call goes on to
    ``next``. Only a ``sample`` share of the calls (decided by the call's id), and, if
    ``branches`` is given, only calls a desk of those branches answered, are asked. With
    ``zalo_prompts``, a caller who gave a score from a Vietnamese mobile number is then offered
    the survey over Zalo (``zalo_key`` agrees: a step; ivr.survey.zalo sends it after the call);
    only where Zalo is configured (:attr:`Routing.zalo_survey`), else it is never played."""

    type: Literal["survey"]
    prompts: list[PromptId] = Field(min_length=1)
    scale: int = 5  # 2–5: one key; the store keeps 1–5 (ivr.cases.figures: CSAT on any scale)
    sample: float = 1.0  # the share of calls asked, 0–1
    branches: list[Text] = Field(default_factory=list)  # empty: every branch
    timeout: float = 5.0  # seconds to wait for the key, (0, 60]
    retries: int = 2  # times the question is asked, 1–10
    invalid_prompts: list[PromptId] = Field(default_factory=list)
    no_input_prompts: list[PromptId] = Field(default_factory=list)
    thanks_prompts: list[PromptId] = Field(default_factory=list)
    zalo_prompts: list[PromptId] = Field(default_factory=list)  # "bấm 1 để nhận phiếu … Zalo"
    zalo_key: Annotated[str, Field(pattern=r"^[0-9*#]$")] = "1"
    next: NodeName

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: int) -> int:
        if not 2 <= v <= len(SURVEY_KEYS):
            raise ValueError(
                f"thang điểm {v} không dùng được: phải từ 2 đến {len(SURVEY_KEYS)} điểm "
                "(người gọi bấm một phím; kho dữ liệu giữ điểm 1–5)"
            )
        return v

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if isinstance(v, float) and not 0.0 < v <= 60.0:
            raise ValueError(f"thời gian chờ phím {v} giây phải lớn hơn 0 và không quá 60")
        return v

    @field_validator("retries")
    @classmethod
    def _retries(cls, v: int) -> int:
        if not 1 <= v <= 10:
            raise ValueError(f"số lần hỏi {v} phải từ 1 đến 10")
        return v

    @field_validator("sample", mode="before")
    @classmethod
    def _sample(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            v = float(v)  # 0 and 1 written as whole numbers
        if isinstance(v, float) and not 0.0 <= v <= 1.0:
            raise ValueError(
                f"tỷ lệ khảo sát {v} phải từ 0 đến 1 (vd. 0.3: khoảng 30 % cuộc gọi được hỏi)"
            )
        return v

    @property
    def keys(self) -> str:
        return SURVEY_KEYS[: self.scale]


class HangupNode(NodeBase):
    type: Literal["hangup"]
    prompts: list[PromptId] = Field(default_factory=list)


class DialplanNode(NodeBase):
    type: Literal["dialplan"]
    prompts: list[PromptId] = Field(default_factory=list)
    context: Word | None = None  # default: the hotline's fallback
    extension: Extension | None = None
    priority: int | None = None


Node = Annotated[
    PromptNode
    | MenuNode
    | HoursNode
    | DialNode
    | VoicemailNode
    | DirectoryNode
    | SurveyNode
    | HangupNode
    | DialplanNode,
    Field(discriminator="type"),
]


class Routing(Strict):
    hotline: Hotline
    schedules: dict[Text, Schedule]
    branches: dict[Text, Branch]
    units: list[Unit] = Field(default_factory=list)
    nodes: dict[NodeName, Node]
    version: str = ""  # set by the loader: a digest of the file's bytes

    _by_code: dict[str, list[Unit]] = PrivateAttr(default_factory=dict)
    _zalo_survey: bool = PrivateAttr(default=False)

    @property
    def zalo_survey(self) -> bool:
        """Whether the survey nodes may offer the Zalo survey: Zalo is configured (the settings',
        not the file's, to say: see :func:`ivr.survey.offer.calls_routing`)."""
        return self._zalo_survey

    def offering_zalo(self) -> Routing:
        """This routing, its survey nodes offering the Zalo survey (a copy; this one unchanged)."""
        copy = self.model_copy()
        copy._zalo_survey = True
        return copy

    def model_post_init(self, context: object, /) -> None:
        for u in self.units:
            self._by_code.setdefault(u.code, []).append(u)
        for entries in self._by_code.values():
            entries.sort(key=lambda u: u.valid_from or dt.date.min)

    def entries(self, code: str) -> list[Unit]:
        """Every entry listed under ``code``, earliest first (one, unless the code was reused)."""
        return self._by_code.get(code, [])

    def unit_on(self, code: str, day: dt.date) -> Unit | None:
        """The unit ``code`` reaches on ``day`` without following any replacement."""
        return next((u for u in self.entries(code) if u.valid_on(day)), None)

    def schedule_for(self, node: HoursNode) -> Schedule:
        name = node.schedule or (self.branches[node.branch].schedule if node.branch else "office")
        return self.schedules[name]


def node_targets(node: Node) -> list[tuple[str, str]]:
    """(field path, target node name) for every edge leaving ``node``."""
    match node:
        case PromptNode() | VoicemailNode() | SurveyNode():
            return [("next", node.next)]
        case MenuNode():
            return [
                *((f"choices.{k}", t) for k, t in node.choices.items()),
                ("default", node.default),
            ]
        case HoursNode():
            out = [("open", node.open), ("closed", node.closed)]
            return out + ([("holiday", node.holiday)] if node.holiday else [])
        case DialNode():
            return _outcome_targets(node.on)
        case DirectoryNode():
            return [*_outcome_targets(node.on), ("fail", node.fail)]
        case HangupNode() | DialplanNode():
            return []


def _outcome_targets(on: DialOutcomes) -> list[tuple[str, str]]:
    pairs = [
        ("on.busy", on.busy),
        ("on.no_answer", on.no_answer),
        ("on.unreachable", on.unreachable),
    ]
    return ([("on.answered", on.answered)] if on.answered else []) + pairs


def node_prompts(node: Node) -> list[tuple[str, str]]:
    """(field path, prompt id) for every prompt a node names."""
    fields = (
        "prompts",
        "invalid_prompts",
        "no_input_prompts",
        "thanks_prompts",
        "not_found_prompts",
        "ended_prompts",
        "connecting_prompts",
        "zalo_prompts",
    )
    out: list[tuple[str, str]] = []
    for f in fields:
        for i, p in enumerate(getattr(node, f, ()) or ()):
            out.append((f"{f}.{i}", p))
    return out
