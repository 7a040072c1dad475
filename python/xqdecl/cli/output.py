"""One output layer for every command: `cli`, `json` or `quiet`.

Progress and messages go to stderr; tables and JSON go to stdout (the run's
final summary goes to stderr with its progress, so `run`'s stdout stays
empty in `cli` mode and holds only JSON in `json` mode).

In `cli` mode a run shows one live block of per-status counts with the rate
of jobs done and an ETA, plus one line per group when there are several
(never a bar per job): redrawn in place at most 4 times a second on a
terminal, printed as one plain line every 10 s otherwise (CI logs).

Text that jobs control (their output, names, notes, scheduler messages) goes
through `streams.visible` before it reaches a terminal; every write goes to
streams that never raise (see `xqdecl.cli.streams`), so a closed pipe cannot stop a run.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from xqdecl.cli.streams import for_terminal, safe
from xqdecl.engine.result import Reporter, RunResult
from xqdecl.report import DONE, RunStats, collect, ensure_report, fmt_duration
from xqdecl.store.journal import STATUSES

MODES = ("cli", "json", "quiet")

#: status -> rich style, shared by the live display and the tables
STYLES = {
    "queued": "dim", "submitting": "cyan", "submitted": "cyan", "running": "blue",
    "succeeded": "green", "failed": "bold red", "cancelled": "yellow", "skipped": "green",
}
#: at most this many group lines in the live display
GROUP_LINES = 8


class Output:
    def __init__(self, mode: str = "cli", *, err: Console | None = None,
                 out: Console | None = None):
        self.mode = mode if mode in MODES else "cli"
        self.err = err or _console(stderr=True)
        self.out = out or _console(stderr=False)

    def error(self, text: str) -> None:
        """Always shown, whatever the mode: the user must see why it failed."""
        print(for_terminal(text, self.err.is_terminal), file=safe(sys.stderr), flush=True)

    def info(self, text: str) -> None:
        if self.mode == "cli":
            self.err.print(for_terminal(text, self.err.is_terminal), markup=False)

    def json(self, data: Any) -> None:
        stdout = safe(sys.stdout)
        stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        stdout.flush()

    def print(self, obj: Any) -> None:
        if self.mode == "cli":
            if isinstance(obj, str):
                self.out.print(for_terminal(obj, self.out.is_terminal), markup=False)
            else:
                self.out.print(obj)

    def reporter(self) -> Reporter:
        if self.mode == "cli":
            return CliReporter(self)
        return QuietReporter(self)


def _console(stderr: bool) -> Console:
    """A terminal gets its own width; a pipe or a log file gets room for wide tables."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, width=160)
    return console


def done_count(counts: Mapping[str, int]) -> int:
    return sum(counts.get(k, 0) for k in DONE)


def counts_line(counts: Mapping[str, int], total: int) -> str:
    parts = [f"{k} {counts[k]}" for k in STATUSES if counts.get(k)]
    return f"{done_count(counts)}/{total} done | " + " · ".join(parts)


class QuietReporter(Reporter):
    """json/quiet: no progress; in json mode warnings still reach stderr."""

    def __init__(self, out: Output):
        self.out = out
        self.since = time.time()

    def start(self, run: str, total: int, counts: dict[str, int]) -> None:
        self.since = time.time()

    def message(self, text: str) -> None:
        if self.out.mode == "json":
            self.out.error(text)

    def finish(self, result: RunResult) -> None:
        ensure_report(result.rundir, self.since)


class Rate:
    """Jobs done per second over a sliding window of redraw-time samples."""

    def __init__(self, window: float):
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> float | None:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        if now - t0 < 0.5:
            return None
        return max(0, done - d0) / (now - t0)


