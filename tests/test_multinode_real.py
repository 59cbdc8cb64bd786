"""Two real Asterisk nodes sharing one PostgreSQL (issue 16, deliverable 2): the suite's shared
Asterisk and a second, independent one (scripts/asterisk with its own cache, state and ports, as
benchmarks/pbx.py runs it) given another entity id; an `ivr run` controller on each, both writing
to one throwaway database. SIPp callers on both nodes, and one channel originated on each with
the SAME channel id: every row says which node carried it, the same channel id gives two rows,
and `ivr report` and the wallboard's figures count the calls of both nodes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.sim.sipp import copy_tests_root, own_asterisk
from ivr.store.db import make_engine, upgrade
from ivr.testing.pg import PgServer
from ivr.web.data.wallboard import VN, today
from models import Call

from .conftest import ROOT, RealAsterisk
from .sipp import Bye, Sipp
from .test_real_leaks import free_media_ports

pytestmark = [
    pytest.mark.real_asterisk,
    pytest.mark.skipif(not Sipp.available(), reason="SIPp is missing: apt-get install sip-tester"),
]

SECOND_ENTITY = "02:16:00:00:00:02"  # the shared node keeps the one Asterisk derives itself
# scripts/asterisk's settings for the second node: nothing shared with the first, nor with the
# soak benchmark's Asterisk (offset 2), so both can run at once
SECOND = own_asterisk("multinode", 3)
SAME_ID = "multinode-same-1"  # the channel id both nodes are made to use
CALLS_PER_NODE = 2


def _second(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "asterisk"), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, **SECOND},
    )


def _cli(root: Path, command: str) -> str:
    return subprocess.run(
        ["chroot", str(root), "/usr/sbin/asterisk", "-rx", command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout


def _entity(root: Path) -> str:
    for line in _cli(root, "core show settings").splitlines():
        if "Entity ID:" in line:
            return line.split(":", 1)[1].strip()
    return ""


def _give_entity_id(root: Path) -> None:
    """asterisk.conf is read at start only: set entityid there, then `core restart now` (the same
    process execs itself again, so scripts/asterisk's pid still holds)."""
    if _entity(root) == SECOND_ENTITY:
        return
    conf = root / "etc" / "asterisk" / "asterisk.conf"
    text = conf.read_text()
    conf.write_text(text.replace("[options]\n", f"[options]\nentityid = {SECOND_ENTITY}\n", 1))
    _cli(root, "core restart now")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (
            _entity(root) == SECOND_ENTITY
            and "transport-udp" in _cli(root, "pjsip show transports")
            and "fully booted" in _cli(root, "core waitfullybooted")
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"the second Asterisk did not come back with entity id {SECOND_ENTITY}")


@pytest.fixture
def second_node(real_asterisk: RealAsterisk) -> Iterator[tuple[RealAsterisk, Path]]:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("the second Asterisk is started by scripts/asterisk (as root)")
    root = copy_tests_root(SECOND)
    up = _second("up")
    assert up.returncode == 0, up.stderr[-600:]
    try:
        _give_entity_id(root)
        env = _second("env").stdout
        settings = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
        yield RealAsterisk.from_env(settings), root
    finally:
        down = _second("down")
        assert down.returncode == 0, down.stderr[-600:]
    assert _second("status").returncode != 0  # this test held the second node alone: it is gone


@pytest.fixture
async def pg_url(pg_server: PgServer | None) -> str:
    if pg_server is None:
        pytest.skip("PostgreSQL is not installed (several nodes share a PostgreSQL store)")
    url = await pg_server.create_database(f"ivr_multinode_{os.getpid()}_{time.monotonic_ns()}")
    await asyncio.to_thread(upgrade, url)
    return url


def _ari(pbx: RealAsterisk, method: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    auth = base64.b64encode(f"{pbx.ari_user}:{pbx.ari_password}".encode()).decode()
    request = urllib.request.Request(
        pbx.ari_url + path + query, method=method, headers={"Authorization": f"Basic {auth}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


async def _until(what: str, check: Any, timeout: float = 60.0) -> Any:
    """Polls ``check`` (a coroutine function) until it gives something true."""
    async with asyncio.timeout(timeout):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.2)
    raise AssertionError(what)  # pragma: no cover (the timeout raises first)


async def _controller(
    pbx: RealAsterisk, url: str, name: str, folder: Path
) -> asyncio.subprocess.Process:
    """`ivr run` for one node, as an admin starts it; returns once its ARI app is registered."""
    cfg = folder / f"{name}.toml"
    cfg.write_text(
        f'ari_url = "{pbx.ari_url}"\nari_user = "{pbx.ari_user}"\n'
        f'ari_password = "{pbx.ari_password}"\nari_app = "{pbx.ari_app}"\n'
        f'routing = "{ROOT / "routing" / "hotline.yaml"}"\n'
        f'prompts = "{ROOT / "prompts" / "manifest.yaml"}"\n'
        f'database_url = "{url}"\ndata_dir = "{folder / name}"\n'
        f'recordings_dir = "{pbx.recordings_dir}"\n'
        'metrics_address = ""\ncel_file = "none"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    log = (folder / f"{name}.log").open("wb")
    # Each node's controller on a host of its own, as in production: a single (non-cluster)
    # controller's lease is "<host name>:ari", so two on one host would refuse each other.
    proc = await asyncio.create_subprocess_exec(
        "unshare",
        "--uts",
        "sh",
        "-c",
        'hostname "$0" && exec "$@"',
        f"{name}-host",
        sys.executable,
        "-c",
        "import sys; from ivr.cli import main; sys.exit(main())",
        "run",
        "--config",
        str(cfg),
        "--log-json",
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()  # the child holds its own copy

    async def registered() -> bool:
        assert proc.returncode is None, (folder / f"{name}.log").read_text()[-2000:]
        apps = await asyncio.to_thread(_ari, pbx, "GET", "/applications")
        return any(a["name"] == pbx.ari_app for a in apps)

    try:
        await _until(f"{name} did not register its ARI app", registered)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return proc


async def _rows(url: str) -> list[Call]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(Call))).all())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def _report(url: str, folder: Path) -> dict[str, Any]:
    day = dt.datetime.now(VN).date().isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    done = subprocess.run(
        [
            *(str(ROOT / ".venv" / "bin" / "ivr"), "report", "--db", url),
            *("--from", day, "--to", day, "--format", "json"),
            *("--routing", str(ROOT / "routing" / "hotline.yaml")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=folder,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_two_nodes_share_one_store_and_reports_merge_them(
    real_asterisk: RealAsterisk,
    second_node: tuple[RealAsterisk, Path],
    pg_url: str,
    tmp_path: Path,
) -> None:
    nodes = {"a": real_asterisk, "b": second_node[0]}
    ids = {}
    for name, pbx in nodes.items():
        info = await asyncio.to_thread(_ari, pbx, "GET", "/asterisk/info")
        ids[name] = info["system"]["entity_id"]
    assert ids["b"] == SECOND_ENTITY
    assert ids["a"] != ids["b"]

    controllers: dict[str, asyncio.subprocess.Process] = {}
    sipps = {
        name: Sipp(tmp_path / name, pbx.sip, media_port=free_media_ports(17800 + 2000 * i))
        for i, (name, pbx) in enumerate(nodes.items())
    }
    numbers = {
        name: [f"09121600{i}{n}" for n in range(CALLS_PER_NODE)] for i, name in enumerate(nodes)
    }
    try:
        for name, pbx in nodes.items():
            (tmp_path / name).mkdir()
            controllers[name] = await _controller(pbx, pg_url, f"ctl-{name}", tmp_path)
        for n in range(CALLS_PER_NODE):  # one caller on each node at once; the next after
            procs = [
                await sipps[name].caller(
                    [Bye(3000)], numbers[name][n], pbx.caller_port, pbx.service
                )
                for name, pbx in nodes.items()
            ]
            for proc in procs:
                assert await asyncio.wait_for(proc.wait(), 60) == 0
        # the same channel id on both nodes: a Local channel, its ;2 half into the dialplan
        for pbx in nodes.values():
            await asyncio.to_thread(
                _ari,
                pbx,
                "POST",
                "/channels",
                endpoint=f"Local/{pbx.service}@hotline-inbound",
                app=pbx.ari_app,
                channelId=SAME_ID,
                otherChannelId=f"{SAME_ID}-2",
                callerId="0912169999",
            )

        async def both_same() -> bool:
            rows = await _rows(pg_url)
            return sum(r.channel_id == f"{SAME_ID}-2" for r in rows) == 2

        await _until("the same channel id did not reach the store from both nodes", both_same)
        for pbx in nodes.values():
            await asyncio.to_thread(_ari, pbx, "DELETE", f"/channels/{SAME_ID}")

        async def all_done() -> list[Call]:
            rows = await _rows(pg_url)
            finished = [r for r in rows if r.disposition != "in_progress"]
            return rows if rows and len(finished) == len(rows) else []

        rows = await _until("calls still in progress in the store", all_done)
        board = await _board(pg_url)
    finally:
        for sipp in sipps.values():
            await sipp.close()
        for proc in controllers.values():
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 60)

    # every row says which node carried it; keys are <node>/<channel>, so none collide
    by_node: dict[str, list[Call]] = {}
    for r in rows:
        by_node.setdefault(r.node, []).append(r)
        assert r.id == f"{r.node}/{r.channel_id}"
    assert set(by_node) == {ids["a"], ids["b"]}
    for name in nodes:
        callers = {r.caller_number for r in by_node[ids[name]]}
        assert set(numbers[name]) <= callers  # each node's SIPp calls under that node
        other = "b" if name == "a" else "a"
        assert not set(numbers[other]) & callers
    same = sorted(r.id for r in rows if r.channel_id == f"{SAME_ID}-2")
    assert same == sorted(f"{ids[n]}/{SAME_ID}-2" for n in nodes)  # one channel id, two rows

    report = _report(pg_url, tmp_path)
    assert _total(report) == len(rows) == sum(len(v) for v in by_node.values())
    assert board["received"] == len(rows)
    print(f"nodes {ids}: rows {{{', '.join(f'{k}: {len(v)}' for k, v in by_node.items())}}}")


async def _board(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        return await today(engine, dt.datetime.now(dt.UTC))
    finally:
        await engine.dispose()


def _total(report: dict[str, Any]) -> int:
    received: int = report["total"]["received"]
    assert sum(report["per_day"].values()) == received
    return received
