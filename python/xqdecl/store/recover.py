"""The files on disk are the truth: opening the journal safely, and rebuilding a
job's row from its metadir when the journal has none for it.

A journal that is missing (while the run directory has job folders), empty or
corrupt is never used nor deleted: it is moved aside, the user is told in one
line, and each job's state is read back from the files its wrapper wrote
(see docs/internals.md): the wrapper on disk is the definition, the highest
trial with a start or rc file is the last attempt, and its rc file is the
outcome. One listdir per job folder, and one read of the files that decide.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from xqdecl.errors import StoreError
from xqdecl.store import journal as J
from xqdecl.store.journal import JobRow, Journal
from xqdecl.store.layout import RunDir, has_job_folders, read_or_none, wrapper_hash
from xqdecl.store.poller import RC_READ_LIMIT, parse_rc

#: SQLite's companion files of a journal, moved along with it
_COMPANIONS = ("-wal", "-shm")


@dataclass(slots=True)
class Rebuild:
    """Why the rows come from disk, and what was found there (for one line to the user)."""

    reason: str
    always: bool  # say it even when no job had an attempt on disk (a journal was set aside)
    succeeded: int = 0
    live: int = 0
    again: int = 0

    def count(self, row: JobRow) -> None:
        if row.status == J.RUNNING:
            self.live += 1
        elif row.status == J.SUCCEEDED:
            self.succeeded += 1
        else:
            self.again += 1

    def line(self) -> str | None:
        if not (self.always or self.succeeded or self.live or self.again):
            return None  # e.g. a run after a dry run: wrappers only, nothing to rebuild
        return (f"warning: {self.reason}; rebuilt the run's state from the job files on disk: "
                f"{self.succeeded} succeeded before (skipped if unchanged), "
                f"{self.live} may still be running, {self.again} to run again")


def open_journal(rd: RunDir) -> tuple[Journal, Rebuild | None]:
    """Open the run's journal, and say whether the rows must be rebuilt from disk.

    A bad journal is moved aside (never deleted). A missing one matters only
    when the run directory already has job folders."""
    path = rd.journal
    rebuild = None
    if os.path.lexists(path):
        why = J.problem(path)
        if why:
            aside = set_aside(path)
            rebuild = Rebuild(f"the run journal {path} was unusable ({why}) and was moved to "
                              f"{aside.name}", always=True)
    else:
        if any(os.path.lexists(p) for p in _companions(path)):
            set_aside(path, only_companions=True)  # SQLite must not pair them with a new one
        if has_job_folders(rd.jobs):
            rebuild = Rebuild(f"the run journal {path} is missing", always=False)
    return Journal(path), rebuild


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + c) for c in _COMPANIONS]


def set_aside(path: Path, only_companions: bool = False) -> Path:
    """Rename `path` (and its -wal, -shm) to `<name>.corrupt-<time>`; returns the new path.

    The companions keep their suffix after the new name, so SQLite still
    pairs them if someone opens the set-aside copy to look at it.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while os.path.lexists(aside):
        aside = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
        n += 1
    pairs = list(zip(_companions(path), _companions(aside), strict=True))
    if not only_companions:
        pairs.insert(0, (path, aside))
    try:
        for src, dst in pairs:
            if os.path.lexists(src):
                os.rename(src, dst)
    except OSError as exc:
        raise StoreError(
            f"cannot move the unusable run journal {path} aside: {exc.strerror or exc}"
        ) from None
    return aside


@dataclass(slots=True)
class OnDisk:
    """What one job's folder says about its attempts."""

    last: int | None = None  # highest trial with a start or rc file
    has_rc: bool = False  # that trial has its rc file


def scan(metadir: str) -> OnDisk:
    """One listdir of a job's folder: its last trial, and whether it has its rc file."""
    found = OnDisk()
    try:
        names = os.listdir(metadir)
    except OSError:
        return found
    starts: set[int] = set()
    rcs: set[int] = set()
    for name in names:
        kind, dot, num = name.partition(".")
        if not dot or not num.isdigit() or kind not in RunDir.TRIAL_KINDS:
            continue  # job.sh, rc.3.tmp, upload logs, ...
        t = int(num)
        if kind == "start":
            starts.add(t)
        elif kind == "rc":
            rcs.add(t)
    if starts or rcs:
        found.last = max(starts | rcs)
        found.has_rc = found.last in rcs
    return found


def read_rc(path: str) -> int | None:
    """The rc a wrapper recorded, or None (missing, empty, torn, garbage, unreadable)."""
    try:
        with open(path, "rb") as fh:
            return parse_rc(fh.read(RC_READ_LIMIT))
    except OSError:
        return None


def _definition(metadir: str, trial: int) -> str:
    """The definition hash the attempt ran: the fourth word of its start line (a job
    the executor ran without a wrapper), else the hash of the wrapper on disk."""
    start = read_or_none(f"{metadir}/start.{trial}")
    words = start.split() if start else []
    if len(words) >= 4:
        return words[3].decode(errors="replace")
    old = read_or_none(f"{metadir}/job.sh")
    return wrapper_hash(old) if old else ""


def row_from_disk(index: int, metadir: str) -> JobRow | None:
    """A job's last attempt as its folder tells it (None: no attempt there).

    The row has no name (the planner matches it by index); its hash is that of
    the wrapper on disk, which is the definition that attempt ran. Status:
    succeeded (last rc 0), running (a start file and no rc: it may still run,
    and is found again from its start line) or failed (anything else).
    """
    disk = scan(metadir)
    if disk.last is None:
        return None
    row = JobRow(idx=index, name="", grp=0, hash=_definition(metadir, disk.last),
                 status=J.FAILED, trial=disk.last)
    if not disk.has_rc:
        row.status = J.RUNNING
    elif read_rc(f"{metadir}/rc.{disk.last}") == 0:
        row.status, row.rc = J.SUCCEEDED, 0
    return row
