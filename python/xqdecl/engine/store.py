"""The run's state on disk, as the loop uses it: the claimed run directory, the
runner lock, the journal (set aside and rebuilt from the job files when it is
unusable), the cloud copy of the journal, and the kill-request file.

Earlier rows are read a slice at a time (planning never loads the whole
journal); a job the journal has no row for, while its folder holds files,
gets its row from those files (xqdecl.store.recover).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from xqdecl.errors import BackendError, StoreError
from xqdecl.plan import Plan
from xqdecl.spec import Spec
from xqdecl.store import recover
from xqdecl.store.cloud import CloudPoller, CloudStore
from xqdecl.store.journal import JobRow, Journal
from xqdecl.store.layout import RunDir, has_job_folders, write_atomic
from xqdecl.store.lock import RunLock

#: seconds between two copies of a cloud run's journal into its bucket
MIRROR_INTERVAL = 15.0


class RunStore:
    def __init__(self, plan: Plan, spec: Spec, journal: Journal, lock: RunLock,
                 cloud: CloudStore | None, look: bool, rebuild: recover.Rebuild | None,
                 say: Callable[[str], None]):
        self.plan = plan
        self.spec = spec
        self.rd: RunDir = plan.rundir
        self.journal = journal
        self.lock = lock
        self.cloud = cloud
        self.look = look  # job folders may hold attempts the journal does not know
        self.rebuild = rebuild
        self.say = say
        self._next_mirror = 0.0

    @classmethod
    def open(cls, plan: Plan, spec: Spec, *, fresh: bool, cloud: CloudStore | None,
             say: Callable[[str], None]) -> RunStore:
        rd = plan.rundir
        rd.create(spec.name)  # StoreError for a folder that is not a run's
        lock = RunLock(rd.lock)
        lock.acquire()
        try:
            if cloud is not None and not fresh and not rd.journal.exists():
                copy = cloud.read_bytes("journal.db")  # resume from another machine
                if copy:
                    write_atomic(rd.journal, copy)
            journal, rebuild = recover.open_journal(rd)  # a bad one is set aside
            rd.kill_request.unlink(missing_ok=True)
        except BaseException:
            lock.release()
            raise
        look = rebuild is not None or has_job_folders(rd.jobs)
        return cls(plan, spec, journal, lock, cloud, look, rebuild, say)

    # -- planning ------------------------------------------------------------------------
    def previous(self, lo: int, hi: int) -> dict[int, JobRow]:
        """Earlier rows of jobs lo..hi-1: the journal's, else what their folders say."""
        rows = self.journal.rows_between(lo, hi)
        if self.look and len(rows) < hi - lo:
            for i in range(lo, hi):
                if i not in rows and (row := self._from_disk(i)) is not None:
                    rows[i] = row
        if hi >= self.plan.total and self.rebuild is not None:
            if line := self.rebuild.line():
                self.say(line)
            self.rebuild = None
        return rows

    def _from_disk(self, index: int) -> JobRow | None:
        row = recover.row_from_disk(index, str(self.rd.metadir(index)))
        if row is not None and self.rebuild is not None:
            self.rebuild.count(row)
        return row

    def planned(self, total: int) -> None:
        """Planning is done: rows of jobs the spec no longer has are dropped."""
        self.journal.drop_from(total)

    def started(self, backend: str) -> None:
        self.journal.set_meta(
            run=self.spec.name, spec=self.spec.source, total=self.plan.total,
            started=time.time(), backend=backend, ended=None, exit_code=None,
            groups=[g.name for g in self.spec.jobs], pid=os.getpid(),
        )

    # -- during the run --------------------------------------------------------------------
    def write(self, rows: list[JobRow]) -> None:
        """The cycle's changed rows, in one transaction (StoreError if it cannot)."""
        self.journal.upsert(rows)
        if self.cloud is not None and time.monotonic() >= self._next_mirror:
            self.mirror()

    def mirror(self) -> None:
        """A cloud run keeps a copy of its journal in the bucket (status, resume)."""
        if self.cloud is not None:
            self._next_mirror = time.monotonic() + MIRROR_INTERVAL
            self.cloud.write_bytes("journal.db", self.journal.snapshot())

    def write_note(self, row: JobRow, note: str, trial: int) -> None:
        """What the runner knows of an attempt beyond its rc, for `status` and `logs`."""
        path = self.rd.file(row.idx, "notes", trial)
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as fh:
            fh.write(f"xqdecl: {note}\n")
        if self.cloud is not None:
            with contextlib.suppress(BackendError, OSError):
                self.cloud.write_bytes(f"jobs/{row.idx}/notes.{trial}", path.read_bytes())

    def check_usable(self) -> None:
        """The run directory must still be there and writable, else nothing is the jobs'
        fault: a StoreError stops the run (exit 4) and a rerun picks up where it stood."""
        for path in (self.rd.jobs, self.rd.events):
            if not path.is_dir():
                raise StoreError(f"the run directory {self.rd.root} is gone ({path.name}/ is "
                                 "missing): stopping; run again once it is back")
            if not os.access(path, os.W_OK):
                raise StoreError(f"the run directory {self.rd.root} is not writable "
                                 f"({path.name}/): stopping; run again once it is")

    def check_lock(self) -> None:
        """Someone removed or replaced runner.lock: a second runner could start; stop."""
        if not self.lock.still_held():
            self.check_usable()  # the whole run directory went away: say that
            raise StoreError(f"{self.rd.lock} was removed or replaced while this run held it: "
                             "stopping, so that two runners never drive one run")

    def kill_requested(self) -> bool:
        """`xqdecl kill` from a host that cannot signal this runner leaves a request file."""
        try:
            self.rd.kill_request.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            return False  # not ours to take away (read-only): the store check says why
        return True

    def read_rc_for(self, poller: Any) -> Callable[[int, int], int | None]:
        if isinstance(poller, CloudPoller):
            return poller.rc
        rd = self.rd
        return lambda index, trial: recover.read_rc(str(rd.file(index, "rc", trial)))

    def read_start(self, index: int, trial: int) -> str:
        """What a trial's wrapper wrote when it started ('' when it has not)."""
        try:
            with open(self.rd.file(index, "start", trial), encoding="utf-8",
                      errors="replace") as fh:
                return fh.read(512).strip()
        except OSError:
            return ""

    # -- the end ----------------------------------------------------------------------------
    def finish(self, result: Any) -> None:
        with contextlib.suppress(BackendError):
            self.journal.set_meta(ended=time.time(), exit_code=int(result.exit_code))
            self.mirror()
        self.journal.close()

    def release(self) -> None:
        self.lock.release()  # a second call does nothing

    def close(self) -> None:
        """Give everything back without a result (the run could not start)."""
        with contextlib.suppress(Exception):
            self.journal.close()
        self.release()
