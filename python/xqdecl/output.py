"""One output layer for every command: `cli`, `json` or `quiet`.

Progress and messages go to stderr; tables and JSON go to stdout. In `cli`
mode the live display is one line of per-status counts (never a bar per job):
redrawn in place on a terminal, printed every few seconds otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from xqdecl.journal import STATUSES
from xqdecl.runner import Reporter, RunResult

MODES = ("cli", "json", "quiet")


class Output:
    def __init__(self, mode: str = "cli"):
        self.mode = mode if mode in MODES else "cli"
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = Console(highlight=False, soft_wrap=True)

    def error(self, text: str) -> None:
        """Always shown, whatever the mode: the user must see why it failed."""
        print(text, file=sys.stderr, flush=True)

    def info(self, text: str) -> None:
        if self.mode == "cli":
            self.err.print(text, markup=False)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def print(self, obj: Any) -> None:
        if self.mode == "cli":
            self.out.print(obj)

    def reporter(self) -> Reporter:
        if self.mode == "cli":
            return CliReporter(self)
        return QuietReporter(self)


def counts_line(counts: dict[str, int], total: int) -> str:
    parts = [f"{k} {counts[k]}" for k in STATUSES if counts.get(k)]
    done = sum(counts.get(k, 0) for k in ("succeeded", "failed", "cancelled", "skipped"))
    return f"{done}/{total} done | " + " · ".join(parts)


class QuietReporter(Reporter):
    """json/quiet: no progress; warnings still reach stderr."""

    def __init__(self, out: Output):
        self.out = out

    def message(self, text: str) -> None:
        if self.out.mode == "json":
            print(text, file=sys.stderr, flush=True)


class CliReporter(Reporter):
    def __init__(self, out: Output):
        self.out = out
        self.total = 0
        self.tty = out.err.is_terminal
        self.every = 0.2 if self.tty else 10.0
        self.last = 0.0
        self.t0 = time.monotonic()
        self.run = ""

    def start(self, run: str, total: int, counts: dict[str, int]) -> None:
        self.total = total
        self.run = run
        self.t0 = time.monotonic()
        self.out.info(f"run {run}: {total} jobs")

    def progress(self, counts: dict[str, int]) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        line = f"[{now - self.t0:6.0f}s] {counts_line(counts, self.total)}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
        else:
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
        print(text, file=sys.stderr, flush=True)

    def finish(self, result: RunResult) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
        summary(self.out, result)


def summary(out: Output, result: RunResult) -> None:
    table = Table(title=f"run {result.run}: {result.elapsed:.1f}s", title_justify="left")
    table.add_column("status")
    table.add_column("jobs", justify="right")
    for k in STATUSES:
        if result.counts.get(k):
            table.add_row(k, str(result.counts[k]))
    if result.retried:
        table.add_row("(retries)", str(result.retried))
    out.err.print(table)
    for row in result.failed[:5]:
        out.err.print(
            f"failed: job {row.idx} {row.name} rc={row.rc} {row.note or ''}".rstrip(), markup=False
        )
    if len(result.failed) > 5:
        out.err.print(f"... and {len(result.failed) - 5} more failed jobs (xqdecl status)")
    if result.failed:
        out.err.print(f"see: xqdecl logs SPEC {result.failed[0].idx} --stderr", markup=False)
