"""Load on a real Asterisk: the project (`ivr run`) side by side with a pure-dialplan menu that
plays the same prompts, on the same Asterisk (`scripts/asterisk up`, Debian's Asterisk 22).

    .venv/bin/python -m benchmarks.real_load --rate 2 --seconds 10 [--json]

SIPp callers arrive at ``--rate`` calls/s for ``--seconds``; each is answered, hears the greeting,
presses 4 during the menu (RFC 4733, or SIP INFO with --info) and hangs up a few seconds after
the desk would have answered. Branch 4's two desks are SIPp phones: one answers after
``--ring-ms``, the other rings until Asterisk cancels it (ring-all). Printed, for each side:
calls attempted, completed at the caller and at the answering desk, callers stranded (left
unanswered or in Stasis after SIPp finished), Asterisk's and the controller's CPU ms per call
(/proc utime+stime), key → desk INVITE p50/p99 from a loopback capture, and the bridges and
channels left over. Every load is bounded in calls and time; it runs on loopback only and ends
every process it started. Figures on a shared machine are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.capture import Capture, key_to_invite, percentile, read_pcap
from benchmarks.controller import MANIFEST, ROUTING, Controller, MinimalAppProcess, Served
from benchmarks.pbx import IVR_SERVICE, MENU_SERVICE, Pbx
from benchmarks.sipp_load import SippProcess, answering_desk_xml, caller_xml, ringing_desk_xml
from ivr.asterisk.pjsip import phones
from ivr.config import EVENT_LOOPS, Settings
from ivr.prompts.manifest import load_manifest
from ivr.routing.load import load_routing

KEY_SLACK_MS = 1500  # the key goes this long into the menu prompt
TALK_SLACK_MS = 3000  # the caller stays this long past the moment the desk should answer
SETTLE_S = 20.0  # after the callers: how long channels and bridges may take to go
DEFAULT_LOOP = Settings().event_loop  # ivr run's, as shipped (the benchmarks' --event-loop)
MEDIA_PORTS = {"callers": 17000, "desk-4a": 17100, "desk-4b": 17200}
DESKS = ("cchc-4a", "cchc-4b")  # branch 4: the first answers, the second only rings


@dataclass(frozen=True)
class Options:
    rate: float
    seconds: float
    rfc4733: bool
    ami: bool
    ring_ms: int
    talk_ms: int
    json: bool = False
    profile: Path | None = None  # py-spy's collapsed stacks of ivr run here; the minimal app's
    # (--floor) in this name with ".floor" added
    ivr_only: bool = False  # skip the dialplan step (while profiling the controller)
    max_calls: int | None = None  # ivr run's max_calls (None: as shipped, 400)
    runs: int = 1  # steps per side, alternating; figures combined by combine()
    floor: bool = False  # also benchmarks.floor's minimal app, on the same calls
    event_loop: str = DEFAULT_LOOP  # ivr run's event_loop setting, and the minimal app's loop

    @property
    def calls(self) -> int:
        return max(1, round(self.rate * self.seconds))


@dataclass(frozen=True)
class Plan:
    """The caller's timing, from the installed prompts."""

    key_at_ms: int
    bye_at_ms: int

    @classmethod
    def of(cls, pbx: Pbx, opts: Options) -> Plan:
        key_at = pbx.prompt_ms("greeting") + KEY_SLACK_MS
        confirmation = pbx.prompt_ms("please-hold") + pbx.prompt_ms("branch-4")
        bye_at = key_at + confirmation + opts.ring_ms + opts.talk_ms + TALK_SLACK_MS
        return cls(key_at, bye_at)


def desk_ports(pbx: Pbx) -> dict[str, int]:
    """The SIPp port of each desk (`--static-contacts`: the phones in order from the first)."""
    routing = load_routing(ROUTING, list(load_manifest(MANIFEST)))
    first = int(pbx.env["IVR_TEST_PHONE_PORT"])
    return {p.name: first + i for i, p in enumerate(phones(routing)) if p.name in DESKS}


