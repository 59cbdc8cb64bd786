"""The event_loop setting: what `ivr run` and `ivr agi` run on (ivr.cli.loop)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import structlog
import uvloop

from ivr.ari.http import HttpClient, NotSent
from ivr.cli import loop
from ivr.config import ConfigError, Settings, load_settings

from .loopback import no_content, peer


async def _loop_kind(answer: int) -> tuple[str, int]:
    running = asyncio.get_running_loop()
    return ("uvloop" if isinstance(running, uvloop.Loop) else "asyncio"), answer


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_the_services_run_on_the_loop_the_setting_names(choice: str) -> None:
    assert loop.run(_loop_kind(42), choice) == (choice, 42)


def test_uvloop_is_what_ships() -> None:
    assert Settings().event_loop == "uvloop"
    assert loop.run(_loop_kind(1), Settings().event_loop)[0] == "uvloop"


def test_an_unknown_loop_is_refused_before_anything_starts() -> None:
    main = _loop_kind(1)
    with pytest.raises(ValueError, match="event_loop 'trio'"):
        loop.run(main, "trio")
    assert main.cr_frame is None  # closed, never started: no "never awaited" warning


def test_without_uvloop_the_services_say_so_and_run_on_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a platform without its wheel
    with structlog.testing.capture_logs() as logs:
        assert loop.run(_loop_kind(7), "uvloop") == ("asyncio", 7)
    assert [e["event"] for e in logs] == ["không có uvloop; chạy trên vòng lặp asyncio"]
    assert logs[0]["log_level"] == "warning"


def test_the_setting_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('event_loop = "asyncio"\n')
    assert load_settings(cfg, {}, require_ari=False).event_loop == "asyncio"
    env = {"IVR_EVENT_LOOP": "uvloop"}
    assert load_settings(cfg, env, require_ari=False).event_loop == "uvloop"
    cfg.write_text('event_loop = "trio"\n')
    with pytest.raises(ConfigError, match="event_loop 'trio' không hợp lệ: dùng uvloop hoặc"):
        load_settings(cfg, {}, require_ari=False)
    cfg.write_text("event_loop = 1\n")
    with pytest.raises(ConfigError, match="'event_loop' phải là chuỗi"):
        load_settings(cfg, {}, require_ari=False)


async def _request_on_a_closing_connection() -> tuple[int, str]:
    async with peer(no_content) as port:
        client = HttpClient("127.0.0.1", port, {})
        try:
            first = await client.request("GET", "/ari/asterisk/ping")
            # the kept-alive connection starts closing (Asterisk hung it up, an error closed it)
            # before its connection_lost has run: the next request takes it from the pool
            (conn,) = client._idle
            assert conn.transport is not None
            conn.transport.close()
            try:
                await client.request("GET", "/ari/asterisk/ping")
            except NotSent as e:
                refused = str(e)
            else:
                refused = ""
            again = await client.request("GET", "/ari/asterisk/ping")  # on a new connection
            assert again.status == 204
            return first.status, refused
        finally:
            client.close()


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_a_request_on_a_closing_connection_is_not_sent_on_either_loop(choice: str) -> None:
    """uvloop's write raises on a closing transport and asyncio's drops the data: either way
    the request is refused at once as not sent, which the ARI client sends again."""
    status, refused = loop.run(_request_on_a_closing_connection(), choice)
    assert status == 204
    assert refused == "the connection was closing: the request was not sent"
