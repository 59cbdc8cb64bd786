from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest
import structlog

from ivr.config import ConfigError, Settings, load_settings
from ivr.flow.engine import run_call
from ivr.flow.record import MemoryObserver
from ivr.routing.live import LiveRouting
from ivr.session import CallInfo
from ivr.sim.dry_run import FakeSession

from .conftest import MANIFEST_FILE, ROUTING_FILE


def test_environment_overrides_the_file_and_the_password_is_never_shown(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('ari_url = "http://127.0.0.1:8088/ari"\nari_password = "from-file"\n')
    s = load_settings(cfg, {"IVR_ARI_PASSWORD": "s3cret", "IVR_ARI_APP": "cchc"})
    assert s.ari_password == "s3cret"
    assert s.ari_app == "cchc"
    assert "s3cret" not in repr(s)
    assert s.redacted()["ari_password"] == "***"


def test_bad_toml_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("ari_url = \n")
    with pytest.raises(ConfigError, match="cấu hình TOML sai"):
        load_settings(cfg, {})
    with pytest.raises(ConfigError, match="không đọc được"):
        load_settings(tmp_path / "missing.toml", {})
    cfg.write_text('log_json = "yes"\nari_password = "x"\n')
    with pytest.raises(ConfigError, match="'log_json' phải là true/false"):
        load_settings(cfg, {})
    assert isinstance(Settings(), Settings)


def _prompts() -> list[str]:
    from ivr.prompts.manifest import load_manifest

    return list(load_manifest(MANIFEST_FILE))


async def test_bad_file_keeps_the_running_routing_and_calls_keep_their_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live_file = tmp_path / "hotline.yaml"
    live_file.write_text(ROUTING_FILE.read_text())
    live = LiveRouting(live_file, _prompts)
    first = live.current

    # a call begins on the first version...
    at = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
    session = FakeSession(CallInfo("c1", "0912"), inputs=["4"])
    routing_at_start = live()

    # ...a broken file is refused, the old one stays
    live_file.write_text(ROUTING_FILE.read_text().replace("next: main-menu", "next: nowhere"))
    with structlog.testing.capture_logs() as logs:
        assert live.reload() is False
    assert live.current is first
    assert any("nowhere" in e.get("problem", "") for e in logs)

    # a good change is taken up
    live_file.write_text(ROUTING_FILE.read_text().replace("ring_seconds: 20", "ring_seconds: 25"))
    assert live.reload() is True
    assert live.current.version != first.version

    record = await run_call(session, routing_at_start, MemoryObserver(), clock=lambda: at)
    assert record.routing_version == first.version
    assert logging.getLogger() is not None


async def test_the_watcher_reloads_a_changed_file(tmp_path: Path) -> None:
    live_file = tmp_path / "hotline.yaml"
    live_file.write_text(ROUTING_FILE.read_text())
    live = LiveRouting(live_file, _prompts)
    first = live.current.version
    watcher = asyncio.create_task(live.watch(interval=0.01))
    live_file.write_text(ROUTING_FILE.read_text() + "\n# đổi\n")
    await asyncio.wait_for(live.reloaded.wait(), 10)
    watcher.cancel()
    assert live.current.version != first


def test_the_example_settings_file_loads() -> None:
    from .conftest import ROOT

    s = load_settings(ROOT / "ivr.toml.example", {})
    assert s.ari_app == "hotline"
    assert s.ami_address == ""


def test_a_malformed_ami_address_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('ami_address = "asterisk:ami"\n')
    with pytest.raises(ConfigError, match="cần dạng HOST:CỔNG"):
        load_settings(cfg, {}, require_ari=False)
    cfg.write_text('ami_address = "127.0.0.2:5038"\n')
    assert load_settings(cfg, {}, require_ari=False).ami_endpoint == ("127.0.0.2", 5038)


class _Watched:
    """A routing file under a running watcher, with a manifest that can be broken."""

    def __init__(self, tmp_path: Path) -> None:
        self.file = tmp_path / "hotline.yaml"
        self.file.write_text(ROUTING_FILE.read_text())
        self.manifest = tmp_path / "manifest.yaml"
        self.manifest.write_text(MANIFEST_FILE.read_text())
        self.live = LiveRouting(self.file, self._prompts)
        self.first = self.live.current

    def _prompts(self) -> list[str]:
        from ivr.prompts.manifest import load_manifest

        return list(load_manifest(self.manifest))

    def write(self, text: str) -> None:
        self.file.write_text(text)

    async def rejected(self) -> None:
        await asyncio.wait_for(self.live.rejected.wait(), 10)
        self.live.rejected.clear()

    async def reloaded(self) -> None:
        await asyncio.wait_for(self.live.reloaded.wait(), 10)
        self.live.reloaded.clear()


@pytest.mark.parametrize(
    "bad",
    [
        b"hotline:\x00 x\n",  # NUL: the YAML reader's own error
        b"\xff\xfe garbage",
        b"a: &a [1]\nb: [*a, *a]\n",
        b"hotline: " + b"[" * 3000 + b"]" * 3000 + b"\n",
        b"%YAML 1.1\n---\nhotline: {}\n",
    ],
)
async def test_the_watcher_survives_a_hostile_file_and_takes_the_next_good_one(
    tmp_path: Path, bad: bytes
) -> None:
    w = _Watched(tmp_path)
    watcher = asyncio.create_task(w.live.watch(interval=0.01))
    w.file.write_bytes(bad)
    with structlog.testing.capture_logs() as logs:
        await w.rejected()
    assert w.live.current is w.first
    assert any(e.get("problem", "").startswith(f"{w.file}:") for e in logs), logs
    w.write(ROUTING_FILE.read_text() + "\n# đổi\n")
    await w.reloaded()
    assert not watcher.done()
    watcher.cancel()
    assert w.live.current.version != w.first.version


async def test_a_broken_manifest_during_a_reload_does_not_kill_the_watcher(tmp_path: Path) -> None:
    w = _Watched(tmp_path)
    watcher = asyncio.create_task(w.live.watch(interval=0.01))
    w.manifest.write_text("prompts: [not, a, mapping]\n")
    with structlog.testing.capture_logs() as logs:
        w.write(ROUTING_FILE.read_text() + "\n# một\n")
        await w.rejected()
    assert w.live.current is w.first
    assert any("danh mục lời nhắc" in e.get("problem", "") for e in logs), logs
    w.manifest.write_text(MANIFEST_FILE.read_text())
    w.write(ROUTING_FILE.read_text() + "\n# hai\n")
    await w.reloaded()
    assert not watcher.done()
    watcher.cancel()


async def test_parsing_runs_off_the_event_loop(tmp_path: Path) -> None:
    """While a reload parses, the loop keeps serving: here it must, or the parse never ends."""
    import threading

    w = _Watched(tmp_path)
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    gate = threading.Event()
    blocked_forever: list[bool] = []

    def slow_prompts() -> list[str]:
        loop.call_soon_threadsafe(entered.set)
        blocked_forever.append(not gate.wait(10))
        return w._prompts()

    w.live.prompt_ids = slow_prompts
    watcher = asyncio.create_task(w.live.watch(interval=0.01))
    w.write(ROUTING_FILE.read_text() + "\n# đổi\n")
    await asyncio.wait_for(entered.wait(), 10)  # the loop runs while the parse is under way
    gate.set()
    await w.reloaded()
    watcher.cancel()
    assert blocked_forever == [False]


async def test_sighup_asks_the_watcher_to_reload(tmp_path: Path) -> None:
    w = _Watched(tmp_path)
    watcher = asyncio.create_task(w.live.watch(interval=3600))
    w.write(ROUTING_FILE.read_text() + "\n# đổi\n")
    w.live.request_reload()  # what the SIGHUP handler calls
    await w.reloaded()
    watcher.cancel()
    assert w.live.current.version != w.first.version


async def test_an_unexpected_error_in_a_reload_does_not_kill_the_watcher(tmp_path: Path) -> None:
    w = _Watched(tmp_path)
    fail = [True]

    def flaky_prompts() -> list[str]:
        if fail[0]:
            raise PermissionError("manifest unreadable")
        return w._prompts()

    w.live.prompt_ids = flaky_prompts
    watcher = asyncio.create_task(w.live.watch(interval=0.01))
    with structlog.testing.capture_logs() as logs:
        w.write(ROUTING_FILE.read_text() + "\n# một\n")
        await w.rejected()
    assert any("PermissionError" in e.get("problem", "") for e in logs), logs
    fail[0] = False
    w.write(ROUTING_FILE.read_text() + "\n# hai\n")
    await w.reloaded()
    assert not watcher.done()
    watcher.cancel()


def test_shedding_limits_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("max_calls = 120\nmax_loop_lag_ms = 0\nmax_ari_latency_ms = 800\n")
    s = load_settings(cfg, {"IVR_MAX_ARI_LATENCY_MS": "300"}, require_ari=False)
    assert (s.max_calls, s.max_loop_lag_ms, s.max_ari_latency_ms) == (120, 0, 300)
    assert (Settings().max_calls, Settings().max_loop_lag_ms) == (400, 500)
    cfg.write_text("max_calls = -1\n")
    with pytest.raises(ConfigError, match=r"'max_calls' phải là số nguyên ≥ 0 \(0: tắt\)"):
        load_settings(cfg, {}, require_ari=False)
    with pytest.raises(ConfigError, match="IVR_MAX_LOOP_LAG_MS phải là số nguyên ≥ 0"):
        load_settings(None, {"IVR_MAX_LOOP_LAG_MS": "0.5s"}, require_ari=False)
    cfg.write_text("agi_max_connections = 0\n")  # zero turns off only the shedding limits
    with pytest.raises(ConfigError, match="'agi_max_connections' phải là số nguyên dương"):
        load_settings(cfg, {}, require_ari=False)


def test_the_cel_file_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "etc" / "ivr.toml"
    cfg.parent.mkdir()
    cfg.write_text('cel_file = "cel/hotline.csv"\n')
    assert (
        load_settings(cfg, {}, require_ari=False).cel_path
        == tmp_path / "etc" / "cel" / "hotline.csv"
    )
    monkeypatch.chdir(tmp_path)
    assert (
        load_settings(cfg, {"IVR_CEL_FILE": "x.csv"}, require_ari=False).cel_path
        == tmp_path / "x.csv"
    )
    for off in ("none", "", "NONE"):  # PostgreSQL sites: cel_pgsql writes the table itself
        assert load_settings(cfg, {"IVR_CEL_FILE": off}, require_ari=False).cel_path is None
    cfg.write_text('cel_file = "none"\n')
    assert load_settings(cfg, {}, require_ari=False).cel_path is None
    default = Settings().cel_file
    assert default == "/var/log/asterisk/cel-custom/hotline.csv"
    expected = Path(default) if Path(default).parent.is_dir() else None  # no Asterisk here
    assert load_settings(None, {}, require_ari=False).cel_path == expected
