"""Running one scheduler command: the only way backends run one (sbatch, squeue,
qsub, ssh, podman stop, gcloud ...). Bounded in time and in output, never a hang,
never a traceback: a command that cannot start, does not answer in time or
prints more than we keep raises `SchedulerError`, which the runner retries with
back-off by its type. A command that answers with a non-zero exit code is the
caller's to judge (`Completed.error` makes the message), unless `check` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Sequence
from typing import NamedTuple

from xqdecl.errors import SchedulerError

#: most bytes of standard output kept (a squeue of 100,000 jobs is a few MB)
MAX_OUT = 256 << 20
#: most bytes of standard error kept (the end of it: that is where the cause is)
MAX_ERR = 64 << 10


class Completed(NamedTuple):
    """A command that ran to its end: (exit code, stdout, stderr)."""

    rc: int
    out: str
    err: str

    def said(self) -> str:
        """The last line worth showing: of stderr, else stdout, else the exit code."""
        for text in (self.err, self.out):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.rc}"

    def error(self, what: str, limit: int = 300) -> SchedulerError:
        """The failure of command `what` as an error to raise: `<what> failed: <stderr>`."""
        text = self.err.strip() or f"exit status {self.rc}"
        return SchedulerError(f"{what} failed: {text[-limit:]}")


async def run_command(
    argv: Sequence[str], timeout: float, *, stdin: bytes | None = None, check: bool = False,
    detached: bool = False,
) -> Completed:
    """Run `argv` for at most `timeout` seconds; its exit code and output.

    `check`: a non-zero exit code raises SchedulerError too. `detached`: the
    command may leave a process behind that keeps its output open (`ssh -f`):
    its output goes to a file, and the command's own exit ends the wait.
    """
    name = os.path.basename(argv[0]) if argv else "?"
    if detached:
        done = await _detached(argv, timeout, name)
    else:
        done = await _piped(argv, timeout, stdin, name)
    if check and done.rc != 0:
        raise done.error(name)
    return done


async def _start(argv: Sequence[str], name: str, **streams: object) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(*argv, **streams)  # type: ignore[arg-type]
    except OSError as exc:
        raise SchedulerError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


async def _within(proc: asyncio.subprocess.Process, work: asyncio.Future[object] | object,
                  timeout: float, name: str) -> None:
    """Await `work` for at most `timeout` s; kill the process on a timeout or a cancel."""
    try:
        await asyncio.wait_for(work, timeout)  # type: ignore[arg-type]
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise SchedulerError(f"{name} did not answer within {timeout:g} s") from None


async def _piped(argv: Sequence[str], timeout: float, stdin: bytes | None, name: str
                 ) -> Completed:
    pipe = asyncio.subprocess.PIPE
    proc = await _start(argv, name, stdin=pipe if stdin is not None else asyncio.subprocess.DEVNULL,
                        stdout=pipe, stderr=pipe)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    over = False

    async def feed() -> None:
        if proc.stdin is not None and stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            proc.stdin.close()

    async def read_out(stream: asyncio.StreamReader) -> None:
        nonlocal over
        while chunk := await stream.read(1 << 16):
            if len(out) + len(chunk) > MAX_OUT:
                over = True  # read on (the command must not block), keep nothing more
            else:
                out.extend(chunk)

    async def read_err(stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(1 << 16):
            err.extend(chunk)
            del err[: max(0, len(err) - MAX_ERR)]

    async def everything() -> None:
        await asyncio.gather(feed(), read_out(proc.stdout), read_err(proc.stderr))  # type: ignore[arg-type]
        await proc.wait()

    await _within(proc, everything(), timeout, name)
    if over:
        raise SchedulerError(f"{name} printed more than {MAX_OUT >> 20} MiB")
    return Completed(proc.returncode or 0, out.decode(errors="replace"),
                     err.decode(errors="replace"))


async def _detached(argv: Sequence[str], timeout: float, name: str) -> Completed:
    with tempfile.TemporaryFile() as log:
        proc = await _start(argv, name, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                            stderr=log)
        await _within(proc, proc.wait(), timeout, name)
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - MAX_ERR))
        said = log.read().decode(errors="replace")
    return Completed(proc.returncode or 0, "", said)