def _ours(channel: dict[str, Any], prefix: str) -> bool:
    numbers = (
        channel.get("caller", {}).get("number", ""),
        channel.get("connected", {}).get("number", ""),
    )
    return any(n.startswith(prefix) for n in numbers) or any(
        channel.get("name", "").startswith(f"PJSIP/{d}-") for d in DESKS
    )


def _stranded(channel: dict[str, Any], prefix: str) -> bool:
    """A caller's channel left unanswered or in Stasis."""
    caller = channel.get("caller", {}).get("number", "").startswith(prefix)
    desk = any(channel.get("name", "").startswith(f"PJSIP/{d}-") for d in DESKS)
    in_stasis = channel.get("dialplan", {}).get("app_name", "") == "Stasis"
    return caller and not desk and (channel.get("state") != "Up" or in_stasis)


def _udp_bound(port: int) -> bool:
    wanted = f"{port:04X}"
    with open("/proc/net/udp") as f:
        next(f)  # the heading
        return any(line.split()[1].rpartition(":")[2] == wanted for line in f)


def _wait_udp(port: int, bound: bool, timeout: float) -> None:
    """Until something listens on UDP ``port`` (``bound``) or nothing does."""
    deadline = time.monotonic() + timeout
    while _udp_bound(port) != bound:
        if time.monotonic() > deadline:
            state = "nothing listens on" if bound else "another process (a test?) holds"
            raise RuntimeError(f"{state} UDP port {port}")
        time.sleep(0.05)