class CliReporter(Reporter):
    """The run's live display (see the module's docstring).

    `progress` is called by the runner every cycle, possibly thousands of times
    a second: it returns after one clock read unless a redraw is due.
    """

    def __init__(self, out: Output, *, tty: bool | None = None, refresh: float = 0.25,
                 plain_every: float = 10.0):
        self.out = out
        self.tty = out.err.is_terminal if tty is None else tty
        self.every = refresh if self.tty else plain_every
        self.rate = Rate(window=30.0 if self.tty else 60.0)
        self.next = 0.0
        self.t0 = time.monotonic()
        self.run = ""
        self.total = 0
        self.done0 = 0
        self.counts: Mapping[str, int] = {}
        self.group_names: list[str] = []
        self.group_totals: list[int] = []
        self.group_counts: Sequence[Mapping[str, int]] = ()
        self.live: Live | None = None
        self.since = time.time()

    # -- the Reporter interface --------------------------------------------------------
    def start(self, run: str, total: int, counts: dict[str, int]) -> None:
        self.run, self.total, self.counts = run, total, counts
        self.t0 = time.monotonic()
        self.since = time.time()
        self.next = self.t0 + self.every
        self.done0 = done_count(counts)
        self.rate.add(self.t0, self.done0)
        already = f" ({self.done0} already done)" if self.done0 else ""
        self.out.info(f"run {run}: {total} jobs{already}")
        if self.tty:
            self.live = Live(console=self.out.err, auto_refresh=False, transient=True,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()
            atexit.register(self._stop_live)  # an unexpected exit still restores the cursor
            self._draw(counts, self.t0)

    def start_groups(self, names: Sequence[str], totals: Sequence[int],
                     counts: Sequence[Mapping[str, int]]) -> None:
        """Optional (the runner calls it after `start` when it keeps per-group
        counts): `counts[g]` is a live mapping status -> jobs of group g that the
        runner updates in place; it is read only when a redraw is due."""
        self.group_names, self.group_totals = list(names), list(totals)
        self.group_counts = counts

    def progress(self, counts: dict[str, int]) -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + self.every
        self._draw(counts, now)

    def message(self, text: str) -> None:
        """A line from the runner, a backend or a plugin: it may quote a job."""
        if self.live is not None:
            self.live.console.print(for_terminal(text, True), markup=False, highlight=False)
        else:
            self.out.error(text)

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            atexit.unregister(self._stop_live)

    def finish(self, result: RunResult) -> None:
        self._stop_live()
        ensure_report(result.rundir, self.since, self.group_names or None)
        summary(self.out, result, group_names=self.group_names or None)

    # -- drawing -------------------------------------------------------------------------
    def _speed(self, counts: Mapping[str, int], now: float) -> tuple[int, str]:
        done = done_count(counts)
        rate = self.rate.add(now, done)
        left = max(0, self.total - done)
        if rate is None:
            speed = "-- jobs/s"
        else:
            speed = f"{rate:.1f} jobs/s" if rate < 100 else f"{rate:.0f} jobs/s"
        if left == 0:
            eta = "ETA 0s"
        elif rate:
            eta = f"ETA {fmt_duration(left / rate)}"
        else:
            eta = "ETA --"
        return done, f"{speed} · {eta}"

    def _draw(self, counts: Mapping[str, int], now: float) -> None:
        self.counts = counts
        done, speed = self._speed(counts, now)
        elapsed = fmt_duration(now - self.t0)
        pct = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        if not self.tty:
            line = f"[{elapsed:>7}] {counts_line(counts, self.total)} | {speed}"
            if len(self.group_counts) > 1:
                line += " | " + " ".join(
                    f"g{g}:{done_count(c)}/{self.group_totals[g]}"
                    for g, c in enumerate(self.group_counts[:GROUP_LINES])
                )
            print(line, file=safe(sys.stderr), flush=True)
            return
        head = Text.assemble(
            ("run ", "dim"), (self.run, "bold"), f"  {done}/{self.total} done{pct}  ",
            (speed, "cyan"), ("  elapsed ", "dim"), elapsed,
        )
        status = Text("  ")
        for k in STATUSES:
            if counts.get(k):
                status.append(f"{k} {counts[k]}", STYLES[k])
                status.append("  ")
        parts: list[Any] = [head, status]
        if len(self.group_counts) > 1:
            parts.append(self._groups_grid())
        assert self.live is not None
        self.live.update(Group(*parts), refresh=True)

    def _groups_grid(self) -> Table:
        grid = Table.grid(padding=(0, 1))
        for _ in range(4):
            grid.add_column()
        shown = list(enumerate(self.group_counts))[:GROUP_LINES]
        for g, c in shown:
            total = self.group_totals[g] or 1
            done = done_count(c)
            detail = Text()
            for k in ("running", "failed", "queued"):
                if c.get(k):
                    detail.append(f"{k} {c[k]} ", STYLES[k])
            name = self.group_names[g] if g < len(self.group_names) else f"group {g}"
            grid.add_row(
                Text(f"  #{g} {for_terminal(name, True)[:30]}", "dim"),
                ProgressBar(total=total, completed=done, width=24),
                f"{done}/{self.group_totals[g]}", detail,
            )
        if len(self.group_counts) > GROUP_LINES:
            grid.add_row(Text(f"  ... {len(self.group_counts) - GROUP_LINES} more groups",
                              "dim"), "", "", "")
        return grid


# -- the final summary --------------------------------------------------------------------
def summary_table(stats: RunStats, title: str, terminal: bool = False) -> Table:
    """Per group: jobs, succeeded / failed / skipped / cancelled / retried (and any
    job still queued or live), with a total row when there are several groups.
    `terminal`: the table is for a terminal (group labels shown safely)."""
    cols = ["succeeded", "failed", "skipped"]
    cols += [k for k in ("cancelled", "queued", "submitting", "submitted", "running")
             if stats.counts.get(k)]
    table = Table(title=title, title_justify="left")
    table.add_column("group")
    table.add_column("jobs", justify="right")
    for k in cols:
        table.add_column(k, justify="right", style=STYLES.get(k) if stats.counts.get(k) else "")
    table.add_column("retried", justify="right")
    for g in stats.groups:
        table.add_row(f"#{g.group} {for_terminal(g.label, terminal)}", str(g.total),
                      *(str(g.counts.get(k, 0)) for k in cols), str(g.retried))
    if not stats.groups:
        table.add_row("all", str(sum(stats.counts.values())),
                      *(str(stats.counts.get(k, 0)) for k in cols), str(stats.retried))
    elif len(stats.groups) > 1:
        table.add_row("total", str(sum(stats.counts.values())),
                      *(str(stats.counts.get(k, 0)) for k in cols), str(stats.retried),
                      style="bold")
    return table


def print_failures(console: Console, stats: RunStats, shown: int, hint: str) -> None:
    """The failed jobs with the last lines of their stderr (shown safely on a terminal)."""
    tty = console.is_terminal
    for f in stats.failures[:shown]:
        console.print(Text.assemble(("failed: ", "bold red"),
                                    f"job {f.index} {for_terminal(f.name, tty)} "
                                    f"(group {f.group}) rc={f.rc} trial {f.trial}"))
        for line in f.stderr_tail:
            console.print(Text(f"    {for_terminal(line, tty)}", "dim"))
    more = stats.failed_total - min(shown, len(stats.failures))
    if more > 0:
        console.print(f"... and {more} more failed jobs (xqdecl status SPEC)", markup=False)
    if stats.failures:
        console.print(hint.format(index=stats.failures[0].index), markup=False)


def print_status(out: Output, stats: RunStats) -> None:
    """`xqdecl status` in cli mode: state, counts per group, failed jobs with tails."""
    if stats.live:
        state = f"running ({stats.holder})"
    elif isinstance(stats.meta.get("exit_code"), int):
        state = f"ended with exit code {stats.meta['exit_code']}"
    elif stats.meta:
        state = "not running (its runner stopped before the end)"
    else:
        state = "not running"
    if stats.problem and not stats.groups:
        out.print(f"run {stats.run}: {stats.problem} in {stats.rundir}")
        return
    wall = f", wall time {fmt_duration(stats.elapsed)}" if stats.elapsed is not None else ""
    out.print(f"run {stats.run}: {state}{wall}")
    if stats.problem:
        out.print(f"warning: {stats.problem}")
    title = counts_line(stats.counts, stats.total)
    if stats.retried:
        title += f" | retried {stats.retried}"
    out.print(summary_table(stats, title, out.out.is_terminal))
    if out.mode == "cli":
        hint = "see: xqdecl logs SPEC {index} --stderr"
        print_failures(out.out, stats, len(stats.failures), hint)


def summary(out: Output, result: RunResult, group_names: list[str] | None = None) -> None:
    """The table printed when a run ends (to stderr, with its progress)."""
    stats = collect(result.rundir, run=result.run, group_names=group_names, failures=5,
                    tail_lines=3)
    if not stats.groups:  # no readable journal: what the runner told us is all we have
        stats.counts = dict(result.counts)
        stats.failed_total = len(result.failed)
    code = int(result.exit_code)
    title = f"run {result.run}: exit {code}, wall time {fmt_duration(result.elapsed)}"
    if result.retried:
        title += f", {result.retried} retries in this run"
    out.err.print(summary_table(stats, title, out.err.is_terminal))
    print_failures(out.err, stats, 5, "see: xqdecl logs SPEC {index} --stderr")
    if result.message:
        out.err.print(for_terminal(f"error: {result.message}", out.err.is_terminal),
                      markup=False)
    report = stats.rundir / "report.html"
    if report.exists():
        out.err.print(f"report: {report}", markup=False)
