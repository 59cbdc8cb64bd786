"""The scenario table: a caller's actions and the clerks' behaviour in, the call's record out.

Each row runs through the real controller against the simulator over loopback sockets
(tests/test_scenarios.py); the same rows serve every adapter that implements a call session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.flow.record import Disposition
from ivr.sim.scripts import (
    CallerScript,
    ClerkKind,
    ClerkScript,
    Hangup,
    Press,
    Speak,
    Wait,
)
from ivr.sim.sipp import Bye, Keys, Quiet, Step, Talk

ANSWER = ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=5)
BUSY = ClerkScript(ClerkKind.BUSY, ring_seconds=1)
NO_ANSWER = ClerkScript(ClerkKind.NO_ANSWER)
UNREACHABLE = ClerkScript(ClerkKind.UNREACHABLE)
WAITS_FOR_CALLER = ClerkScript(ClerkKind.ANSWER, ring_seconds=2, talk_seconds=None)
# answers well after a dial's announcement (2 prompts × 2 s in the simulator) has ended
LATE_ANSWER = ClerkScript(ClerkKind.ANSWER, ring_seconds=9, talk_seconds=2)

DAY = "2026-11-25 09:00"  # a Wednesday morning
# Hậu Giang's communes were merged on 1/7/2025 (NQ 1668/NQ-UBTVQH15); both are Monday/Tuesday mornings
LAST_DAY_BEFORE_MERGERS = "2025-06-30 09:00"
FIRST_DAY_AFTER_MERGERS = "2025-07-01 09:00"
MENU = ("start", "greeting", "main-menu")
SURVEYED = ("survey", "goodbye")  # after a conversation the desk ended: the survey, then goodbye


@dataclass(frozen=True)
class Expect:
    disposition: Disposition
    path: tuple[str, ...]
    digits: str = ""
    branch: str | None = None
    unit: str | None = None
    endpoint: str | None = None
    hangup_by: str | None = None
    voicemail_seconds: float | None = None
    wait_seconds: float | None = None
    # when it differs through FastAGI, which plays a dial's announcement before Dial (the wait
    # starts after it) where ARI plays it while the desks ring
    agi_wait_seconds: float | None = None
    talk_seconds: float | None = None
    outcomes: tuple[tuple[str, str], ...] = ()  # (node, outcome) steps that must appear, in order
    survey: int | None = None  # the satisfaction score the caller keyed (None: no answer)


@dataclass(frozen=True)
class Scenario:
    name: str
    caller: tuple[object, ...]
    expect: Expect
    clerks: dict[str, ClerkScript] = field(default_factory=dict)
    at: str = DAY
    heard: tuple[str, ...] = ()  # prompts the caller must have heard
    not_heard: tuple[str, ...] = ()
    sim_log: tuple[str, ...] = ()  # what the simulated caller saw happen
    after_talk: dict[str, str] = field(default_factory=dict)  # dial node → its on.answered
    recordings_fail: bool = False  # the PBX cannot write recordings (a full or read-only spool)

    def script(self, number: str = "0912345678") -> CallerScript:
        return CallerScript(tuple(self.caller), number=number)  # type: ignore[arg-type]


def on_menu(digits: str, after: float = 0.5) -> Press:
    return Press(digits, on="prompt:main-menu", after=after)


SCENARIOS = [
    Scenario(
        "press 4, a clerk answers, the clerk hangs up",
        (on_menu("4"),),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-4", *SURVEYED),
            "4",
            branch="4",
            endpoint="PJSIP/cchc-4a",
            hangup_by="system",
            wait_seconds=2,
            talk_seconds=5,
            outcomes=(
                ("main-menu", "chosen"),
                ("branch-4", "answered"),
                ("survey", "no_input"),
                ("survey", "no_input"),
                ("survey", "no_answer"),
                ("goodbye", "hung_up"),
            ),
        ),
        clerks={"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": BUSY},
        # the clerk answers during the announcement (please-hold, branch-4): it is cut short
        heard=("greeting", "main-menu", "please-hold", "survey-question", "goodbye"),
        not_heard=("survey-thanks",),
        sim_log=(  # no ringback through ARI: the clerk answers during the announcement
            "ringing:PJSIP/cchc-4a",
            "talking:PJSIP/cchc-4a",
            "clerk-hung-up",
            "prompt:survey-question",
            "hangup:app",
        ),
    ),
    Scenario(
        "ring all: the first phone never answers, the second does",
        (on_menu("4"),),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-4", *SURVEYED),
            "4",
            branch="4",
            endpoint="PJSIP/cchc-4b",
            hangup_by="system",
            wait_seconds=3,
        ),
        clerks={
            "PJSIP/cchc-4a": NO_ANSWER,
            "PJSIP/cchc-4b": ClerkScript(ClerkKind.ANSWER, ring_seconds=3, talk_seconds=2),
        },
    ),
    Scenario(
        "busy clerk: the caller leaves a message ended by #",
        (on_menu("1"), Speak(3), Press("#")),
        Expect(
            Disposition.VOICEMAIL,
            (*MENU, "branch-1", "vm-1", "goodbye"),
            "1",
            branch="1",
            hangup_by="system",
            voicemail_seconds=3,
            outcomes=(("branch-1", "busy"), ("vm-1", "recorded"), ("goodbye", "hung_up")),
        ),
        clerks={"PJSIP/cchc-1": BUSY},
        heard=("voicemail-intro", "voicemail-thanks", "goodbye"),
    ),
    Scenario(
        "no answer: the message ends on silence",
        (on_menu("6"), Speak(2)),
        Expect(
            Disposition.VOICEMAIL,
            (*MENU, "branch-6", "vm-6", "goodbye"),
            "6",
            branch="6",
            voicemail_seconds=2,
            wait_seconds=20,
            outcomes=(("branch-6", "no_answer"), ("vm-6", "recorded")),
        ),
        clerks={"PJSIP/cchc-6": NO_ANSWER},
    ),
    Scenario(
        "unreachable phone: the caller hangs up while leaving a message, which is kept",
        (on_menu("3"), Speak(3), Hangup(after=0.5)),
        Expect(
            Disposition.VOICEMAIL,
            (*MENU, "branch-3", "vm-3"),
            "3",
            branch="3",
            hangup_by="caller",
            voicemail_seconds=3,
            outcomes=(("branch-3", "unreachable"), ("vm-3", "caller_hung_up")),
        ),
        clerks={"PJSIP/cchc-3": UNREACHABLE},
    ),
    Scenario(
        "in turn: the first operator does not answer, the second does",
        (on_menu("9"),),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-9", *SURVEYED),
            "9",
            branch="9",
            endpoint="PJSIP/cchc-9b",
            wait_seconds=17,
        ),
        clerks={"PJSIP/cchc-9a": NO_ANSWER, "PJSIP/cchc-9b": ANSWER},
        sim_log=("ringing:PJSIP/cchc-9a", "ringing:PJSIP/cchc-9b", "talking:PJSIP/cchc-9b"),
    ),
    Scenario(
        "every phone of a branch unreachable, caller leaves no message",
        (on_menu("9"), Hangup(on="prompt:voicemail-intro", after=1)),
        Expect(
            Disposition.UNREACHABLE,
            (*MENU, "branch-9", "vm-9"),
            "9",
            branch="9",
            hangup_by="caller",
        ),
        clerks={"PJSIP/cchc-9a": UNREACHABLE, "PJSIP/cchc-9b": UNREACHABLE},
    ),
    Scenario(
        "at night: office closed, the caller hangs up during the announcement",
        (Hangup(on="prompt:office-closed", after=1),),
        Expect(
            Disposition.CLOSED,
            ("start", "closed"),
            hangup_by="caller",
            outcomes=(("start", "closed"),),
        ),
        at="2026-11-25 22:00",
        not_heard=("greeting",),
    ),
    Scenario(
        "first day of Tết 2027: the holiday route, a message left",
        (Speak(2), Press("#")),
        Expect(
            Disposition.VOICEMAIL,
            ("start", "holiday", "vm-closed", "goodbye"),
            voicemail_seconds=2,
            outcomes=(("start", "holiday"),),
        ),
        at="2027-02-06 09:00",
        heard=("holiday-closed", "voicemail-after-hours"),
    ),
    Scenario(
        "an invalid key then silence: retries, then goodbye",
        (on_menu("#"),),
        Expect(
            Disposition.ABANDONED,
            (*MENU, "goodbye"),
            "#",
            hangup_by="system",
            outcomes=(
                ("main-menu", "invalid"),
                ("main-menu", "no_input"),
                ("main-menu", "no_input"),
                ("main-menu", "exhausted"),
            ),
        ),
        heard=("invalid-choice", "no-input", "goodbye"),
    ),
    Scenario(
        "* repeats the menu without counting as a mistake",
        (on_menu("*"), on_menu("5", after=1.0)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-5", *SURVEYED),
            "*5",
            branch="5",
            endpoint="PJSIP/cchc-5",
            outcomes=(("main-menu", "repeat"), ("main-menu", "chosen")),
        ),
        clerks={"PJSIP/cchc-5": ANSWER},
    ),
    Scenario(
        "type-ahead: 4 pressed during the greeting skips the menu prompt",
        (Press("4", on="prompt:greeting", after=0.5),),
        Expect(Disposition.ANSWERED, (*MENU, "branch-4", *SURVEYED), "4", branch="4"),
        clerks={"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": BUSY},
        not_heard=("main-menu",),
    ),
    Scenario(
        "directory: a commune reached by its code",
        (on_menu("0"), Press("3002#", on="prompt:enter-unit-code", after=0.5)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "directory"),
            "03002",
            unit="3002",
            endpoint="PJSIP/dv-3002",
            outcomes=(("directory", "found"), ("directory", "answered")),
        ),
        heard=("connecting-unit", "unit-3002"),
    ),
    Scenario(
        "directory: an unknown code, then a good one",
        (
            on_menu("0"),
            Press("9999", on="prompt:enter-unit-code"),
            Press("1001", on="prompt:enter-unit-code"),
        ),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "directory"),
            "099991001",
            unit="1001",
            endpoint="PJSIP/dv-1001",
            outcomes=(("directory", "not_found"), ("directory", "found")),
        ),
        heard=("unit-not-found", "unit-1001"),
    ),
    Scenario(
        "directory: the unit's phone is busy, a message for the unit",
        (on_menu("0"), Press("3004#", on="prompt:enter-unit-code"), Speak(2), Press("#")),
        Expect(
            Disposition.VOICEMAIL,
            (*MENU, "directory", "vm-unit", "goodbye"),
            "03004",
            unit="3004",
            voicemail_seconds=2,
        ),
        clerks={"PJSIP/dv-3004": BUSY},
    ),
    Scenario(
        "directory: an old commune's code on its last day reaches it as before",
        (on_menu("0"), Press("3104#", on="prompt:enter-unit-code", after=0.5)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "directory"),
            "03104",
            unit="3104",
            endpoint="PJSIP/dv-3104",
            outcomes=(("directory", "found"), ("directory", "answered")),
        ),
        at=LAST_DAY_BEFORE_MERGERS,
        heard=("connecting-unit", "unit-3104"),
        not_heard=("moved-3104", "unit-3002"),
    ),
    Scenario(
        "directory: an old commune's code after the merger: '… nay là …', then its successor",
        (on_menu("0"), Press("3104#", on="prompt:enter-unit-code", after=0.5)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "directory"),
            "03104",  # the code dialled ...
            unit="3002",  # ... and the unit reached, as it was on the call's day
            endpoint="PJSIP/dv-3002",
            outcomes=(("directory", "replaced"), ("directory", "answered")),
        ),
        at=FIRST_DAY_AFTER_MERGERS,
        heard=("moved-3104", "connecting-unit", "unit-3002"),
        not_heard=("unit-3104",),
    ),
    Scenario(
        "directory: a new commune's code the day before it exists is unknown",
        (on_menu("0"), Press("3002#", on="prompt:enter-unit-code"), Hangup(after=1.0)),
        Expect(Disposition.ABANDONED, (*MENU, "directory"), "03002"),
        at=LAST_DAY_BEFORE_MERGERS,
        heard=("unit-not-found",),
        not_heard=("unit-3002",),
    ),
    Scenario(
        "directory: a district's code after the district level ended, then a commune's",
        (
            on_menu("0"),
            Press("2006#", on="prompt:enter-unit-code"),
            Press("3009#", on="prompt:enter-unit-code"),
        ),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "directory"),
            "020063009",
            unit="3009",
            endpoint="PJSIP/dv-3009",
            outcomes=(("directory", "ended"), ("directory", "found"), ("directory", "answered")),
        ),
        heard=("unit-2006", "unit-ended", "unit-3009"),
    ),
    Scenario(
        "directory: nothing keyed, three times",
        (on_menu("0"),),
        Expect(
            Disposition.ABANDONED,
            (*MENU, "directory", "goodbye"),
            "0",
            outcomes=(("directory", "no_input"), ("directory", "exhausted")),
        ),
    ),
    Scenario(
        "the caller hangs up during the greeting",
        (Hangup(on="prompt:greeting", after=1),),
        Expect(Disposition.ABANDONED, MENU[:2], hangup_by="caller"),
        not_heard=("main-menu",),
    ),
    Scenario(
        "the caller hangs up in the menu",
        (Hangup(on="prompt:main-menu", after=1),),
        Expect(Disposition.ABANDONED, MENU, hangup_by="caller"),
    ),
    Scenario(
        "the caller hangs up while the phone rings: the dialled leg is dropped, the wait counted",
        (on_menu("2"), Hangup(on="ringing", after=4)),
        Expect(
            Disposition.ABANDONED,
            (*MENU, "branch-2"),
            "2",
            branch="2",
            hangup_by="caller",
            # the desk rings during the announcement (2 × 2 s here), then 4 s of ringback
            wait_seconds=4 + 4,
        ),
        clerks={"PJSIP/cchc-2": NO_ANSWER},
    ),
    Scenario(
        "the desk rings while the announcement plays and answers after it",
        (on_menu("4"),),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-4", *SURVEYED),
            "4",
            branch="4",
            endpoint="PJSIP/cchc-4a",
            wait_seconds=9,  # the desk's 9 s of ringing, the announcement's 4 s among them
            outcomes=(("branch-4", "answered"),),
        ),
        clerks={"PJSIP/cchc-4a": LATE_ANSWER, "PJSIP/cchc-4b": NO_ANSWER},
        heard=("please-hold", "branch-4"),
        # the whole announcement, then ringback, then the clerk (both adapters)
        sim_log=("prompt:please-hold", "prompt:branch-4", "ringing", "talking:PJSIP/cchc-4a"),
    ),
    Scenario(
        "in turn: the caller hangs up while the second phone rings, both waits counted",
        (on_menu("9"), Wait(on="ringing"), Hangup(on="ringing", after=3)),
        Expect(
            Disposition.ABANDONED,
            (*MENU, "branch-9"),
            "9",
            branch="9",
            hangup_by="caller",
            wait_seconds=15 + 3,
        ),
        clerks={"PJSIP/cchc-9a": NO_ANSWER, "PJSIP/cchc-9b": NO_ANSWER},
    ),
    Scenario(
        "the caller hangs up during the conversation: the clerk's leg is hung up",
        (on_menu("7"), Wait(on="bridged"), Hangup(after=3)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-7"),
            "7",
            branch="7",
            endpoint="PJSIP/cchc-7",
            hangup_by="caller",
            talk_seconds=3,
        ),
        clerks={"PJSIP/cchc-7": WAITS_FOR_CALLER},
    ),
    # --- a recording is a message only with speech in it -----------------------------------
    Scenario(
        "the caller hangs up at the beep: no message, the call stays 'busy'",
        (on_menu("1"), Hangup(on="record", after=0.3)),
        Expect(
            Disposition.BUSY,
            (*MENU, "branch-1", "vm-1"),
            "1",
            branch="1",
            hangup_by="caller",
            outcomes=(("branch-1", "busy"), ("vm-1", "no_message")),
        ),
        clerks={"PJSIP/cchc-1": BUSY},
        not_heard=("voicemail-thanks",),
    ),
    Scenario(
        "the caller says nothing for 4 s, then hangs up: line noise is no message",
        (on_menu("3"), Hangup(on="record", after=4)),
        Expect(
            Disposition.UNREACHABLE,
            (*MENU, "branch-3", "vm-3"),
            "3",
            branch="3",
            hangup_by="caller",
            outcomes=(("branch-3", "unreachable"), ("vm-3", "no_message")),
        ),
        clerks={"PJSIP/cchc-3": UNREACHABLE},
    ),
    Scenario(
        "the caller stays silent until the recording stops on silence: no message, goodbye",
        (on_menu("6"),),
        Expect(
            Disposition.NO_ANSWER,
            (*MENU, "branch-6", "vm-6", "goodbye"),
            "6",
            branch="6",
            hangup_by="system",
            outcomes=(("branch-6", "no_answer"), ("vm-6", "no_message"), ("goodbye", "hung_up")),
        ),
        clerks={"PJSIP/cchc-6": NO_ANSWER},
        heard=("goodbye",),
        not_heard=("voicemail-thanks",),
    ),
    Scenario(
        "a recording the PBX cannot write is an error: handed to the operators' fallback",
        (on_menu("1"), Speak(2)),
        Expect(
            Disposition.ERRORED,
            (*MENU, "branch-1", "vm-1"),
            "1",
            branch="1",
            outcomes=(("branch-1", "busy"),),
        ),
        clerks={"PJSIP/cchc-1": BUSY},
        recordings_fail=True,
        sim_log=("record-failed", "dialplan:hotline-fallback"),
    ),
    # --- after a conversation: one rule, in the flow ---------------------------------------
    Scenario(
        "the clerk hangs up and the routing says what follows: the call goes on",
        (on_menu("4"),),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-4", "goodbye"),
            "4",
            branch="4",
            endpoint="PJSIP/cchc-4a",
            hangup_by="system",
            talk_seconds=5,
            outcomes=(("branch-4", "answered"), ("goodbye", "hung_up")),
        ),
        clerks={"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": BUSY},
        after_talk={"branch-4": "goodbye"},
        sim_log=("talking:PJSIP/cchc-4a", "clerk-hung-up", "prompt:goodbye", "hangup:app"),
    ),
    Scenario(
        "the caller hangs up during the conversation: what follows is not played",
        (on_menu("7"), Wait(on="bridged"), Hangup(after=3)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-7"),
            "7",
            branch="7",
            hangup_by="caller",
            talk_seconds=3,
        ),
        clerks={"PJSIP/cchc-7": WAITS_FOR_CALLER},
        after_talk={"branch-7": "goodbye"},
        not_heard=("goodbye",),
    ),
    # --- the satisfaction survey after a conversation the desk ended ---------------------
    Scenario(
        "survey: the clerk hangs up, the caller rates the call 4",
        (on_menu("4"), Press("4", on="prompt:survey-question", after=0.5)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-4", *SURVEYED),
            "4",  # the survey's key is an answer, not a choice in the menus
            branch="4",
            endpoint="PJSIP/cchc-4a",
            hangup_by="system",
            talk_seconds=5,
            outcomes=(("branch-4", "answered"), ("survey", "answered"), ("goodbye", "hung_up")),
            survey=4,
        ),
        clerks={"PJSIP/cchc-4a": ANSWER, "PJSIP/cchc-4b": BUSY},
        heard=("survey-question", "survey-thanks", "goodbye"),
        not_heard=("survey-invalid",),
    ),
    Scenario(
        "survey: a key off the scale, then 1 (in turn, the second desk answered)",
        (
            on_menu("9"),
            Press("7", on="prompt:survey-question", after=0.3),
            Press("1", on="prompt:survey-question", after=0.3),
        ),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-9", *SURVEYED),
            "9",
            branch="9",
            endpoint="PJSIP/cchc-9b",
            outcomes=(("survey", "invalid"), ("survey", "answered")),
            survey=1,
        ),
        clerks={"PJSIP/cchc-9a": NO_ANSWER, "PJSIP/cchc-9b": ANSWER},
        heard=("survey-invalid", "survey-thanks"),
    ),
    Scenario(
        "survey: the caller hangs up during the question, no answer is kept",
        (on_menu("2"), Hangup(on="prompt:survey-question", after=0.5)),
        Expect(
            Disposition.ANSWERED,
            (*MENU, "branch-2", "survey"),
            "2",
            branch="2",
            endpoint="PJSIP/cchc-2",
            hangup_by="callee",  # who ended the conversation; the path shows where the caller left
        ),
        clerks={"PJSIP/cchc-2": ANSWER},
        not_heard=("survey-thanks", "goodbye"),
    ),
]


# --- the same rows on a real Asterisk (tests/test_real_asterisk.py) -------------------------
# A SIPp caller cannot wait for a prompt: its steps are timed from the answer, on the test
# routing of the real suite (the main menu and the survey question are short prompts there, see
# tests/test_real_asterisk.py). Keys are pressed during the greeting (type-ahead); times sit in
# the middle of what they aim at through both ARI (a desk rings during the announcement) and
# FastAGI (the announcement, then Dial). The clerks are SIPp desks that behave as the row's.
# Timeline: greeting 0-5 s; a branch's announcement about 6 s; voicemail-intro 11.5 s then the
# beep; survey question 2.7 s then 5 s to key, twice.
PHONE: dict[str, tuple[Step, ...]] = {
    "press 4, a clerk answers, the clerk hangs up": (Keys(1500, "4"),),
    "ring all: the first phone never answers, the second does": (Keys(1500, "4"),),
    "busy clerk: the caller leaves a message ended by #": (
        Keys(1500, "1"),
        Talk(3000, 30),
        Keys(34000, "#"),
    ),
    # 20 s of ringing, the intro, speech into the recording, then an open silent line
    "no answer: the message ends on silence": (Keys(1500, "6"), Talk(3000, 45), Quiet(48000, 90)),
    "unreachable phone: the caller hangs up while leaving a message, which is kept": (
        Keys(1500, "3"),
        Talk(3000, 25),
        Bye(29000),
    ),
    "in turn: the first operator does not answer, the second does": (Keys(1500, "9"),),
    "every phone of a branch unreachable, caller leaves no message": (
        Keys(1500, "9"),
        Bye(12000),  # during voicemail-intro
    ),
    "at night: office closed, the caller hangs up during the announcement": (Bye(5000),),
    "first day of Tết 2027: the holiday route, a message left": (
        Talk(1000, 20),
        Keys(22000, "#"),
    ),
    "an invalid key then silence: retries, then goodbye": (Keys(1500, "#"),),
    "* repeats the menu without counting as a mistake": (Keys(1500, "*"), Keys(4000, "5")),
    "type-ahead: 4 pressed during the greeting skips the menu prompt": (Keys(1500, "4"),),
    "directory: a commune reached by its code": (Keys(1500, "03002#"),),
    "directory: an unknown code, then a good one": (
        Keys(1500, "0"),
        Keys(3000, "9999"),
        Keys(12000, "1001"),  # after unit-not-found and the code prompt again
    ),
    "directory: the unit's phone is busy, a message for the unit": (
        Keys(1500, "03004#"),
        Talk(6000, 22),
        Keys(30000, "#"),
    ),
    "directory: an old commune's code on its last day reaches it as before": (
        Keys(1500, "03104#"),
    ),
    "directory: an old commune's code after the merger: '… nay là …', then its successor": (
        Keys(1500, "03104#"),
    ),
    "directory: a new commune's code the day before it exists is unknown": (
        Keys(1500, "03002#"),
        Bye(9000),
    ),
    "directory: a district's code after the district level ended, then a commune's": (
        Keys(1500, "02006#"),
        Keys(12000, "3009#"),
    ),
    "directory: nothing keyed, three times": (Keys(1500, "0"),),
    "the caller hangs up during the greeting": (Bye(1000),),
    "the caller hangs up in the menu": (Bye(8000),),
    "the caller hangs up while the phone rings: the dialled leg is dropped, the wait counted": (
        Keys(1500, "2"),
        Bye(15000),
    ),
    "the desk rings while the announcement plays and answers after it": (Keys(1500, "4"),),
    # the second phone rings from about 17 s (ARI) or 23 s (FastAGI)
    "in turn: the caller hangs up while the second phone rings, both waits counted": (
        Keys(1500, "9"),
        Bye(25000),
    ),
    "the caller hangs up during the conversation: the clerk's leg is hung up": (
        Keys(1500, "7"),
        Bye(17000),
    ),
    # a few seconds of an empty recording (FastAGI; ARI's timings are in PHONE_ARI)
    "the caller hangs up at the beep: no message, the call stays 'busy'": (
        Keys(1500, "1"),
        Bye(21500),
    ),
    "the caller says nothing for 4 s, then hangs up: line noise is no message": (
        Keys(1500, "3"),
        Bye(24000),
    ),
    "the caller stays silent until the recording stops on silence: no message, goodbye": (
        Keys(1500, "6"),
        Quiet(2000, 120),
    ),
    "the clerk hangs up and the routing says what follows: the call goes on": (Keys(1500, "4"),),
    "the caller hangs up during the conversation: what follows is not played": (
        Keys(1500, "7"),
        Bye(17000),
    ),
    # the survey runs from about 9 s (ARI) or 15 s (FastAGI) for two rounds of 7.7 s
    "survey: the clerk hangs up, the caller rates the call 4": (Keys(1500, "4"), Keys(18000, "4")),
    # the survey starts at 22-26 s (measured, both adapters): 7 in its first round; the second
    # round follows the 7 by 5.3 s of prompts, so the 1 is timed from the 7
    "survey: a key off the scale, then 1 (in turn, the second desk answered)": (
        Keys(1500, "9"),
        Keys(27000, "7"),
        Keys(34000, "1"),
    ),
    "survey: the caller hangs up during the question, no answer is kept": (
        Keys(1500, "2"),
        Bye(16000),
    ),
}
# Where ARI differs: it learns a desk is busy or gone while the announcement plays and cuts it
# short, so the beep comes at about 13.5 s (FastAGI: about 19.5 s, the announcement played out).
PHONE_ARI: dict[str, tuple[Step, ...]] = {
    "the caller hangs up at the beep: no message, the call stays 'busy'": (
        Keys(1500, "1"),
        Bye(16000),
    ),
    "the caller says nothing for 4 s, then hangs up: line noise is no message": (
        Keys(1500, "3"),
        Bye(17000),
    ),
}
# Rows the real suite does not run, and why.
NOT_ON_REAL = {
    "a recording the PBX cannot write is an error: handed to the operators' fallback": (
        "needs the shared recording folder made unwritable, which would fail every other call"
        " recording at the same time"
    ),
}
