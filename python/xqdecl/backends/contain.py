"""Containment of local jobs: everything a job started ends with the job.

Two ways, chosen once per run by `LocalBackend`:

- `CgroupJail` (cgroup.py; where this machine lets the runner write a cgroup hierarchy,
  usually as root): each job runs in a cgroup of its own,
  `<hierarchy>/xqdecl/<run token>/r<runner pid>.<slot>` (a slot is reused by the
  next job once the one before ended and was killed whole), which the job enters
  before its exec. Nothing the job starts can leave it (neither
  `setsid` nor a new process group does), so killing the cgroup once the job
  ended leaves nothing behind. A cgroup outlives the runner: a later runner of
  the same run directory finds the cgroups of jobs that ended meanwhile and
  empties them. cgroup v2 kills through `cgroup.kill`; v1 (the freezer
  hierarchy) freezes the cgroup, kills each of its processes and thaws it.
- `Reaper` (reaper.py; no writable cgroups): the runner becomes a child subreaper, so the
  orphans of jobs re-parent to it instead of to init; an orphan whose
  environment names a job of this run (`XQDECL_JOB_METADIR`, `XQDECL_TRIAL`)
  that is no longer running is killed. This holds only while a runner lives:
  see docs/backends.md for what it cannot catch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from xqdecl.backends.cgroup import CONTAIN_ENV, LAUNCHER_CG, ROOT_ENV, CgroupJail, run_token
from xqdecl.backends.reaper import JobKey, Reaper, job_key, sweep_processes, wrapper_key

#: the names tests and tools take from here (the jail itself is in cgroup.py)
__all__ = ["CONTAIN_ENV", "ROOT_ENV", "CgroupJail", "Containment", "run_token"]


class Containment:
    """One run's containment as the local backend drives it: a cgroup per job where the
    machine allows, else the subreaper. Set up on first use (`plan` makes no cgroup)."""

    def __init__(self, run: str, rundir: Path, mounted_rundir: str, enabled: bool = True):
        self.enabled = enabled  # False: a backend whose jobs run elsewhere (containers)
        self.token = run_token(run, rundir)
        self.prefix = f"{mounted_rundir.rstrip('/')}/jobs/"
        self.script_prefix = f"{str(rundir).rstrip('/')}/jobs/"
        self.jail: CgroupJail | None = None
        self.reaper: Reaper | None = None
        self._ready = False
        self._swept = False
        self._groups: dict[str, str] = {}  # jid -> its cgroup's name
        self._keys: dict[str, JobKey | None] = {}  # jid -> (index, trial) of each job in flight
        self._skip: set[int] = set()  # children of the runner that are not orphans
        self._wrappers: dict[int, str] = {}  # pid -> start ticks of ended wrappers: kill
        # each one's process group once it is provably gone
        self._next_tick = 0.0
        # cgroups are slots, reused from one job to the next (making and removing a
        # cgroup per job costs more than the job's own start); named for this runner,
        # so they never meet the slots of an earlier runner whose jobs still run
        self._slots: dict[str, str] = {}  # slot name -> its cgroup.procs file
        self._free: list[str] = []
        self._pending: dict[tuple[int, int], str] = {}  # (index, trial) -> slot, until started

    @property
    def mode(self) -> str:
        self._setup()
        return f"cgroup v{self.jail.version}" if self.jail else "subreaper"

    def _setup(self) -> None:
        if not self._ready and self.enabled:
            self._ready = True
            self.jail = CgroupJail.find(self.token)
            if self.jail is None:
                self._fall_back()

    def _fall_back(self) -> None:
        if self.jail is not None:
            self.jail.close(0)
            self.jail = None
        self.reaper = Reaper(self.prefix)
        self.reaper.enable()

    # -- jobs starting ----------------------------------------------------------------------
    def launcher_started(self, pid: int) -> None:
        """The launcher runs: move it into the run's folder, which proves we may move
        processes (else fall back to the subreaper)."""
        self._setup()
        self._skip.add(pid)
        if self.jail is not None and not self.jail.enter(LAUNCHER_CG, pid):
            self._fall_back()

    def _take_slot(self) -> str:
        """A free slot, made if none is free ('' if it cannot be made)."""
        assert self.jail is not None
        if self._free:
            return self._free.pop()
        name = f"r{os.getpid()}.{len(self._slots)}"
        procs = self.jail.prepare(name)
        if not procs:
            return ""
        self._slots[name] = procs
        return name

    def procs_file(self, index: int, trial: int) -> str:
        """The cgroup.procs file the executor moves the job into before its exec
        ('' for none)."""
        self._setup()
        if self.jail is None:
            return ""
        name = self._take_slot()
        if not name:
            return ""
        self._pending[(index, trial)] = name
        return self._slots[name]

    def started(self, jid: str, index: int, trial: int, pid: int | None = None) -> None:
        """A job of this runner started; `pid` given: move it into its cgroup now (a
        direct spawn: what it forked before the move is not contained)."""
        if not self.enabled:
            return
        if self.jail is not None:
            name = self._pending.pop((index, trial), None) or self._take_slot()
            if name:
                self._groups[jid] = name
                if pid is not None:
                    self.jail.enter(name, pid)
        if pid is not None:
            self._skip.add(pid)
        self._keys[jid] = (str(index), str(trial))

    def adopt(self, jid: str, pid: int) -> None:
        """A live job of an earlier runner (or one `xqdecl kill` cancels)."""
        if not self.enabled:
            return
        self._setup()
        if self.jail is not None:
            name = self.jail.of_pid(pid)
            if name:
                self._groups[jid] = name
        # a wrapper by its command line; a job the executor started directly by its env
        self._keys[jid] = wrapper_key(pid, self.script_prefix) or job_key(pid, self.prefix)

    # -- jobs ending ------------------------------------------------------------------------
    def ended(self, jid: str, pid: int | None) -> None:
        """The job's wrapper is gone (or killed): end whatever it left. `pid`: the
        wrapper's, whose process group is killed too where no cgroup holds the job."""
        if jid not in self._keys:
            return  # ended already, or never ours
        del self._keys[jid]
        name = self._groups.pop(jid, None)
        if name is not None and self.jail is not None:
            mine = name in self._slots
            self.jail.kill(name, remove=not mine)
            if mine:
                self._free.append(name)
            return
        if pid is not None:
            self._wrappers[pid] = jid.partition(".")[2]
            self._kill_groups()
        if self.reaper is not None:
            self._collect()

    def tracked(self, jid: str) -> bool:
        return jid in self._keys

    def sweep(self) -> None:
        """Once per runner, after re-attaching: end what jobs that ended meanwhile left
        (cgroups of this run that no live job holds; without cgroups, processes whose
        environment names such a job)."""
        if self._swept or not self.enabled:
            return
        self._swept = True
        self._setup()
        if self.jail is not None:
            held = set(self._groups.values())
            for name in self.jail.names():
                if name not in held:
                    self.jail.kill(name)
        elif self.reaper is not None:
            live = {k for k in self._keys.values() if k}
            sweep_processes(self.prefix, lambda key: key in live)

    def _kill_groups(self) -> None:
        """Kill the process group of each ended wrapper that exited: while a group has
        members its id is given to no new process, so a pid that is free, or still the
        wrapper's zombie, names only what the job left in its group."""
        for pid, ticks in list(self._wrappers.items()):
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                fields = []
            if fields and fields[19].decode() != ticks:
                del self._wrappers[pid]  # the pid went to another process: no group left
                continue
            if fields and fields[0] != b"Z":
                continue  # the wrapper is still finishing
            del self._wrappers[pid]
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)

    def tick(self) -> None:
        """Cheap upkeep, at most once a second: remove emptied cgroups, collect orphans."""
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + 1.0
        if self.jail is not None:
            self.jail.tidy()
        elif self.reaper is not None:
            self._collect()
        if self._wrappers:
            self._kill_groups()

    def _collect(self) -> None:
        assert self.reaper is not None
        live = {k for k in self._keys.values() if k}
        self.reaper.collect(lambda key: key in live, self._skip)

    def close(self) -> None:
        """The runner stops: remove what was killed; the subreaper ends what it can."""
        if self.jail is not None:
            for name in self._free:  # empty slots go; a slot a job still runs in stays
                self.jail.kill(name)
            self._free.clear()
            self.jail.close()
        deadline = time.monotonic() + 2.0
        while self._wrappers and time.monotonic() < deadline:
            self._kill_groups()
            if self._wrappers:
                time.sleep(0.02)
        if self.reaper is not None:
            live = {k for k in self._keys.values() if k}
            while self.reaper.collect(lambda key: key in live, self._skip) and (
                    time.monotonic() < deadline):
                time.sleep(0.02)  # the killed ones are reaped on the next pass
            self.reaper.disable()
