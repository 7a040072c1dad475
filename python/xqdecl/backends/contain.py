"""Containment of local jobs: everything a job started ends with the job.

Two ways, chosen once per run by `LocalBackend`:

- `CgroupJail` (where this machine lets the runner write a cgroup hierarchy,
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
import hashlib
import os
import signal
import time
from pathlib import Path

from xqdecl.backends.reaper import JobKey, Reaper, job_key, sweep_processes, wrapper_key

#: env XQDECL_CONTAIN: "auto" (cgroup where possible, else the subreaper) or "reaper"
CONTAIN_ENV = "XQDECL_CONTAIN"
#: env XQDECL_CGROUP_ROOT: a cgroup folder to hold xqdecl's cgroups (default: the hierarchy's root)
ROOT_ENV = "XQDECL_CGROUP_ROOT"
LAUNCHER_CG = "launcher"  # the launcher's own cgroup (moving it there probes the permission)


def run_token(run: str, rundir: Path) -> str:
    """A folder name for one run directory: its run name and a hash of its path."""
    digest = hashlib.sha1(os.path.realpath(rundir).encode()).hexdigest()[:12]
    return f"{run}.{digest}"


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, options) of /proc/self/mounts."""
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 4:
                out.append((parts[1].replace("\\040", " "), parts[2], parts[3]))
    return out


class CgroupJail:
    """The cgroups of one run's jobs, under `base` (`<hierarchy>/xqdecl/<token>`)."""

    def __init__(self, base: Path, version: int, mount: Path):
        self.base = base
        self.version = version  # 2: unified hierarchy; 1: the v1 freezer hierarchy
        self.mount = mount
        self.procs_name = "cgroup.procs"
        self._dying: set[str] = set()  # killed, not yet removed (processes still exiting)

    @classmethod
    def find(cls, token: str) -> CgroupJail | None:
        """The jail of this run, where a cgroup folder can be made; else None."""
        if os.environ.get(CONTAIN_ENV, "auto") == "reaper":
            return None
        candidates: list[tuple[Path, int]] = []
        for point, fstype, opts in _mounts():
            if fstype == "cgroup2":
                candidates.insert(0, (Path(point), 2))
            elif fstype == "cgroup" and "freezer" in opts.split(","):
                candidates.append((Path(point), 1))
        custom = os.environ.get(ROOT_ENV)
        for mount, version in candidates:
            parent = Path(custom) if custom else mount / "xqdecl"
            if custom and not str(parent).startswith(str(mount) + "/"):
                continue
            try:
                (parent / token).mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            return cls(parent / token, version, mount)
        return None

    # -- one job ----------------------------------------------------------------------------
    def prepare(self, name: str) -> str:
        """Make the job's cgroup; the file a process writes its pid to, to enter it ('' if
        it cannot be made)."""
        path = self.base / name
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            return ""
        self._dying.discard(name)
        return f"{path}/{self.procs_name}"

    def enter(self, name: str, pid: int) -> bool:
        """Move `pid` into the cgroup `name` (made if needed)."""
        procs = self.prepare(name)
        if not procs:
            return False
        try:
            with open(procs, "w", encoding="ascii") as fh:
                fh.write(str(pid))
        except OSError:
            return False
        return True

    def of_pid(self, pid: int) -> str | None:
        """The name of the job cgroup of this run that holds `pid`, if any."""
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError:
            return None
        rel = "/" + str(self.base.relative_to(self.mount))
        for line in lines:
            _, controllers, path = line.split(":", 2)
            ours = controllers == "" if self.version == 2 else "freezer" in controllers.split(",")
            if ours and path.startswith(rel + "/"):
                name = path[len(rel) + 1 :]
                return name if "/" not in name and name != LAUNCHER_CG else None
        return None

    def names(self) -> list[str]:
        """The job cgroups of this run that exist now."""
        try:
            return [e.name for e in os.scandir(self.base) if e.is_dir() and e.name != LAUNCHER_CG]
        except OSError:
            return []

    def kill(self, name: str, remove: bool = True) -> None:
        """Kill every process in the cgroup `name`, then remove it (later if they linger)
        unless it is kept for the next job."""
        path = self.base / name
        if self.version == 2:
            try:
                with open(path / "cgroup.kill", "w", encoding="ascii") as fh:
                    fh.write("1")
            except FileNotFoundError:
                return
            except OSError:
                self._kill_each(path)  # a kernel before 5.14: no cgroup.kill
        else:
            self._freeze_kill(path)
        if remove:
            self._remove(name)

    def _kill_each(self, path: Path) -> None:
        for _ in range(20):  # a fork racing the kill adds a pid: read again until empty
            pids = self._pids(path)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def _freeze_kill(self, path: Path) -> None:
        state = path / "freezer.state"
        try:
            state.write_text("FROZEN")
        except OSError:
            self._kill_each(path)
            return
        deadline = time.monotonic() + 1.0  # FREEZING until every task is stopped
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if state.read_text().strip() == "FROZEN":
                    break
            time.sleep(0.005)
        for pid in self._pids(path):  # frozen: none can fork meanwhile
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            state.write_text("THAWED")  # the kills land as they thaw

    def _pids(self, path: Path) -> list[int]:
        try:
            return [int(p) for p in (path / self.procs_name).read_text().split()]
        except (OSError, ValueError):
            return []

    def _remove(self, name: str) -> None:
        try:
            os.rmdir(self.base / name)
        except FileNotFoundError:
            self._dying.discard(name)
        except OSError:  # busy: its processes are still exiting
            self._dying.add(name)
        else:
            self._dying.discard(name)

    def tidy(self) -> None:
        """Remove the killed cgroups whose processes are gone by now."""
        for name in list(self._dying):
            self._remove(name)

    def close(self, limit: float = 2.0) -> None:
        """Remove what was killed (waiting up to `limit` s), then the run's folder if empty."""
        deadline = time.monotonic() + limit
        while self._dying and time.monotonic() < deadline:
            self.tidy()
            if self._dying:
                time.sleep(0.02)
        with contextlib.suppress(OSError):
            os.rmdir(self.base / LAUNCHER_CG)
        with contextlib.suppress(OSError):
            os.rmdir(self.base)


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
