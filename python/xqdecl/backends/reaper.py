"""The fallback containment of local jobs, where no cgroup can be made: a subreaper.

The runner becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so the
orphans of its jobs re-parent to it instead of to init. A process is known as a
job's by its environment (`XQDECL_JOB_METADIR` under the run directory,
`XQDECL_TRIAL`); an orphan whose job is no longer running is killed, and the
orphans the runner killed are reaped by it. What this cannot catch is said in
docs/backends.md (local backend: containment).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Collection

PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


JobKey = tuple[str, str]  # (index, trial) of one job of this run


def job_key(pid: int, prefix: str) -> JobKey | None:
    """The job of this run a process belongs to, by its environment (`XQDECL_JOB_METADIR`
    under `prefix`, `XQDECL_TRIAL`); None when it names none (or is a zombie)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read().split(b"\0")
    except OSError:
        return None
    metadir = trial = None
    for item in env:
        if item.startswith(b"XQDECL_JOB_METADIR="):
            metadir = item[19:].decode(errors="replace")
        elif item.startswith(b"XQDECL_TRIAL="):
            trial = item[13:].decode(errors="replace")
    if metadir is None or trial is None or not metadir.startswith(prefix):
        return None
    return metadir[len(prefix):].strip("/"), trial


class Reaper:
    """The fallback: the runner adopts the orphans of its jobs and kills those of ended jobs."""

    def __init__(self, prefix: str):
        self.prefix = prefix  # "<rundir>/jobs/": the metadirs of this run's jobs
        self.enabled = False
        self._ours: set[int] = set()  # orphans seen alive with a job environment: ours to reap
        self._killed: set[int] = set()  # of those, the ones killed and not reaped yet

    def enable(self) -> bool:
        self.enabled = _prctl(PR_SET_CHILD_SUBREAPER, 1)
        return self.enabled

    def disable(self) -> None:
        if self.enabled:
            _prctl(PR_SET_CHILD_SUBREAPER, 0)
            self.enabled = False

    @staticmethod
    def children() -> set[int]:
        """The runner's child processes (orphans re-parented to it included)."""
        out: set[int] = set()
        with contextlib.suppress(OSError):
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError), open(
                    f"/proc/self/task/{tid}/children", encoding="ascii"
                ) as fh:
                    out.update(int(p) for p in fh.read().split())
        return out

    def collect(self, live: Callable[[JobKey], bool], skip: Collection[int]) -> int:
        """Kill the orphans whose job is not `live`, reap the ones that ended; how many
        killed ones are not reaped yet."""
        for pid in self.children():
            if pid in skip:
                continue
            if pid in self._ours:
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        self._ours.discard(pid)
                        self._killed.discard(pid)
                        continue
            key = job_key(pid, self.prefix)
            if key is None:
                continue  # not a job's (or a zombie already): not ours to touch
            self._ours.add(pid)
            if not live(key):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    self._killed.add(pid)
        return len(self._killed)


def sweep_processes(prefix: str, keep: Callable[[JobKey], bool]) -> int:
    """Kill every process on this machine whose environment names a job of this run that
    `keep` does not keep (a rerun without cgroups); how many were killed."""
    me = os.getpid()
    killed = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        key = job_key(int(entry), prefix)
        if key is not None and not keep(key):
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
    return killed


def wrapper_key(pid: int, prefix: str) -> JobKey | None:
    """(index, trial) of a live wrapper, from its command line `bash <jobs>/<i>/job.sh <t>`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if len(argv) < 3 or not argv[1].endswith("/job.sh"):
        return None
    return os.path.basename(os.path.dirname(argv[1])), argv[2]
