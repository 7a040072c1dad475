"""What a run reports while it goes (`Reporter`) and when it ends (`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from xqdecl.errors import ExitCode
from xqdecl.store.journal import JobRow


@dataclass
class RunResult:
    """What a finished (or stopped) run reports."""

    run: str
    rundir: str
    exit_code: ExitCode
    counts: dict[str, int]
    failed: list[JobRow] = field(default_factory=list)
    elapsed: float = 0.0
    #: jobs that needed more than one attempt in this run
    retried: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK


class Reporter:
    """Receives progress from the runner; the CLI's output layer subclasses it."""

    def start(self, run: str, total: int, counts: dict[str, int]) -> None: ...
    def start_groups(self, names: list[str], totals: list[int],
                     counts: list[dict[str, int]]) -> None:
        """Per-group counts; the dicts stay live (read them when redrawing)."""
    def progress(self, counts: dict[str, int]) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self, result: RunResult) -> None: ...


def exit_code(stop: ExitCode | None, counts: dict[str, int], failed: int) -> ExitCode:
    """Interrupted and infrastructure stops win; else any job not succeeded is a 1."""
    if stop in (ExitCode.INTERRUPTED, ExitCode.BACKEND):
        return stop
    if failed or counts.get("cancelled") or counts.get("queued"):
        return ExitCode.JOBS_FAILED
    return ExitCode.OK
