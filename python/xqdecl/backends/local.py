"""The embedded default backend: jobs run as process groups on this machine.

Jobs are started by the run's executor (`xqdecl.worker`, the Rust core in
rust/exec): a job that needs no wrapper (no prescript, postscript or plugin
snippet) runs as its command alone, the executor writing its files; any other
job runs its wrapper. Each runs in a process group of its own (so a cancel
reaches everything it started) and, where the machine allows, in a cgroup of
its own (contain.py: whatever the job started ends with it). The executor tells
the runner of each end once the job's rc file is in place: no polling of the
process table, no thread per job, no sleep. The exit status is kept only as the
scheduler's view; the job's rc file stays the truth. Where the executor cannot
run, wrappers are spawned one by one (the container backend always does that).
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

from xqdecl.backends.base import (
    Backend,
    BackendContext,
    Change,
    JobState,
    Liveness,
    Submission,
    Submitted,
)
from xqdecl.backends.contain import Containment
from xqdecl.backends.executor import Executor, job_record
from xqdecl.spec import LocalOptions
from xqdecl.spec.schedulers import SchedulerBase
from xqdecl.store.layout import write_atomic

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
        self._launched: dict[str, int] = {}  # jid -> pid of a job the executor started
        self._tags: dict[tuple[int, int], str] = {}  # (index, trial) -> jid, of those
        self._ended_early: set[tuple[int, int]] = set()  # told ended before its start
        self._news: list[Change] = []  # starts and ends the executor told, for the watcher
        self._wrapped: set[tuple[int, int]] = set()  # jobs run through their wrapper
        self._executor: Executor | None = None
        self._executor_failed = False
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
        if not self._executor_failed:
            try:
                if self._executor is None:
                    self._executor = Executor.start(self._on_end, self.ctx.message)
                    self._contain.launcher_started(self._executor.pid)
                    self._contain.sweep()
                cgs = [self._contain.procs_file(s.index, s.trial) for s in batch]
                self._wrapped.update((s.index, s.trial) for s in batch if s.direct is None)
                started = await self._executor.spawn([
                    job_record(s, cg) for s, cg in zip(batch, cgs, strict=True)])
            except (OSError, ValueError) as exc:
                self._executor_failed = True  # start them one by one from here on
                self.ctx.message(f"warning: the job executor failed ({exc}); spawning directly")
            else:
                return [self._track_launched(sub, pid, ticks) for sub, (pid, ticks) in zip(
                    batch, started, strict=True)]
        self._contain.sweep()
        return self._spawn(batch)

    def take_news(self) -> list[Change]:
        news, self._news = self._news, []
        return news

    def _track_launched(self, sub: Submission, pid: int, ticks: str) -> Submitted:
        tag = (sub.index, sub.trial)
        jid = f"{pid}.{ticks}" if pid else f"none.{sub.index}.{sub.trial}"
        self._contain.started(jid, sub.index, sub.trial)
        if pid:
            self._news.append((sub.index, sub.trial, True, None))
            self._launched[jid] = pid
            self._tags[tag] = jid
        if tag in self._ended_early or not pid:
            self._ended(jid)
            self.ctx.wake()
        self._ended_early.discard(tag)
        return Submitted(sub.index, jid)

    def _on_end(self, index: int, trial: int, rc: int, recorded: bool) -> None:
        """The executor says a job ended (its rc file, if it has one, is in place).
        Its rc is news only when recorded: else the files decide (a run directory
        that cannot be written is the run's problem, not the job's)."""
        if (index, trial) in self._wrapped:
            self._wrapped.discard((index, trial))  # the wrapper's own files tell its rc
        elif recorded:
            self._news.append((index, trial, True, rc))
        jid = self._tags.pop((index, trial), None)
        if jid is None:  # its start is not handled yet
            self._ended_early.add((index, trial))
            return
        self._ended(jid)
        self.ctx.wake()

    def _ended(self, jid: str) -> None:
        self._contain.ended(jid, None)  # what the job left in its cgroup ends with it
        self._launched.pop(jid, None)
        self._exited[jid] = JobState(Liveness.DONE, "exited")

    def _executor_alive(self) -> bool:
        return self._executor is not None and not self._executor.ended

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

    def _spawn(self, batch: Sequence[Submission]) -> list[Submitted]:
        results = []
        for sub in batch:
            try:
                if sub.direct is not None:  # no executor: it runs through its wrapper
                    os.makedirs(sub.script.parent, exist_ok=True)
                    write_atomic(sub.script, sub.direct.script_text)
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
            elif (jid in self._launched and self._executor_alive()) or self._alive(jid):
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
        tag_of = {jid: tag for tag, jid in self._tags.items()} if self._tags else {}
        via_executor = [tag_of[j] for j in jids if j in tag_of]
        if via_executor and self._executor is not None:
            # the executor sends the TERM and KILLs after its own grace, even if
            # this runner dies meanwhile
            with contextlib.suppress(OSError):
                await self._executor.cancel(via_executor)
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
            return self._executor_alive() or self._alive(jid)
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
        if self._executor is not None:
            await self._executor.close()
            self._executor = None
        if self._released:  # e.g. a rerun that only found the rc files of ended jobs
            self._contain.sweep()
        self._contain.close()


class LocalBackend(ProcessBackend[LocalOptions]):
    """`type = "local"`: the embedded default."""

    contain_jobs = True
    direct_jobs = True
