"""The daily digest per owner unit: its open cases, overdue and due-soon first. Pure.

The digest names cases by number, subject, status and deadline only: no citizen's name or phone
goes into a printout or an e-mail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.cases.deadlines import Deadlines, Standing, due_of, standing
from ivr.cases.rules import Rules
from ivr.cases.status import Status
from ivr.routing.model import Routing
from models import Case


@dataclass(frozen=True, slots=True)
class Line:
    number: str
    subject: str
    status: Status
    due: dt.date | None
    standing: Standing
    assignee: str


@dataclass
class Digest:
    owner: str  # the unit code, or branch:N
    owner_name: str
    lines: list[Line] = field(default_factory=list)

    def count(self, s: Standing) -> int:
        return sum(1 for line in self.lines if line.standing is s)


def case_standing(routing: Routing, rules: Rules, case: Case, today: dt.date) -> Standing:
    d = Deadlines(case.forward_due, case.answer_due)
    return standing(routing, rules, Status(case.status), d, today)


def build(routing: Routing, rules: Rules, cases: Iterable[Case], today: dt.date) -> list[Digest]:
    by_owner: dict[str, Digest] = {}
    order = {Standing.OVERDUE: 0, Standing.DUE_SOON: 1, Standing.ON_TRACK: 2}
    for c in cases:
        st = case_standing(routing, rules, c, today)
        if st is Standing.DONE:
            continue
        key = c.owner_unit or f"branch:{c.branch}"
        digest = by_owner.setdefault(key, Digest(key, c.owner_name))
        due = due_of(Status(c.status), Deadlines(c.forward_due, c.answer_due))
        digest.lines.append(Line(c.number, c.subject, Status(c.status), due, st, c.assignee or ""))
    for digest in by_owner.values():
        digest.lines.sort(key=lambda x: (order[x.standing], x.due or dt.date.max, x.number))
    return sorted(by_owner.values(), key=lambda d: d.owner)


STANDING_LABEL = {
    Standing.OVERDUE: "QUÁ HẠN",
    Standing.DUE_SOON: "sắp đến hạn",
    Standing.ON_TRACK: "trong hạn",
}


def render(d: Digest, today: dt.date) -> str:
    head = (
        f"Hồ sơ phản ánh, kiến nghị đang xử lý — {d.owner_name} ({d.owner}), ngày {today:%d/%m/%Y}"
    )
    summary = (
        f"{len(d.lines)} hồ sơ: {d.count(Standing.OVERDUE)} quá hạn, "
        f"{d.count(Standing.DUE_SOON)} sắp đến hạn"
    )
    rows = [
        f"  {x.number}  {STANDING_LABEL[x.standing]:<12} hạn {x.due:%d/%m/%Y}  "
        f"{x.status.label:<14} {x.assignee or '(chưa giao)'}  {x.subject}"
        for x in d.lines
        if x.due is not None
    ]
    return "\n".join([head, summary, *rows]) + "\n"
