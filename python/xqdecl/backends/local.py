"""The embedded default backend: jobs run as process groups on this machine.

Each wrapper is started by a launcher in a process group of its own (so a
cancel reaches everything it started) and, where the machine allows, in a
cgroup of its own (contain.py: whatever the job started ends with it). Its exit is
noticed through a pidfd registered with the event loop: no polling of the
process table, no thread per job, no sleep. The exit status is kept only as the
scheduler's view; the job's rc file stays the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

from xqdecl.backends.base import Backend, BackendContext, JobState, Liveness, Submission, Submitted
from xqdecl.backends.contain import Containment
from xqdecl.spec import LocalOptions
from xqdecl.spec.schedulers import SchedulerBase

P = TypeVar("P", bound=SchedulerBase)


def _start_ticks(pid: int) -> str:
    """The process start time in clock ticks since boot ('' if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return data[data.rindex(b")") + 2 :].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return ""


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


#: A long-lived bash that starts wrappers for the runner. Each record on its stdin
#: is "<trial>\\0<script>\\0<cgroup.procs or ''>\\0"; it answers with the pid. Its
#: `&` forks without waiting for the exec (a posix_spawn from Python blocks the
#: event loop until the child is scheduled: ~5 ms with 64 busy jobs on 2 cores),
#: `set -m` gives each wrapper a process group of its own, and the child enters
#: the job's cgroup before the exec, so nothing of the job starts outside it.
LAUNCHER = r"""
set -m
while IFS= read -r -d '' trial && IFS= read -r -d '' script && IFS= read -r -d '' cg; do
  { [ -z "$cg" ] || echo "$BASHPID" >"$cg"; exec bash "$script" "$trial"; } \
    </dev/null >/dev/null 2>&1 &
  printf '%s\n' "$!"
done
"""


class _Launcher:
    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls, bash: str) -> _Launcher:
        proc = await asyncio.create_subprocess_exec(
            bash, "-c", LAUNCHER, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        return cls(proc)

    async def spawn(self, items: list[tuple[int, str, str]]) -> list[int]:
        """Start `bash script trial` in cgroup `cg` for each item; their pids, in order."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write(b"".join(f"{t}\0{s}\0{c}\0".encode() for t, s, c in items))
            await self.proc.stdin.drain()
            pids = []
            for _ in items:
                line = await self.proc.stdout.readline()
                if not line:
                    raise OSError("the job launcher ended")
                pids.append(int(line))
            return pids

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)


def pid_alive(jid: str) -> bool:
    """A job of an earlier runner: alive when its pid has the recorded start time."""
    pid_s, _, ticks = jid.partition(".")
    if not pid_s.isdigit():
        return False
    return bool(ticks) and _start_ticks(int(pid_s)) == ticks


def jid_from_start_info(info: str) -> str | None:
    """'host pid epoch' of a wrapper on this host -> its jid, if that process lives."""
    parts = info.split()
    if len(parts) < 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    pid = int(parts[1])
    ticks = _start_ticks(pid)
    if not ticks:
        return None
    try:
        started = _boot_time() + int(ticks) / os.sysconf("SC_CLK_TCK")
        recorded = float(parts[2])
    except (ValueError, OSError):
        return None
    # the wrapper wrote its start line right after it began: the times agree
    return f"{pid}.{ticks}" if abs(started - recorded) < 5 else None


class ProcessBackend(Backend[P]):
    """Jobs as process groups of this machine (the local backend; the container
    backend's runtime clients)."""

    arrays = False
    query_interval = 0.0  # answered from memory: every cycle costs nothing
    lost_grace = 0.0  # the wrapper writes its rc before it exits; no shared filesystem lag
    poll_interval = 1.0
    #: contain each job (contain.py): True for jobs that run on this machine, as is
    contain_jobs: ClassVar[bool] = False

    @classmethod
    def default_forks(cls) -> int:
        return os.cpu_count() or 2

    # how a job of an earlier runner is found again (the container backend overrides them)
    _alive = staticmethod(pid_alive)
    _from_start_info = staticmethod(jid_from_start_info)

    def __init__(self, options: P, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        self._bash = shutil.which("bash") or "/bin/bash"
        self._children: dict[str, int] = {}  # jid -> pid of our own children
        self._launched: dict[str, int] = {}  # jid -> pid started by the launcher
        self._launcher: _Launcher | None = None
        self._launcher_failed = False
        self._adopted: dict[str, int] = {}  # jid -> pid of jobs of an earlier runner
        self._exited: dict[str, JobState] = {}
        self._fds: dict[int, int] = {}  # pid -> pidfd
        self._env = dict(os.environ)
        self._contain = Containment(ctx.run, ctx.rundir, ctx.mounted_rundir,
                                    enabled=self.contain_jobs)
        self._released = False  # a runner finished a job: at the end, sweep if nothing did
        self._devnull = os.open(os.devnull, os.O_RDWR)
        self._actions = [
            (os.POSIX_SPAWN_DUP2, self._devnull, 0),
            (os.POSIX_SPAWN_DUP2, self._devnull, 1),
            (os.POSIX_SPAWN_DUP2, self._devnull, 2),
        ]

    # -- submit -----------------------------------------------------------------
    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        if not self._launcher_failed:
            try:
                if self._launcher is None:
                    self._launcher = await _Launcher.start(self._bash)
                    self._contain.launcher_started(self._launcher.proc.pid)
                    self._contain.sweep()
                cgs = [self._contain.procs_file(s.index, s.trial) for s in batch]
                pids = await self._launcher.spawn([
                    (s.trial, str(s.script), cg) for s, cg in zip(batch, cgs, strict=True)])
            except (OSError, ValueError) as exc:
                self._launcher_failed = True  # start them one by one from here on
                self.ctx.message(f"warning: the job launcher failed ({exc}); spawning directly")
            else:
                return [self._track_launched(sub, pid) for sub, pid in zip(
                    batch, pids, strict=True)]
        self._contain.sweep()
        return self._spawn(batch)

    def _track_launched(self, sub: Submission, pid: int) -> Submitted:
        jid = f"{pid}.{_start_ticks(pid)}"
        self._launched[jid] = pid
        self._contain.started(jid, sub.index, sub.trial)
        # gone already, or no pidfd: liveness falls back to /proc
        self._watch_exit(pid, self._on_launched_exit, jid)
        return Submitted(sub.index, jid)

    def _watch_exit(self, pid: int, on_exit: Callable[[str, int], None], jid: str) -> None:
        """Call `on_exit(jid, pid)` when the process ends (nothing without a pidfd)."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        self._fds[pid] = fd
        asyncio.get_running_loop().add_reader(fd, on_exit, jid, pid)

    def _unwatch_exit(self, pid: int) -> None:
        fd = self._fds.pop(pid, -1)
        if fd >= 0:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _on_launched_exit(self, jid: str, pid: int) -> None:
        self._unwatch_exit(pid)
        with contextlib.suppress(OSError):  # what the job left in its group goes with it
            os.killpg(pid, signal.SIGKILL)
        self._contain.ended(jid, None)  # and what it left elsewhere in its cgroup
        self._launched.pop(jid, None)
        self._exited[jid] = JobState(Liveness.DONE, "exited")
        self.ctx.wake()

    def _spawn(self, batch: Sequence[Submission]) -> list[Submitted]:
        results = []
        for sub in batch:
            try:
                pid = os.posix_spawn(
                    self._bash,
                    ["bash", str(sub.script), str(sub.trial)],
                    self._env,
                    file_actions=self._actions,
                    setsid=True,
                )
            except OSError as exc:
                results.append(Submitted(sub.index, None, f"could not start bash: {exc}"))
                continue
            jid = f"{pid}.{_start_ticks(pid)}"
            self._children[jid] = pid
            self._contain.started(jid, sub.index, sub.trial, pid)
            # no pidfd (old kernel): reaped on every query instead
            self._watch_exit(pid, self._on_exit, jid)
            results.append(Submitted(sub.index, jid))
        return results

    def _on_exit(self, jid: str, pid: int) -> None:
        self._unwatch_exit(pid)
        self._reap(jid, pid, block=True)
        self.ctx.wake()

    def _reap(self, jid: str, pid: int, block: bool) -> bool:
        try:
            got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            got, status = pid, 0
        if got == 0:
            return False
        # whatever the job left behind in its process group goes with it
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        self._contain.ended(jid, None)
        self._children.pop(jid, None)
        if os.WIFSIGNALED(status):
            state = JobState(Liveness.FAILED, _signal_name(os.WTERMSIG(status)))
        else:
            code = os.waitstatus_to_exitcode(status)
            state = JobState(Liveness.DONE if code == 0 else Liveness.FAILED, f"exit {code}")
        self._exited[jid] = state
        return True

    # -- query ------------------------------------------------------------------
    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        self._contain.sweep()
        self._contain.tick()
        out: dict[str, JobState] = {}
        running = JobState(Liveness.RUNNING)
        for jid in jids:
            state = self._exited.pop(jid, None)
            if state is not None:
                out[jid] = state
                continue
            pid = self._children.get(jid)
            if pid is not None:
                if pid in self._fds or not self._reap(jid, pid, block=False):
                    out[jid] = running
                else:
                    out[jid] = self._exited.pop(jid)
            elif (jid in self._launched and self._launched[jid] in self._fds) or self._alive(jid):
                out[jid] = running
            elif jid in self._adopted:  # an earlier runner's job ended: so does what it left
                self._contain.ended(jid, self._adopted.pop(jid))
        return out

    async def reattach(self, jid: str | None, start_info: str) -> str | None:
        if not jid:
            jid = self._from_start_info(start_info)
        if jid and self._alive(jid):
            pid = int(jid.partition(".")[0])
            self._adopted[jid] = pid
            self._contain.adopt(jid, pid)
            return jid
        return None

    async def reattach_many(self, items: Sequence[tuple[str | None, str]]) -> list[str | None]:
        found = [await self.reattach(jid, info) for jid, info in items]
        self._contain.sweep()  # the live ones are known: the rest of the run's cgroups ended
        return found

    # -- cancel -----------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        pids = []
        for jid in jids:
            pid = self._pid_of(jid)
            if pid is None and self._alive(jid):  # `xqdecl kill` with no runner
                pid = int(jid.partition(".")[0])
                self._contain.adopt(jid, pid)
            if pid is None:
                continue
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGTERM)
            pids.append((jid, pid))
        if not pids:
            return
        cancelled = list(pids)
        deadline = asyncio.get_running_loop().time() + self.cancel_grace
        while pids and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            pids = [(j, p) for j, p in pids if self._still_there(j, p)]
        for _jid, pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for jid, pid in cancelled:  # children that ignored the TERM or left the group
            self._contain.ended(jid, pid)

    async def kill_now(self, jids: Sequence[str]) -> None:
        for jid in jids:
            pid = self._pid_of(jid)
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                self._contain.ended(jid, pid)

    def _pid_of(self, jid: str) -> int | None:
        return self._children.get(jid) or self._launched.get(jid) or self._adopted.get(jid)

    def _still_there(self, jid: str, pid: int) -> bool:
        if jid in self._children:
            return pid in self._fds or not self._reap(jid, pid, block=False)
        if jid in self._launched:
            return pid in self._fds
        try:
            os.killpg(pid, 0)
        except OSError:
            return False
        return True

    def release(self, jid: str) -> None:
        self._released = True
        self._exited.pop(jid, None)
        pid = self._adopted.pop(jid, None)
        if self._contain.tracked(jid):  # the runner is done with it: so is its cgroup
            self._contain.ended(jid, pid)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in self._fds.values():
            loop.remove_reader(fd)
            os.close(fd)
        self._fds.clear()
        with contextlib.suppress(OSError):
            os.close(self._devnull)
        if self._launcher is not None:
            await self._launcher.close()
            self._launcher = None
        if self._released:  # e.g. a rerun that only found the rc files of ended jobs
            self._contain.sweep()
        self._contain.close()


class LocalBackend(ProcessBackend[LocalOptions]):
    """`type = "local"`: the embedded default."""

    contain_jobs = True
