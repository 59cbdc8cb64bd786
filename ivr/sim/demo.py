"""`ivr demo`: the built-in simulator, the real controller, scripted calls, and what happened."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.flow.record import Disposition
from ivr.prompts.build import wav_seconds
from ivr.prompts.manifest import load_manifest, with_units
from ivr.routing.load import load_routing
from ivr.routing.model import Routing
from ivr.session import CallInfo
from ivr.sim.harness import Harness
from ivr.sim.scripts import (
    CallerScript,
    ClerkKind,
    Clerks,
    ClerkScript,
    Hangup,
    Press,
    Speak,
)
from ivr.store.db import make_engine, sqlite_url, upgrade
from ivr.store.queries import CallFilter, get_call, list_calls
from ivr.store.writer import StoreWriter
from models import Call

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class DemoCall:
    title: str
    at: dt.datetime
    script: CallerScript
    expect: Disposition


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


DEMO_CLERKS = Clerks(
    by_endpoint={
        "PJSIP/cchc-4a": ClerkScript(ClerkKind.ANSWER, ring_seconds=3, talk_seconds=8),
        "PJSIP/cchc-4b": ClerkScript(ClerkKind.BUSY, ring_seconds=1),
        "PJSIP/cchc-6": ClerkScript(ClerkKind.NO_ANSWER),
        "PJSIP/dv-3002": ClerkScript(ClerkKind.ANSWER, ring_seconds=4, talk_seconds=6),
    }
)

DEMO_CALLS = [
    DemoCall(
        "Bấm 4 (Cải cách TTHC), cán bộ nghe máy",
        _at("2026-11-25 09:00"),
        CallerScript((Press("4", on="prompt:main-menu", after=2.0),), number="0912345678"),
        Disposition.ANSWERED,
    ),
    DemoCall(
        "Bấm 6 (Tài chính công), không ai nghe, để lại lời nhắn",
        _at("2026-11-25 09:05"),
        CallerScript(
            (Press("6", on="prompt:main-menu", after=1.0), Speak(6.0), Press("#")),
            number="0987654321",
        ),
        Disposition.VOICEMAIL,
    ),
    DemoCall(
        "Gọi lúc 22 giờ, ngoài giờ làm việc, để lại lời nhắn rồi gác máy",
        _at("2026-11-25 22:00"),
        CallerScript((Speak(4.0), Hangup(after=1.0)), number="0355000111"),
        Disposition.VOICEMAIL,
    ),
    DemoCall(
        "Bấm sai phím rồi im lặng",
        _at("2026-11-25 10:00"),
        CallerScript((Press("#", on="prompt:main-menu", after=1.0),), number="0243123456"),
        Disposition.ABANDONED,
    ),
    DemoCall(
        "Bấm 0 rồi mã cũ 3104 (Phường IV, Vị Thanh): nay là UBND phường Vị Tân",
        _at("2026-11-25 14:00"),
        CallerScript(
            (
                Press("0", on="prompt:main-menu", after=1.5),
                Press("3104#", on="prompt:enter-unit-code", after=1.0),
            ),
            number="0905111222",
        ),
        Disposition.ANSWERED,
    ),
    DemoCall(
        "Gọi mùng 1 Tết Đinh Mùi (06/02/2027), gác máy sau lời chào",
        _at("2027-02-06 09:00"),
        CallerScript((Hangup(on="prompt:holiday-closed", after=2.0),), number="0911000999"),
        Disposition.CLOSED,
    ),
]


def load_demo_routing(root: Path) -> Routing:
    routing_file = root / "routing" / "hotline.yaml"
    manifest = load_manifest(root / "prompts" / "manifest.yaml")
    return load_routing(routing_file, manifest.keys())


async def run_demo(
    root: Path, speed: float = 10.0, out: TextIO = sys.stdout, data_dir: Path | None = None
) -> list[Call]:
    """Run the demo calls; print them as read back from the call-record store (SQLite)."""
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as tmp:
        folder = data_dir or Path(tmp)
        url = sqlite_url(folder)
        await asyncio.to_thread(upgrade, url)
        engine = make_engine(url)
        try:
            return await _demo(root, speed, out, engine, folder)
        finally:
            await engine.dispose()


async def _demo(
    root: Path, speed: float, out: TextIO, engine: AsyncEngine, folder: Path
) -> list[Call]:
    routing = load_demo_routing(root)
    seconds = demo_prompt_seconds(root, routing)
    observer = StoreWriter(engine, folder / "spool")
    await observer.start()
    when: dict[str, dt.datetime] = {}

    def clock_for(info: CallInfo) -> Callable[[], dt.datetime]:
        # each scripted caller lives at its own time of day
        at = when.get(info.caller_number, dt.datetime.now(dt.UTC))
        return lambda: at

    async with Harness(
        routing,
        observer,
        speed=speed,
        clerks=DEMO_CLERKS,
        prompt_seconds=seconds,
        clock_for=clock_for,
    ) as h:
        print(
            f"Tổng đài mô phỏng chạy tại {h.sim.base_url} (nhanh gấp {speed:g} lần thực tế)",
            file=out,
        )
        calls = []
        for demo in DEMO_CALLS:
            when[demo.script.number] = demo.at.astimezone(dt.UTC)
            calls.append(h.sim.call(demo.script))
            print(f"  ☎ {demo.script.number}: {demo.title}", file=out)
        await asyncio.gather(*(c.done for c in calls))
        await h.idle()
    await observer.stop()
    return await print_stored(engine, out)


async def print_stored(engine: AsyncEngine, out: TextIO) -> list[Call]:
    """The demo's calls as read back from the store, each checked against what it expects."""
    print(f"\nĐọc lại từ kho ghi cuộc gọi ({engine.url.render_as_string()}):\n", file=out)
    stored = await list_calls(engine, CallFilter(limit=1000))
    by_caller = {c.caller_number: c.id for c in stored}
    ok = True
    full = []
    for demo in DEMO_CALLS:
        call_id = by_caller.get(demo.script.number)
        call = await get_call(engine, call_id) if call_id else None
        ok &= _print_call(demo, call, out)
        if call is not None:
            full.append(call)
    print(file=out)
    print(
        "Tất cả cuộc gọi cho kết quả như mong đợi." if ok else "CÓ CUỘC GỌI SAI KẾT QUẢ.", file=out
    )
    return full


