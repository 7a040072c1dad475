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
import sys
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

from xqdecl.backends.base import (
    KILL_GRACE,
    Backend,
    BackendContext,
    Change,
    JobState,
    Liveness,
    Submission,
    Submitted,
)
from xqdecl.backends.contain import Containment
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


def _record(sub: Submission, cgroup: str) -> bytes:
    """One job for the executor (xqdecl.worker; rust/exec): NUL-ended fields."""
    d = sub.direct
    if d is None:
        fields = ["J", str(sub.index), str(sub.trial), "wrapper", "", "", "", "", "", cgroup,
                  "", "3", "bash", str(sub.script), str(sub.trial), "0"]
    else:
        timeout = "" if sub.timeout is None else repr(float(sub.timeout))
        fields = ["J", str(sub.index), str(sub.trial), "direct", d.metadir, d.events,
                  d.cwd or "", timeout, d.timeout_label, cgroup, d.stamp, str(len(d.argv)), *d.argv,
                  str(len(d.env)), *(f"{k}={v}" for k, v in d.env.items())]
    return b"".join(os.fsencode(f) + b"\0" for f in fields)


class _Executor:
    """The run's job executor: a small process of its own session that starts the jobs
    the runner hands it (a direct job as its command alone, else its wrapper), writes
    a direct job's files, and tells the runner `s <i> <t> <pid> <ticks>` when a job
    started and `e <i> <t> <rc>` once it ended and its rc file is in place. It outlives
    a killed runner until its own jobs ended, so their rc files are still written.

    Plain pipes and a reader on the event loop: no subprocess object that would
    complain when the runner is done with an executor whose jobs still run."""

    def __init__(self, pid: int, fd_in: int, fd_out: int,
                 on_end: Callable[[int, int, int, bool], None], on_message: Callable[[str], None]):
        self.pid = pid
        self.lock = asyncio.Lock()  # one spawn at a time: starts are told in order
        self._wlock = asyncio.Lock()  # records are written whole
        self.ended = False  # its stdout closed: it ended (or is about to)
        self._fd_in, self._fd_out = fd_in, fd_out
        self._buf = b""
        self._starts: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()
        self._on_end = on_end
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd_out, self._readable)

    @classmethod
    def start(cls, on_end: Callable[[int, int, int, bool], None],
              on_message: Callable[[str], None]) -> _Executor:
        # the package is found where this runner found it, without changing the
        # environment every job inherits from the executor
        boot = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from xqdecl._xqdecl import run_executor; "
                "sys.exit(run_executor(float(sys.argv[1]), sys.argv[2] == 'always'))")
        package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            pid = os.posix_spawn(
                # the runner reads every start and end from its lines: event files
                # only for a runner that comes after this one
                sys.executable, [sys.executable, "-c", boot, package, str(KILL_GRACE), "unheard"],
                os.environ, setsid=True,
                file_actions=[(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1),
                              (os.POSIX_SPAWN_DUP2, devnull, 2)],
            )
        except OSError:
            for fd in (w_in, r_out):
                os.close(fd)
            raise
        finally:
            for fd in (r_in, w_out, devnull):
                os.close(fd)
        os.set_blocking(w_in, False)
        os.set_blocking(r_out, False)
        return cls(pid, w_in, r_out, on_end, on_message)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd_out, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._eof()
            return
        *lines, self._buf = (self._buf + data).split(b"\n")
        for line in lines:
            self._line(line.decode(errors="replace"))

    def _line(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        parts = rest.split()
        try:
            if kind == "s":
                self._starts.put_nowait((int(parts[2]), parts[3]))
            elif kind == "e":  # "-" after the rc: no rc file could be written
                self._on_end(int(parts[0]), int(parts[1]), int(parts[2]), parts[3:] != ["-"])
            elif kind == "!":
                self._on_message(f"warning: job executor: {rest}")
        except (IndexError, ValueError):
            self._on_message(f"warning: the job executor said {line!r}")

    def _eof(self) -> None:
        if not self.ended:
            self.ended = True
            self._loop.remove_reader(self._fd_out)
            self._starts.put_nowait(None)  # whoever waits for a start hears the end
            self._reap()

    def _reap(self) -> bool:
        with contextlib.suppress(ChildProcessError):
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        return True

    async def _write(self, data: bytes) -> None:
        async with self._wlock:
            await self._write_all(data)

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd_in, view):]
            except BlockingIOError:
                ready = self._loop.create_future()
                self._loop.add_writer(self._fd_in, ready.set_result, None)
                try:
                    await ready
                finally:
                    self._loop.remove_writer(self._fd_in)

    async def spawn(self, records: list[bytes]) -> list[tuple[int, str]]:
        """Hand over the jobs; (pid, start ticks) of each, in order (pid 0: it did not
        start, and its end is told at once)."""
        async with self.lock:
            if self.ended:
                raise OSError("the job executor ended")
            await self._write(b"".join(records))
            out = []
            for _ in records:
                got = await self._starts.get()
                if got is None:
                    self._starts.put_nowait(None)
                    raise OSError("the job executor ended")
                out.append(got)
            return out

    async def cancel(self, tags: list[tuple[int, int]]) -> None:
        """Stop these jobs (index, trial): TERM now, KILL after the executor's grace."""
        if not self.ended:
            await self._write(b"".join(f"C\0{i}\0{t}\0".encode() for i, t in tags))

    async def close(self) -> None:
        """No more jobs: it ends once the jobs it runs ended (a runner that lets jobs
        run on does not wait for them; the executor finishes their files alone)."""
        os.close(self._fd_in)
        deadline = self._loop.time() + 0.5
        while not self.ended and self._loop.time() < deadline:
            await asyncio.sleep(0.01)  # its last lines, then its end
        if not self.ended:
            self.ended = True
            self._loop.remove_reader(self._fd_out)
        os.close(self._fd_out)
        while not self._reap() and self._loop.time() < deadline:
            await asyncio.sleep(0.01)


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
        self._tags_of: dict[str, tuple[int, int]] = {}  # and back
        self._ended_early: dict[tuple[int, int], int] = {}  # told ended before its start
        self._news: list[Change] = []  # starts and ends the executor told, for the watcher
        self._wrapped: set[tuple[int, int]] = set()  # jobs run through their wrapper
        self._executor: _Executor | None = None
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
                    self._executor = _Executor.start(self._on_end, self.ctx.message)
                    self._contain.launcher_started(self._executor.pid)
                    self._contain.sweep()
                cgs = [self._contain.procs_file(s.index, s.trial) for s in batch]
                self._wrapped.update((s.index, s.trial) for s in batch if s.direct is None)
                started = await self._executor.spawn([
                    _record(s, cg) for s, cg in zip(batch, cgs, strict=True)])
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
            self._tags_of[jid] = tag
        if tag in self._ended_early or not pid:
            self._ended(jid)
            self.ctx.wake()
        self._ended_early.pop(tag, None)
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
        self._tags_of.pop(jid or "", None)
        if jid is None:  # its start is not handled yet
            self._ended_early[(index, trial)] = rc
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
        via_executor = [self._tags_of[j] for j in jids if j in self._tags_of]
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
