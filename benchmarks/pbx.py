"""The real Asterisk of `scripts/asterisk`, as the load benchmark uses it: bring it up (and down
again if it was not running), read its settings, ask ARI what is left, read CPU time from /proc,
and install the benchmark's dialplan menu for the run only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ivr.sim.sipp import own_asterisk

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "asterisk"
MENU_FILE = ROOT / "dialplan" / "benchmark-menu.conf"
INSTALLED_NAME = "ivr-benchmark-menu.conf"  # in Asterisk's config folder, for the run only
INCLUDE = f"#include {INSTALLED_NAME}\n"
MENU_SERVICE = "18001029"  # [hotline-inbound] → the dialplan menu (benchmark-menu.conf)
IVR_SERVICE = "18001028"  # [hotline-inbound] with the app below, then the project's own dialplan
IVR_APP = "ivr-benchmark"  # its own ARI app: a test on the same Asterisk keeps `hotline`
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class PbxError(Exception):
    pass


# The benchmark's own Asterisk: scripts/asterisk with its own cache, state and ports, so the
# tests other sessions run on the shared one neither disturb the figures (CPU, channels, the
# branch's desk ports) nor stop it half-way. Its root is a copy of the tests' cached root.
# (ivr.sim.sipp.own_asterisk, offset 1): 3,000 RTP ports from 33000, since 1,000 ran out at
# 16 calls/s, where each caller and each ringing desk holds a pair
OWN = own_asterisk("bench", 1)
TESTS_ROOT = Path("/var/cache/ivr/asterisk-root")


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, **OWN},
    )


def _copy_root() -> None:
    """Copies the tests' cached root (saves the 2-minute build); without it, `up` builds one."""
    own = Path(OWN["IVR_ASTERISK_CACHE"]) / "asterisk-root"
    if own.exists() or not (TESTS_ROOT / "usr/sbin/asterisk").exists():
        return
    tmp = own.with_name(f"asterisk-root.copy.{os.getpid()}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    copied = subprocess.run(
        ["cp", "-a", "--one-file-system", str(TESTS_ROOT), str(tmp)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    if copied.returncode == 0:
        tmp.rename(own)
    else:
        subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)], check=False)


@dataclass(frozen=True)
class Pbx:
    env: dict[str, str]
    pid: int
    started_here: bool

    @classmethod
    def up(cls) -> Pbx:
        """`scripts/asterisk up` unless it already runs; its settings and the Asterisk's pid."""
        started = _script("status").returncode != 0
        if started:
            _copy_root()
            up = _script("up")
            if up.returncode != 0:
                raise PbxError(f"scripts/asterisk up failed: {up.stderr.strip()[-400:]}")
        status = _script("status")
        found = re.search(r"pid (\d+)", status.stdout)
        env_out = _script("env")
        if found is None or env_out.returncode != 0:
            raise PbxError(f"Asterisk is not running: {status.stdout.strip()}")
        env = dict(line.split("=", 1) for line in env_out.stdout.splitlines() if "=" in line)
        return cls(env, int(found.group(1)), started)

    def down(self) -> None:
        if self.started_here:
            _script("down")

    # --- settings ---------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return Path(self.env["IVR_TEST_ASTERISK_ROOT"])

    @property
    def sip(self) -> str:
        return self.env["IVR_TEST_SIP"]

    @property
    def sip_port(self) -> int:
        return int(self.sip.rpartition(":")[2])

    @property
    def ari_port(self) -> int:
        """ARI's HTTP port (IVR_TEST_ARI_URL: http://127.0.0.1:PORT/ari)."""
        port = urlsplit(self.env["IVR_TEST_ARI_URL"]).port
        if port is None:
            raise PbxError(f"no port in IVR_TEST_ARI_URL: {self.env['IVR_TEST_ARI_URL']}")
        return port

    def prompt_ms(self, prompt: str, prefix: str = "hotline", language: str = "vi") -> int:
        """How long an installed prompt plays (its 16 kHz signed-linear file)."""
        path = self.root / "usr/share/asterisk/sounds" / language / prefix / f"{prompt}.sln16"
        return path.stat().st_size * 1000 // 32000

    # --- ARI --------------------------------------------------------------------------------

    def ari(self, path: str) -> Any:
        auth = f"{self.env['IVR_TEST_ARI_USER']}:{self.env['IVR_TEST_ARI_PASSWORD']}"
        request = urllib.request.Request(
            self.env["IVR_TEST_ARI_URL"] + path,
            headers={"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def channels(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ari("/channels")
        return result

    def bridges(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ari("/bridges")
        return result

    def version(self) -> str:
        return str(self.ari("/asterisk/info")["system"]["version"])

    def app_connected(self, app: str) -> bool:
        try:
            return any(a.get("name") == app for a in self.ari("/applications"))
        except OSError:
            return False

    # --- CPU ---------------------------------------------------------------------------------

    def cpu_ms(self) -> float:
        return process_cpu_ms(self.pid)

    def alive(self) -> bool:
        return Path(f"/proc/{self.pid}").exists()

    # --- the dialplan menu, for the run only -------------------------------------------------

    def cli(self, command: str) -> str:
        out = subprocess.run(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-rx", command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return out.stdout

    def install_menu(self) -> None:
        """Copies benchmark-menu.conf into the config folder, includes it from the site's
        extensions_local.conf, reloads the dialplan."""
        etc = self.root / "etc" / "asterisk"
        (etc / INSTALLED_NAME).write_text(MENU_FILE.read_text())
        local = etc / "extensions_local.conf"
        text = local.read_text() if local.exists() else ""
        if INCLUDE not in text:
            local.write_text(text + ("" if text.endswith("\n") or not text else "\n") + INCLUDE)
        for _ in range(20):  # an Asterisk that has just started may not take the reload yet
            self.cli("dialplan reload")
            if MENU_SERVICE in self.cli("dialplan show hotline-inbound"):
                return
            time.sleep(0.5)
        raise PbxError("the benchmark's dialplan did not load (dialplan show hotline-inbound)")

    def remove_menu(self) -> None:
        etc = self.root / "etc" / "asterisk"
        local = etc / "extensions_local.conf"
        if local.exists():
            local.write_text(local.read_text().replace(INCLUDE, ""))
        (etc / INSTALLED_NAME).unlink(missing_ok=True)
        self.cli("dialplan reload")


def process_cpu_ms(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLOCK_TICKS