def _print_call(demo: DemoCall, rec: Call | None, out: TextIO) -> bool:
    print(f"● {demo.title}", file=out)
    if rec is None:
        print("    (không có bản ghi cuộc gọi)", file=out)
        return False
    good = rec.disposition == demo.expect.value
    mark = "✓" if good else f"✗ (mong đợi {demo.expect.value})"
    print(
        f"    kết quả: {rec.disposition} {mark}   (cuộc gọi {rec.id}, {len(rec.steps)} bước)",
        file=out,
    )
    print(f"    đường đi: {rec.path.replace('>', ' → ')}   phím: {rec.digits or '—'}", file=out)
    for step in rec.steps:
        if step.outcome in {"replaced", "ended"}:  # an old code: what it was, what it is now
            print(f"    mã {step.input}: {step.detail}", file=out)
    who = []
    if rec.branch:
        who.append(f"nhánh {rec.branch}")
    if rec.unit:
        who.append(f"đơn vị {rec.unit}")
    if rec.endpoint:
        who.append(f"máy {rec.endpoint}")
    if who:
        print(
            f"    {', '.join(who)}; chờ {rec.wait_seconds:.0f} s, đàm thoại {rec.talk_seconds:.0f} s",
            file=out,
        )
    if rec.voicemail:
        vm = rec.voicemail
        print(
            f"    lời nhắn #{vm.id}: {vm.name}.wav, {vm.duration_seconds:g} s, {vm.size_bytes} byte,"
            f" {vm.status}",
            file=out,
        )
    print(f"    định tuyến phiên bản {rec.routing_version}", file=out)
    return good


def demo_prompt_seconds(root: Path, routing: Routing) -> Callable[[str], float]:
    """How long each prompt plays in the simulator: as long as the built audio Asterisk plays."""
    manifest = with_units(load_manifest(root / "prompts" / "manifest.yaml"), routing)
    return _prompt_seconds(
        {p.id: p.text for p in manifest.values()}, root / "prompts" / "sounds" / "vi" / "hotline"
    )


def _prompt_seconds(texts: dict[str, str], built: Path) -> Callable[[str], float]:
    """How long each prompt plays: the built audio's length, else ≈ 14 characters a second."""
    lengths = {p.stem: wav_seconds(p) for p in built.glob("*.wav")} if built.is_dir() else {}

    def seconds(media: str) -> float:
        prompt = media.rsplit("/", 1)[-1]
        if prompt in lengths:
            return lengths[prompt]
        text = texts.get(prompt)
        return max(1.0, len(text) / 14) if text else 2.0

    return seconds
