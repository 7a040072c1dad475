"""Running one scheduler command: bounded in time, never a hang, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from xqdecl.errors import BackendError


async def run_command(
    argv: Sequence[str], timeout: float, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `argv`.

    A command that cannot start or does not answer within `timeout` seconds
    raises BackendError (the runner retries with back-off); a command that
    answers with a non-zero exit code is the caller's to judge.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise BackendError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise BackendError(f"{argv[0]} did not answer within {timeout:g} s") from None
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
