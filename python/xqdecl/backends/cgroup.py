"""The cgroups of one run's local jobs (`CgroupJail`): finding a writable
hierarchy (cgroup v2, else the v1 freezer), making, entering, killing and
removing a job's cgroup. How the local backend uses them is in contain.py."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from pathlib import Path

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
