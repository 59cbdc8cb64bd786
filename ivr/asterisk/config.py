"""`ivr asterisk-config DIR`: the files of asterisk.conf.example, the dialplan and the phones.

The phones' pjsip sections are generated from the routing YAML, so the PBX and the routing
never drift; the dialplan is copied from dialplan/hotline.conf.
"""

from __future__ import annotations

import re
from pathlib import Path

from ivr.ami.watch import manager_conf_filters
from ivr.asterisk.files import write_file
from ivr.asterisk.moh import musiconhold_conf
from ivr.asterisk.pjsip import render
from ivr.routing.model import Routing

MARK = re.compile(r"^;;; file: (\S+)\s*$", re.MULTILINE)


def split_example(text: str) -> dict[str, str]:
    """The example's parts, by file name (each introduced by ';;; file: NAME')."""
    parts = MARK.split(text)
    return {
        name: body.strip("\n") + "\n" for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def write_config(
    target: Path,
    example: Path,
    dialplan: Path,
    routing: Routing,
    *,
    overwrite: bool = False,
    static_contacts: tuple[str, int] | None = None,
    qualify: bool = True,
    cluster: bool = False,
) -> list[Path]:
    files = split_example(example.read_text(encoding="utf-8"))
    if cluster:  # several controllers: the trunk's calls are offered to all (StasisBroadcast)
        files = {name: to_cluster(body) for name, body in files.items()}
    files["pjsip_hotline.conf"] = render(routing, static_contacts=static_contacts, qualify=qualify)
    files["hotline.conf"] = dialplan.read_text(encoding="utf-8")
    files["musiconhold.conf"] = musiconhold_conf(routing)  # FastAGI announces while ringing
    files.update(cel_files(files.get("modules.conf", "")))
    if "manager.conf" in files:
        files["manager.conf"] = with_event_filters(files["manager.conf"])
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in files.items():
        path = target / name
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} đã có; thêm --overwrite để ghi đè")
        write_file(path, body)
        written.append(path)
    return written


AMI_USER = "ivr"


def with_event_filters(body: str) -> str:
    """manager.conf with the AMI watch's event filters in its user's section: Asterisk sends
    the controller only the events it reads (ivr/ami/watch.py), not one per call step."""
    lines = body.splitlines(keepends=True)
    try:
        at = lines.index(f"[{AMI_USER}]\n")
    except ValueError:
        return body  # no such user: nothing to filter
    end = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    while end > at + 1 and not lines[end - 1].strip():
        end -= 1  # after the section's last setting, before the blank lines
    comment = "; only the events ivr's AMI watch reads (phone states, hotline callers' hang-ups)\n"
    return "".join([*lines[:end], comment, manager_conf_filters(), *lines[end:]])


INBOUND, CLUSTER = "context=hotline-inbound", "context=hotline-cluster"


def to_cluster(body: str) -> str:
    """The example's trunk pointed at [hotline-cluster] instead of [hotline-inbound]."""
    lines = body.splitlines(keepends=True)
    return "".join(
        CLUSTER + line[len(INBOUND) :] if line.startswith(INBOUND) else line for line in lines
    )


CEL_EVENTS = (
    "CHAN_START,CHAN_END,ANSWER,HANGUP,APP_START,APP_END,BRIDGE_ENTER,BRIDGE_EXIT,LINKEDID_END"
)


def cel_files(modules: str) -> dict[str, str]:
    """Asterisk's own record of every call (CEL), which `ivr` reconciles into the store: cel.conf,
    cel_custom.conf (a CSV file `ivr` reads: SQLite sites), cel_pgsql.conf (straight into the
    store's ``cel`` table: PostgreSQL sites, off until its password is set and the module loaded),
    and modules.conf loading cel_custom."""
    from ivr.store.reconcile.cel import MAPPING

    out = {
        "cel.conf": (
            "; Channel events, reconciled by `ivr` into call rows (calls no controller saw).\n"
            f"[general]\nenable=yes\napps=stasis,agi,dial\nevents={CEL_EVENTS}\n"
        ),
        "cel_custom.conf": (
            "; The file `ivr run` / `ivr db reconcile` read: /var/log/asterisk/cel-custom/hotline.csv\n"
            "; (IVR_CEL_FILE when `ivr` sees it elsewhere). The fields are the ones ivr parses.\n"
            f"[mappings]\nhotline.csv => {MAPPING}\n"
        ),
        "cel_pgsql.conf": (
            "; PostgreSQL sites: Asterisk writes its events into the store's own table `cel`\n"
            "; (created by `ivr db upgrade`). Set the store's database and password, then in\n"
            "; modules.conf load cel_pgsql.so and noload cel_custom.so, and set IVR_CEL_FILE=none.\n"
            "[global]\nhostname=127.0.0.1\nport=5432\ndbname=ivr\nuser=ivr\npassword=\n"
            "table=cel\nappname=asterisk-cel\n"
        ),
    }
    if modules:
        kept = [line for line in modules.splitlines() if line.strip() != "noload=cel_custom.so"]
        out["modules.conf"] = (
            "\n".join(kept).rstrip("\n")
            + "\n; CEL, for `ivr`'s reconciliation\nload=cel_custom.so\n"
        )
    return out
