"""The Python reference of the Rust poller (`xqdecl._xqdecl.Poller`) and of its rc parser.

Not used at run time: xqdecl runs the Rust implementation only. The
differential tests (tests/test_poller_differential.py) and the behaviour tests
(tests/test_poller.py) run both against the same file states, and
benchmarks/bench_poll.py times both. The rules are in docs/internals.md ("The
poller", "Files a wrapper leaves").
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Iterable

from xqdecl.store.poller import RC_READ_LIMIT, Change, parse_event_name

__all__ = ["RECENT_NS", "PyPoller", "parse_rc"]

#: A file or folder whose mtime is younger than this is re-read whatever its stat says
#: (mtime granularity is coarse: a same-size rewrite within one tick keeps the stat).
RECENT_NS = 2_000_000_000

_WS = b" \t\n\r\x0b\x0c"
_INT = re.compile(rb"[+-]?[0-9]+")
_I32 = (-(2**31), 2**31 - 1)
_U64_MAX = 2**64 - 1


def parse_rc(data: bytes) -> int | None:
    """The exit code in the first bytes of an rc file, or None (no information yet).

    The first line must be complete (end with ``\\n``); stripped of ASCII white
    space it must be an optionally signed decimal integer that fits in 32 bits.
    A torn write (``"12\\n"`` seen as ``"1"``) therefore never yields a false rc.
    """
    nl = data.find(b"\n", 0, RC_READ_LIMIT)
    if nl < 0:
        return None
    line = data[:nl].strip(_WS)
    if _INT.fullmatch(line) is None:
        return None
    value = int(line)
    return value if _I32[0] <= value <= _I32[1] else None



class _Named:
    """What the entries of one events pass say about one job."""

    __slots__ = ("ended", "rcs")

    def __init__(self) -> None:
        self.ended = False
        self.rcs: set[int] = set()  # the rcs end events carried

    def add(self, ended: bool, rc: int | None) -> None:
        self.ended = self.ended or ended
        if rc is not None:
            self.rcs.add(rc)

    @property
    def told(self) -> int | None:
        """The rc the names tell; None when they tell none, or several (one wrapper
        never sends two: the rc file decides)."""
        return next(iter(self.rcs)) if len(self.rcs) == 1 else None


class _Job:
    __slots__ = ("rc_path", "rc_sig", "start_path", "started", "trial")

    def __init__(self, jobs_dir: str, index: int, trial: int) -> None:
        metadir = f"{jobs_dir}/{index}"
        self.trial = trial
        self.started = False
        self.rc_sig: tuple[int, int, int] | None = None  # stat of the last unusable rc file
        self.rc_path = f"{metadir}/rc.{trial}"
        self.start_path = f"{metadir}/start.{trial}"


class PyPoller:
    """The reference poller (same interface and behaviour as the Rust ``Poller``)."""

    def __init__(self, rundir: str | os.PathLike[str], threads: int = 2) -> None:
        root = os.fspath(rundir)
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), root)
        if not 1 <= threads <= 64:
            raise ValueError(f"threads must be 1..64, not {threads}")
        self.rundir = root
        self.threads = threads  # accepted for interface parity; the reference is serial
        self._jobs_dir = os.path.join(root, "jobs")
        self._events_dir = os.path.join(root, "events")
        self._jobs: dict[int, _Job] = {}
        self._events_sig: tuple[int, int] | None = None
        self._recheck: set[int] = set()  # ended per an event, but the rc gave nothing yet

    def __len__(self) -> int:
        return len(self._jobs)

    def __repr__(self) -> str:
        return f"PyPoller({self.rundir!r}, watched={len(self._jobs)})"

    def watch(self, jobs: Iterable[tuple[int, int]]) -> None:
        """Watch (index, trial) pairs; a different trial of a watched index replaces it."""
        for index, trial in jobs:
            index, trial = int(index), int(trial)
            if not (0 <= index <= _U64_MAX and 0 <= trial <= _U64_MAX):
                raise OverflowError("job index and trial must fit in an unsigned 64-bit int")
            old = self._jobs.get(index)
            if old is not None and old.trial == trial:
                continue
            self._jobs[index] = _Job(self._jobs_dir, index, trial)
            self._recheck.discard(index)

    def unwatch(self, indexes: Iterable[int]) -> None:
        """Stop watching these indexes (unknown ones are ignored)."""
        for index in indexes:
            self._jobs.pop(int(index), None)
            self._recheck.discard(int(index))

    def poll_events(self) -> list[Change]:
        """Process the events folder; cheap when nothing changed."""
        now = time.time_ns()
        names: list[str] = []
        try:
            st = os.stat(self._events_dir)
        except OSError:
            st = None
        if st is not None:
            sig = (st.st_mtime_ns, st.st_ino)
            if sig != self._events_sig or now - st.st_mtime_ns < RECENT_NS:
                try:
                    names = os.listdir(self._events_dir)
                except OSError:
                    names = []
                else:
                    self._events_sig = sig
        named: dict[int, _Named] = {}
        for name in names:
            parsed = parse_event_name(name)
            if parsed is None:
                continue
            index, trial, ended, rc = parsed
            job = self._jobs.get(index)
            if job is not None and job.trial == trial:
                named.setdefault(index, _Named()).add(ended, rc)
        for index in self._recheck:
            named.setdefault(index, _Named()).add(True, None)
        changes: list[Change] = []
        for index in sorted(named):
            job, news = self._jobs[index], named[index]
            told = news.told
            if news.ended and told is None:  # a bare end event: read the files
                change = self._check(index, job, now)
            elif told is not None:
                del self._jobs[index]
                change = (index, job.trial, True, told)
            elif not job.started:
                job.started = True
                change = (index, job.trial, True, None)
            else:
                change = None
            if change is not None:
                changes.append(change)
            if index in self._jobs:
                if news.ended:
                    self._recheck.add(index)
            else:
                self._recheck.discard(index)
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._events_dir, name))
        return changes

    def sweep(self) -> list[Change]:
        """Visit every watched job (one stat each, reads only on change)."""
        now = time.time_ns()
        changes: list[Change] = []
        for index, job in list(self._jobs.items()):
            change = self._check(index, job, now)
            if change is not None:
                changes.append(change)
                if index not in self._jobs:
                    self._recheck.discard(index)
        changes.sort(key=lambda c: c[0])
        return changes

    def _check(self, index: int, job: _Job, now: int) -> Change | None:
        """Look at one job's files; report and maybe unwatch it on progress."""
        rc = self._read_rc(job, now)
        if rc is not None:
            del self._jobs[index]
            return (index, job.trial, True, rc)
        if not job.started:
            try:
                os.stat(job.start_path)
            except OSError:
                return None
            job.started = True
            return (index, job.trial, True, None)
        return None

    @staticmethod
    def _read_rc(job: _Job, now: int) -> int | None:
        try:
            st = os.stat(job.rc_path)
        except OSError:
            return None
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == job.rc_sig and now - st.st_mtime_ns >= RECENT_NS:
            return None  # same unusable file as last time
        if st.st_size == 0:
            job.rc_sig = sig
            return None
        try:
            with open(job.rc_path, "rb") as f:
                data = f.read(RC_READ_LIMIT)
        except OSError:
            return None  # unreadable: retry on the next pass
        rc = parse_rc(data)
        if rc is None:
            job.rc_sig = sig
        return rc
