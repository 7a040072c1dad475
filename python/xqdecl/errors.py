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
    """An infrastructure problem: the run cannot go on for reasons outside the jobs."""

    exit_code = ExitCode.BACKEND


class SchedulerError(BackendError):
    """A scheduler command failed, timed out or could not be reached.

    Transient by nature: the runner retries it with back-off and gives up
    (exit 4) only after several failures in a row.
    """


class StoreError(BackendError):
    """The run directory (or its bucket) cannot be read or written: deleted,
    read-only, full. Never retried and never blamed on a job: the run stops
    submitting and ends with exit 4, and a rerun picks up where it stood."""


class UnknownJobError(XqdeclError):
    """A job index or name that the run does not have."""

    exit_code = ExitCode.USAGE
