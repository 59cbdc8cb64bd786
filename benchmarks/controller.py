"""The project as shipped, for the load benchmark: `ivr db upgrade` then `ivr run` as a
subprocess with a throwaway SQLite data folder, against the real Asterisk, on the benchmark's own
ARI app. Like a SQLite site beside its Asterisk, it copies the Asterisk's CEL file (cel_custom)
into its store and reconciles it: part of what each call costs it. The routing is the project's
own with the office open around the clock (same nodes, same prompts), so a run at lunchtime or at
night still reaches the menu.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

from benchmarks.pbx import IVR_APP, ROOT, Pbx, process_cpu_ms

ROUTING = ROOT / "routing" / "hotline.yaml"
MANIFEST = ROOT / "prompts" / "manifest.yaml"
IVR = Path(sys.executable).parent / "ivr"
ALL_DAY = ["00:00-24:00"]


def always_open_routing(target: Path) -> Path:
    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(ROUTING.read_text())
    for schedule in data["schedules"].values():
        # a list each: one shared list would be written as a YAML anchor and aliases
        schedule["weekly"] = {
            d: [*ALL_DAY] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        }
        schedule["public_holidays"] = None
        schedule["overrides"] = []
    with target.open("w") as f:
        yaml.dump(data, f)
    return target


def _value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _emptied(cel: Path) -> Path:
    """The Asterisk's CEL file, emptied (cel_custom appends to it): the controller copies the
    events of its own step's calls, not those of the steps before."""
    if cel.exists():
        os.truncate(cel, 0)
    return cel


class Served:
    """A process serving the benchmark's ARI app; :meth:`stop` ends it (SIGTERM, then
    SIGKILL)."""

    proc: subprocess.Popen[bytes]
    log: Path

    def _connected(self, pbx: Pbx, what: str) -> None:
        deadline = time.monotonic() + 30
        while not pbx.app_connected(IVR_APP):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} did not connect: {self.log.read_text()[-800:]}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_ms(self) -> float:
        return process_cpu_ms(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Controller(Served):
    """`ivr run` in ``folder``."""

    def __init__(
        self,
        pbx: Pbx,
        folder: Path,
        ami: bool,
        max_calls: int | None = None,
        event_loop: str | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        env = pbx.env
        settings: dict[str, str | int] = {
            "ari_url": env["IVR_TEST_ARI_URL"],
            "ari_user": env["IVR_TEST_ARI_USER"],
            "ari_password": env["IVR_TEST_ARI_PASSWORD"],
            "ari_app": IVR_APP,
            "routing": str(always_open_routing(folder / "routing.yaml")),
            "prompts": str(MANIFEST),
            "data_dir": str(folder / "data"),
            "recordings_dir": env["IVR_TEST_RECORDINGS_DIR"],
            "metrics_address": "",
            "cel_file": str(_emptied(Path(env["IVR_TEST_CEL_FILE"]))),
        }
        if max_calls is not None:  # the shipped limit (400) sheds past that many in progress
            settings["max_calls"] = max_calls
        if event_loop is not None:  # else as shipped
            settings["event_loop"] = event_loop
        if ami:
            settings["ami_address"] = env["IVR_TEST_AMI_ADDRESS"]
            settings["ami_user"] = env["IVR_TEST_AMI_USER"]
            settings["ami_secret"] = env["IVR_TEST_AMI_SECRET"]
        config = folder / "ivr.toml"
        config.write_text("".join(f"{k} = {_value(v)}\n" for k, v in settings.items()))
        # the settings come from this file only, not from an IVR_* of the caller's environment
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        upgrade = subprocess.run(
            [str(IVR), "db", "upgrade", "--config", str(config)],
            capture_output=True,
            text=True,
            env=clean,
            timeout=120,
            check=False,
        )
        if upgrade.returncode != 0:
            raise RuntimeError(f"ivr db upgrade failed: {upgrade.stderr.strip()[-500:]}")
        self.log = folder / "ivr-run.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [str(IVR), "run", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean,
            )
        self._connected(pbx, "ivr run")


class MinimalAppProcess(Served):
    """benchmarks.floor's minimal app (`--serve`) in ``folder``, on the benchmark's ARI app: the
    least code that makes the same call, for its CPU beside the controller's (real_load
    --floor)."""

    def __init__(self, pbx: Pbx, folder: Path, event_loop: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        env = pbx.env
        self.log = folder / "minimal-app.log"
        command = [
            sys.executable,
            "-m",
            "benchmarks.floor",
            "--serve",
            env["IVR_TEST_ARI_URL"],
            "--ari-user",
            env["IVR_TEST_ARI_USER"],
            "--ari-password",
            env["IVR_TEST_ARI_PASSWORD"],
            "--app",
            IVR_APP,
            "--event-loop",
            event_loop,
        ]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._connected(pbx, "the minimal app")
