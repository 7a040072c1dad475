"""Exit codes and the exceptions that map to them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `xqdecl` command (see the contract)."""

    OK = 0
    JOBS_FAILED = 1
    USAGE = 2
    INVALID_SPEC = 3
    BACKEND = 4
    INTERRUPTED = 130


class XqdeclError(Exception):
    """An error meant for the user: printed as one message, never a traceback."""

    exit_code: ExitCode = ExitCode.BACKEND


class SpecError(XqdeclError):
    """The spec is invalid. `issues` holds one formatted line per problem."""

    exit_code = ExitCode.INVALID_SPEC

    def __init__(self, issues: list[str] | str):
        self.issues = [issues] if isinstance(issues, str) else list(issues)
        super().__init__("\n".join(self.issues))


class BackendError(XqdeclError):
    """A scheduler or infrastructure problem (command failed, timed out, unreachable)."""

    exit_code = ExitCode.BACKEND


class UnknownJobError(XqdeclError):
    """A job index or name that the run does not have."""

    exit_code = ExitCode.USAGE
