"""The clerk's caller ID (issue 14 row 22): whatever number and name a caller brings, the clerk's
phone gets a bounded number of digits and a name that cannot close a quote or open a bracket;
the call record keeps what the caller sent."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi.server import AgiServer
from ivr.flow.callerid import MAX_NAME, MAX_NUMBER, clerk_caller_id
from ivr.flow.record import Disposition, MemoryObserver
from ivr.routing.model import Routing
from ivr.sim.agi import AgiSim
from ivr.sim.harness import Harness
from ivr.sim.scripts import CallerScript, Clerks, ClerkScript, Press

from .conftest import vn_time

DAY = vn_time("2026-11-25 09:00")
HOSTILE = '0912> "Giam doc So" <0999'
HUGE = "0912" * 2500  # 10 KB of digits
SAFE_TEXT = re.compile(r'"[^"<>\\\x00-\x1f\x7f-\x9f]*" <\+?[0-9]*>')


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("0912345678", "0912345678"),
        ("+84 912 345 678", "+84912345678"),
        ("(024) 3825-1234", "02438251234"),
        (HOSTILE, ""),  # not a number: unknown rather than a forged one
        (HUGE, ""),
        ("", ""),
        ("09\x0012", ""),
        ("anonymous", ""),
        ("+", ""),
        ("12+34", ""),
    ],
)
def test_the_number_is_digits_or_nothing(number: str, shown: str) -> None:
    assert clerk_caller_id("CCHC 4", number).number == shown


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("CCHC 4 - Tư pháp", "CCHC 4 - Tư pháp"),
        ('Giam doc "So" <0999>', "Giam doc So 0999"),
        ("a\nb\r\x1b[31mc\x07", "a b 31mc"),
        ("x\\y", "xy"),
        ("  nhiều    khoảng   trắng ", "nhiều khoảng trắng"),
    ],
)
def test_the_name_has_no_quote_bracket_or_control(name: str, shown: str) -> None:
    assert clerk_caller_id(name, "0912345678").name == shown


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=300), number=st.text(max_size=300))
def test_any_caller_id_is_bounded_and_safe(name: str, number: str) -> None:
    cid = clerk_caller_id(name, number)
    assert SAFE_TEXT.fullmatch(cid.text), cid.text
    assert len(cid.name) <= MAX_NAME
    assert len(cid.number) <= MAX_NUMBER
    assert clerk_caller_id(cid.name, cid.number) == cid  # cleaning twice changes nothing


# --- both adapters use it ----------------------------------------------------------------------


@pytest.mark.parametrize("number", [HOSTILE, HUGE])
async def test_ari_gives_the_clerk_a_clean_caller_id_and_records_the_raw_number(
    routing: Routing, number: str
) -> None:
    observer = MemoryObserver()
    clerks = Clerks(default=ClerkScript())
    async with Harness(routing, observer, speed=10, clerks=clerks, clock=lambda: DAY) as h:
        call = h.sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number=number))
        await asyncio.wait_for(call.done, 60)
        await h.idle()
        dials = [r for r in h.sim.requests if r.method == "POST" and r.route == "/channels"]
    assert dials
    for dial in dials:
        assert SAFE_TEXT.fullmatch(dial.query["callerId"]), dial.query["callerId"][:200]
        assert dial.query["callerId"].endswith(" <>")
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED
    assert record.caller_number == number


async def test_agi_gives_the_clerk_a_clean_caller_id_and_records_the_raw_number(
    routing: Routing,
) -> None:
    observer = MemoryObserver()
    server = AgiServer(lambda: routing, observer, clock=lambda: DAY, timer_scale=0.1)
    port = await server.start(port=0)
    sim = AgiSim(port, speed=10, clerks=Clerks(default=ClerkScript()))
    try:
        call = sim.call(CallerScript((Press("4", on="prompt:main-menu"),), number=HOSTILE))
        await asyncio.wait_for(call.done, 60)
        await asyncio.wait_for(server.idle(), 30)
    finally:
        await server.stop()
    assert call.variables["CALLERID(num)"] == ""
    assert SAFE_TEXT.fullmatch(f'"{call.variables["CALLERID(name)"]}" <>')
    (record,) = observer.done
    assert record.disposition is Disposition.ANSWERED
    assert record.caller_number == HOSTILE