def _free_udp_port() -> int:
    """A port for the callers (Asterisk knows them by address, any port will do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_step(
    pbx: Pbx,
    opts: Options,
    name: str,
    service: str,
    prefix: str,
    folder: Path,
    controller: Served | None,
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    plan = Plan.of(pbx, opts)
    ports = desk_ports(pbx)
    ari_port = pbx.ari_port if controller is not None else None  # a dialplan menu makes no ARI
    capture = Capture(folder / "sip.pcap", pbx.sip_port, ari_port)
    procs: list[SippProcess] = []
    try:
        channels_before = {c["id"] for c in pbx.channels()}
        bridges_before = {b["id"] for b in pbx.bridges()}
        desk_a, desk_b = (f"desk-{d.removeprefix('cchc-')}" for d in DESKS)
        desk_args = ["-recv_timeout", "60s"]
        for port in ports.values():  # a real-Asterisk test may be using branch 4's desks
            _wait_udp(port, bound=False, timeout=60)
        procs.append(
            SippProcess(
                folder,
                desk_a,
                answering_desk_xml(opts.ring_ms),
                ["-p", str(ports[DESKS[0]]), *desk_args],
                MEDIA_PORTS[desk_a],
            )
        )
        procs.append(
            SippProcess(
                folder,
                desk_b,
                ringing_desk_xml(),
                ["-p", str(ports[DESKS[1]]), *desk_args],
                MEDIA_PORTS[desk_b],
            )
        )
        for port in ports.values():
            _wait_udp(port, bound=True, timeout=10)
        limit_s = opts.seconds + plan.bye_at_ms / 1000 + 30  # every call placed and ended
        ast_cpu0 = pbx.cpu_ms()
        ctl_cpu0 = controller.cpu_ms() if controller else 0.0
        spy = None
        if controller is not None and opts.profile is not None:  # the minimal app's beside it
            where = (
                opts.profile
                if name == "ivr"
                else opts.profile.with_name(f"{opts.profile.name}.{name}")
            )
            spy = _spy(controller.pid, where)
        callers = SippProcess(
            folder,
            "callers",
            caller_xml(prefix, plan.key_at_ms, plan.bye_at_ms, folder, opts.rfc4733),
            [
                pbx.sip,
                "-s",
                service,
                "-p",
                str(_free_udp_port()),
                "-r",
                f"{opts.rate:g}",
                "-m",
                str(opts.calls),
                "-l",
                str(opts.calls),
                "-recv_timeout",
                "30s",
                "-timeout",
                f"{int(limit_s)}s",
            ],
            MEDIA_PORTS["callers"],
        )
        procs.append(callers)
        if not callers.wait(limit_s + 15):
            callers.stop(grace=5)
        if spy is not None:
            _stop_spy(spy)
        settled = _settle(pbx, prefix, bridges_before)
        if not pbx.alive():
            raise RuntimeError(
                "Asterisk stopped during the step (someone ran scripts/asterisk down)"
            )
        ast_cpu = pbx.cpu_ms() - ast_cpu0
        ctl_cpu = controller.cpu_ms() - ctl_cpu0 if controller else None
        left = [c for c in pbx.channels() if c["id"] not in channels_before and _ours(c, prefix)]
        bridges = [b for b in pbx.bridges() if b["id"] not in bridges_before]
        for proc in procs:
            proc.stop()
    finally:
        for proc in procs:
            proc.stop(grace=2)
        capture.stop()
    counts = callers.counts()
    desk_counts = procs[0].counts()
    measured = key_to_invite(
        read_pcap(capture.path), prefix, pbx.sip_port, set(ports.values()), ari_port
    )
    latencies = measured.latencies_ms()
    parts = measured.parts_ms() if ari_port is not None else None
    attempted = counts.created
    return {
        "attempted": attempted,
        "completed_caller": counts.successful,
        "completed_desk": desk_counts.successful,
        "stranded": sum(1 for c in left if _stranded(c, prefix)),
        "asterisk_cpu_ms_per_call": _per_call(ast_cpu, attempted),
        "controller_cpu_ms_per_call": _per_call(ctl_cpu, attempted),
        "key_to_invite_ms": {
            "p50": _round(percentile(latencies, 50)),
            "p99": _round(percentile(latencies, 99)),
        },
        # where that time went (ivr only): Asterisk's part, the controller's, Asterisk's again
        "key_to_invite_parts_ms": None
        if parts is None
        else {
            name: {"p50": _round(percentile(v, 50)), "p99": _round(percentile(v, 99))}
            for name, v in parts.items()
        },
        "leaked_bridges": len(bridges),
        "leaked_channels": len(left),
        "_notes": {"settled": settled, "measured_invites": len(latencies), "folder": str(folder)},
    }


def _spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (it does not pause the process: the CPU measured stays ours)."""
    spy = Path(sys.executable).parent / "py-spy"
    args = [str(spy), "record", "--pid", str(pid), "--nonblocking", "--format", "raw"]
    args += ["--rate", "250", "--output", str(output)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def _settle(pbx: Pbx, prefix: str, bridges_before: set[str]) -> bool:
    """Waits until our channels and new bridges are gone (True), or SETTLE_S passed."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        channels = [c for c in pbx.channels() if _ours(c, prefix)]
        bridges = [b for b in pbx.bridges() if b["id"] not in bridges_before]
        if not channels and not bridges:
            return True
        time.sleep(0.5)
    return False


def _per_call(ms: float | None, calls: int) -> float | None:
    return None if ms is None or calls == 0 else round(ms / calls, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# --- the report --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": model or platform.processor() or "?",
        "python": platform.python_version(),
    }


ROWS = [  # (label, key, sub-key)
    ("calls attempted", "attempted", ""),
    ("completed at the caller", "completed_caller", ""),
    ("completed at the desk", "completed_desk", ""),
    ("callers stranded", "stranded", ""),
    ("Asterisk CPU ms/call", "asterisk_cpu_ms_per_call", ""),
    ("controller CPU ms/call", "controller_cpu_ms_per_call", ""),
    ("key → desk INVITE p50 ms", "key_to_invite_ms", "p50"),
    ("key → desk INVITE p99 ms", "key_to_invite_ms", "p99"),
    ("· Asterisk: key → event p50/99", "key_to_invite_parts_ms", "key_to_event"),
    ("· ivr: event → originate", "key_to_invite_parts_ms", "event_to_originate"),
    ("· Asterisk: originate → INVITE", "key_to_invite_parts_ms", "originate_to_invite"),
    ("leaked bridges", "leaked_bridges", ""),
    ("leaked channels", "leaked_channels", ""),
]


def table(results: dict[str, dict[str, Any]]) -> str:
    def cell(side: str, key: str, sub: str) -> str:
        value = results.get(side, {}).get(key)
        if sub and isinstance(value, dict):
            value = value.get(sub)
        if isinstance(value, dict):  # a part of the key → INVITE time: p50 / p99
            value = f"{cell_of(value.get('p50'))} / {cell_of(value.get('p99'))}"
        return cell_of(value)

    def cell_of(v: object) -> str:
        return "—" if v is None else str(v)

    sides = {"dialplan": "dialplan menu", "ivr": "ivr"}
    if "floor" in results:
        sides["floor"] = "minimal app"
    lines = [
        f"| {'':31} |" + "".join(f" {name:>14} |" for name in sides.values()),
        f"|{'-' * 33}|" + f"{'-' * 16}|" * len(sides),
    ]
    for label, key, sub in ROWS:
        lines.append(f"| {label:31} |" + "".join(f" {cell(s, key, sub):>14} |" for s in sides))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.real_load",
        description="SIPp load on the real Asterisk: ivr vs a pure-dialplan menu",
    )
    p.add_argument("--rate", type=float, required=True, help="calls per second (> 0, ≤ 50)")
    p.add_argument("--seconds", type=float, required=True, help="seconds of arrivals (> 0, ≤ 300)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--info", action="store_true", help="keys as SIP INFO, not RFC 4733")
    p.add_argument("--no-ami", action="store_true", help="ivr run without AMI")
    p.add_argument("--ring-ms", type=int, default=1000, help="the answering desk rings this long")
    p.add_argument("--talk-ms", type=int, default=2000, help="talk before the caller hangs up")
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy's collapsed stacks of ivr run, to FILE (with --floor, the minimal app's to "
        "FILE.floor)",
    )
    p.add_argument("--ivr-only", action="store_true", help="skip the dialplan menu's step")
    p.add_argument(
        "--floor",
        action="store_true",
        help="also benchmarks.floor's minimal app (the same call, none of the product): "
        "what this traffic costs at the least, beside ivr's CPU",
    )
    p.add_argument(
        "--max-calls",
        type=int,
        help="ivr run's max_calls: past this many calls in progress it sheds (default: as "
        "shipped, 400; 0: no limit)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="steps per side, the sides alternating; printed: the median of the CPU and "
        "latency figures, the worst of the completed, stranded and leaked counts (default 1)",
    )
    p.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=DEFAULT_LOOP,
        help=f"the loop ivr run and the minimal app run on (default: as shipped, {DEFAULT_LOOP})",
    )
    a = p.parse_args(argv)
    if not 1 <= a.runs <= 9:
        p.error("--runs must be 1 to 9")
    if not 0 < a.rate <= 50 or not 0 < a.seconds <= 300:
        p.error("--rate must be in (0, 50] and --seconds in (0, 300]")
    if a.max_calls is not None and a.max_calls < 0:
        p.error("--max-calls must be 0 (no limit) or more")
    return Options(
        a.rate,
        a.seconds,
        not a.info,
        not a.no_ami,
        a.ring_ms,
        a.talk_ms,
        a.json,
        a.profile.resolve() if a.profile else None,
        a.ivr_only,
        a.max_calls,
        a.runs,
        a.floor,
        a.event_loop,
    )


def run(opts: Options, folder: Path) -> tuple[dict[str, dict[str, Any]], str]:
    pbx = Pbx.up()
    try:
        pbx.install_menu()
        try:
            version = pbx.version()
            steps: dict[str, list[dict[str, Any]]] = {"dialplan": [], "ivr": [], "floor": []}
            for i in range(opts.runs):  # alternating, so the machine's drift touches both
                where = "" if opts.runs == 1 else f"-{i + 1}"
                if not opts.ivr_only:
                    steps["dialplan"].append(
                        run_step(
                            pbx,
                            opts,
                            "dialplan",
                            MENU_SERVICE,
                            "09901",
                            folder / f"dialplan{where}",
                            None,
                        )
                    )
                controller = Controller(
                    pbx, folder / f"ivr-run{where}", opts.ami, opts.max_calls, opts.event_loop
                )
                try:
                    steps["ivr"].append(
                        run_step(
                            pbx,
                            opts,
                            "ivr",
                            IVR_SERVICE,
                            "09902",
                            folder / f"ivr{where}",
                            controller,
                        )
                    )
                finally:
                    controller.stop()
                if opts.floor:
                    minimal = MinimalAppProcess(
                        pbx, folder / f"minimal-app{where}", opts.event_loop
                    )
                    try:
                        steps["floor"].append(
                            run_step(
                                pbx,
                                opts,
                                "floor",
                                IVR_SERVICE,
                                "09903",
                                folder / f"floor{where}",
                                minimal,
                            )
                        )
                    finally:
                        minimal.stop()
        finally:
            pbx.remove_menu()
    finally:
        pbx.down()
    return {side: combine(found) for side, found in steps.items() if found}, version


WORST_LOW = ("completed_caller", "completed_desk")  # the fewest completed
WORST_HIGH = ("stranded", "leaked_bridges", "leaked_channels")  # the most failed


def combine(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's steps as one: the worst of the completed, stranded and leaked counts (a
    failure in one run is never averaged away), the median of every other figure (CPU,
    latencies, each part of them); a figure missing from any run is missing."""
    if len(steps) == 1:
        return steps[0]
    out: dict[str, Any] = {}
    for key, first in steps[0].items():
        values = [s[key] for s in steps]
        if key == "_notes":  # the fewest invites matched; settled only if every run was
            out[key] = {
                "settled": all(v["settled"] for v in values),
                "measured_invites": min(v["measured_invites"] for v in values),
                "runs": values,
            }
        elif key in WORST_LOW:
            out[key] = min(values)
        elif key in WORST_HIGH:
            out[key] = max(values)
        elif isinstance(first, dict) or any(v is None for v in values):
            out[key] = None if any(v is None for v in values) else combine_nested(values)
        else:
            out[key] = _median(values)
    return out


def combine_nested(values: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, first in values[0].items():
        inner = [v[key] for v in values]
        if isinstance(first, dict):
            out[key] = combine_nested(inner)
        else:
            out[key] = None if any(x is None for x in inner) else _median(inner)
    return out


def _median(values: list[Any]) -> Any:
    median = statistics.median(values)
    if (
        isinstance(median, float)
        and median.is_integer()
        and all(isinstance(v, int) for v in values)
    ):
        return int(median)  # counts stay counts: the median of 600 and 600 is 600, not 600.0
    return round(median, 2) if isinstance(median, float) else median


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("real_load needs root (scripts/asterisk, tcpdump)", file=sys.stderr)
        return 2
    keep = os.environ.get("IVR_BENCH_KEEP")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ivr-real-load-"))
    try:
        results, version = run(opts, folder)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    notes = {k: v.pop("_notes") for k, v in results.items()}
    m = machine()
    header = (
        f"{m['cores']} cores, {m['cpu']}; Python {m['python']}; Asterisk {version}; "
        f"{opts.calls} calls at {opts.rate:g}/s for {opts.seconds:g} s, keys as "
        f"{'RFC 4733' if opts.rfc4733 else 'SIP INFO'}, AMI {'on' if opts.ami else 'off'}, "
        f"event loop {opts.event_loop}"
        + ("" if opts.max_calls is None else f", ivr max_calls {opts.max_calls}")
        + (
            ""
            if opts.runs == 1
            else f"; {opts.runs} runs a side: medians, the worst of the completed, stranded and "
            "leaked counts"
        )
    )
    if opts.json:
        print(header, notes, file=sys.stderr)
        print(json.dumps(results))
    else:
        print(header)
        print(table(results))
        print(
            "(invites matched to a key: "
            + ", ".join(f"{k} {n['measured_invites']}" for k, n in notes.items())
            + "; settled: "
            + ", ".join(f"{k} {n['settled']}" for k, n in notes.items())
            + ")"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
