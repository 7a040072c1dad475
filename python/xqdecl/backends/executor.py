"""The client side of the run's job executor (`python -m xqdecl.worker`, the Rust
core in rust/exec): starting it, the job and cancel records it reads, and the
`s`/`e`/`!` lines it answers with. The local backend drives it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable

from xqdecl.backends.base import KILL_GRACE, Submission


def job_record(sub: Submission, cgroup: str) -> bytes:
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


class Executor:
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
              on_message: Callable[[str], None]) -> Executor:
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
