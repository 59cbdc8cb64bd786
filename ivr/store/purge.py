"""`ivr db purge`: old calls go, with every copy of their callers' personal data the store holds.

A caller's number and name are in the call's row, and also in the CEL events Asterisk wrote of
the call (``cid_num``, ``cid_name``: copied into ``cel`` for the reconciler) and in the Zalo
survey's outbox (``phone``); a voicemail is the caller's voice, in a file. Purging only the
calls would leave all of these behind, so they go together:

* calls that started before the cut (the local midnight at or before the time asked: the rollups'
  days stay whole), with their steps and voicemail rows. A call still in progress is never
  purged (it is live, or left by a stopped controller, which the next start closes as
  interrupted), nor one a complaint case still open refers to, itself or by its voicemail: the
  call and the caller's voice are that case's evidence until it is closed or rejected;
* the CEL events of the calls Asterisk ended before the cut (their ``LINKEDID_END``), and any
  event a day older than the cut (a call whose end was never written);
* Zalo survey rows created before the cut, except one being sent at this moment;
* once the rows are gone (committed), the voicemails' audio files, where they lie inside the
  recordings folder on this machine. A file that is not there (Asterisk on another machine) is
  counted, as is one that could not be removed: nothing points to it any more;
* the files of this machine's spool quarantine (records the database refused, damaged spool
  files: ivr.store.spool) last written before the cut. A file is written after every record in
  it happened, so none of its records is newer than the cut. A file with a record of a call an
  open case refers to stays, as that call does (the only copy of what the database refused).
  The spool's batches still waiting for the database stay: they are written, and a later purge
  finds them as calls.

Rollups (counts per hour, no personal data) are kept: reports of the purged period still add up.
The purge is recorded (``purges``), and `ivr db rollups rebuild` keeps the rollups before its cut.
"""

from __future__ import annotations

import datetime as dt
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from ivr.store.recordings import recording_file
from ivr.store.rollups import local_midnight
from ivr.store.spool import Spool
from models import Call, Case, CelEvent, Purge, Voicemail
from models.survey import ZaloOutbox

CHUNK = 500
ORPHAN_SECONDS = 86_400.0  # no call lasts a day: older events without an end are left overs
FINAL = ("closed", "rejected")  # a case in another state still needs its call


@dataclass
class Purged:
    """What a purge removed, and the audio files it could not."""

    before: dt.datetime  # the cut: a local midnight
    calls: int = 0
    spared: int = 0  # calls before the cut kept for a case still open
    voicemails: int = 0
    cel_events: int = 0
    zalo_rows: int = 0
    files_removed: int = 0
    files_missing: list[str] = field(default_factory=list)  # not on this machine
    files_failed: list[str] = field(default_factory=list)  # "path: error"
    quarantined: int = 0  # quarantine files removed (ivr.store.spool)
    spared_files: int = 0  # old quarantine files kept for a case still open
    quarantine_failed: list[str] = field(default_factory=list)  # "path: error"


async def purge(
    engine: AsyncEngine,
    before: dt.datetime,
    recordings: Path | None = None,
    spool: Path | None = None,
) -> Purged:
    """Remove the calls that started before ``before`` and their callers' data (module doc).
    ``recordings``: the recordings folder whose voicemail files go too (None: files untouched,
    counted as missing); ``spool``: the spool folder whose old quarantine files go too."""
    before = local_midnight(before)
    done = Purged(before)
    old = (Call.started_at < before) & (Call.disposition != "in_progress")
    locations: list[str] = []
    async with AsyncSession(engine) as s, s.begin():
        needed: set[str] = set(await s.scalars(_needed()))
        found = list(await s.scalars(select(Call.id).where(old)))
        ids = [key for key in found if key not in needed]
        done.spared = len(found) - len(ids)
        for chunk in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)):
            mine = Voicemail.call_id.in_(chunk)
            locations += (await s.scalars(select(Voicemail.location).where(mine))).all()
            await s.execute(delete(Voicemail).where(mine))
            calls = (
                await s.scalars(
                    select(Call).where(Call.id.in_(chunk)).options(selectinload(Call.steps))
                )
            ).all()
            for call in calls:
                await s.delete(call)
        cut = before.timestamp()
        ended = select(CelEvent.linkedid).where(
            CelEvent.eventtype == "LINKEDID_END", CelEvent.eventtime < cut
        )
        gone = await s.execute(
            delete(CelEvent).where(
                or_(CelEvent.linkedid.in_(ended), CelEvent.eventtime < cut - ORPHAN_SECONDS)
            )
        )
        done.cel_events = int(gone.rowcount or 0)  # type: ignore[attr-defined]
        sent = await s.execute(
            delete(ZaloOutbox).where(ZaloOutbox.created_at < before, ZaloOutbox.status != "sending")
        )
        done.zalo_rows = int(sent.rowcount or 0)  # type: ignore[attr-defined]
        s.add(Purge(before=before, at=dt.datetime.now(dt.UTC), calls=len(ids)))
    done.calls, done.voicemails = len(ids), len(locations)
    for location in locations:
        _remove(location, recordings, done)
    if spool is not None:
        _clear_quarantine(Spool(spool).quarantine, before, needed, done)
    return done


def _clear_quarantine(folder: Path, before: dt.datetime, needed: set[str], done: Purged) -> None:
    """The quarantine's files last written before the cut, but those with a record of a call an
    open case needs (module doc)."""
    cut = before.timestamp()
    try:
        entries = sorted(folder.iterdir())
    except FileNotFoundError:
        return  # nothing was ever set aside
    except OSError as e:
        done.quarantine_failed.append(f"{folder}: {e.strerror or e}")
        return
    for path in entries:
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cut:
                continue
            if needed and needed & _calls_in(path):
                done.spared_files += 1
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # replaced meanwhile (a write's rename) or removed by another purge
        except OSError as e:
            done.quarantine_failed.append(f"{path}: {e.strerror or e}")
        else:
            done.quarantined += 1


def _calls_in(path: Path) -> set[str]:
    """The keys of the calls a spool file's readable records are about (ivr.store.identity; a
    hang-up cause names its channel instead, and holds no caller's data)."""
    ops, _ = Spool.read(path)
    return {str(row.get("call_id") or row.get("id") or "") for _, row in ops}


def _needed() -> Select[Any]:
    """The calls an open case refers to, itself or through its voicemail."""
    open_case = Case.status.not_in(FINAL)
    direct = select(Case.call_id).where(open_case, Case.call_id.is_not(None))
    heard = select(Voicemail.call_id).join(Case, Case.voicemail_id == Voicemail.id).where(open_case)
    return select(direct.union(heard).subquery().c[0])


def _remove(location: str, recordings: Path | None, done: Purged) -> None:
    path = recording_file(location, recordings) if recordings is not None else None
    if path is None:
        done.files_missing.append(location)
        return
    try:
        path.unlink()
    except OSError as e:
        done.files_failed.append(f"{path}: {e.strerror or e}")
    else:
        done.files_removed += 1
