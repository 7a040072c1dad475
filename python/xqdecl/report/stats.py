"""The statistics read model: what a run did, read from its run directory.

`collect` gives a `RunStats` (counts, groups, failures with their stderr
tails, the journal's meta) that `status`, the final summary and the HTML page
(`xqdecl.report.page`) all read; `job_json`/`status_json` shape it for
`status --output json`. Everything here only reads (the journal through `JournalReader`, which works
while a runner writes), and copes with a missing or partial journal: a run
that never started, a journal without its tables, rows without times.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xqdecl.errors import BackendError
from xqdecl.store import journal as J
from xqdecl.store.journal import JobRow, JournalReader
from xqdecl.store.layout import RunDir, tail
from xqdecl.store.lock import holder_of

#: statuses a job ends in, and how many of them count as "done" for progress
DONE = (J.SUCCEEDED, J.FAILED, J.CANCELLED, J.SKIPPED)

#: reads the last lines of a job file: (index, kind, trial, lines) -> lines
TailFn = Callable[[int, str, int, int], list[str]]


@dataclass
class GroupStats:
    group: int
    label: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # jobs that took more than one attempt

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # the JSON keys are the fields, in their order


@dataclass
class Failure:
    index: int
    name: str
    group: int
    rc: int | None
    trial: int
    note: str | None
    stderr_tail: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunStats:
    """A run as its directory tells it."""

    run: str
    rundir: Path
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    groups: list[GroupStats] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    failed_total: int = 0
    holder: str | None = None  # "host pid" of the live runner, None when not running
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why the journal could not be (fully) read
    rows: list[JobRow] = field(default_factory=list)  # only when asked for (the report)

    @property
    def live(self) -> bool:
        return self.holder is not None

    @property
    def done(self) -> int:
        return sum(self.counts.get(k, 0) for k in DONE)

    @property
    def retried(self) -> int:
        return sum(g.retried for g in self.groups)

    @property
    def elapsed(self) -> float | None:
        """Wall time of the last invocation: till its end, or till now while live."""
        started = self.meta.get("started")
        if not isinstance(started, int | float):
            return None
        ended = self.meta.get("ended")
        end = ended if isinstance(ended, int | float) and not self.live else time.time()
        return max(0.0, end - started)


def job_trials(row: JobRow) -> int:
    """Attempts made in the job's last run: a queued job has not started its current
    trial, nor has one cancelled before it was submitted (a halt)."""
    if row.status == J.QUEUED or (row.status == J.CANCELLED and row.ended is None):
        return row.trial
    return row.trial + 1


def local_tail(rd: RunDir) -> TailFn:
    def read(index: int, kind: str, trial: int, lines: int) -> list[str]:
        return tail(rd.file(index, kind, trial), lines)

    return read


def stderr_tail(read: TailFn, row: JobRow, lines: int = 5) -> list[str]:
    """The last lines of a job's stderr for its last trial, then the runner's notes."""
    return read(row.idx, "stderr", row.trial, lines) + read(row.idx, "notes", row.trial, lines)


def _label(group: int, names: Any, first_name: str) -> str:
    if isinstance(names, list) and group < len(names) and isinstance(names[group], str):
        return names[group]
    return f"group {group} ({first_name}, ...)"


def collect(
    rundir: str | Path,
    *,
    run: str | None = None,
    group_names: list[str] | None = None,
    failures: int = 10,
    tail_lines: int = 5,
    keep_rows: bool = False,
    journal: Path | None = None,
    tail_fn: TailFn | None = None,
) -> RunStats:
    """Read a run directory. Never raises for a missing or unreadable journal:
    `problem` says what was wrong and the rest stays empty.

    `journal` and `tail_fn` replace the run directory's own journal and file
    reads (a copy fetched from a cloud workdir)."""
    rd = RunDir(rundir)
    stats = RunStats(run=run or rd.root.name, rundir=rd.root)
    if rd.lock.exists():
        try:
            stats.holder = holder_of(rd.lock)
        except OSError:
            stats.holder = None
    journal = journal or rd.journal
    if not journal.exists():
        stats.problem = "not started yet (no journal)"
        return stats
    try:
        reader = JournalReader(journal)
    except (BackendError, OSError) as exc:
        stats.problem = f"the journal cannot be opened: {exc}"
        return stats
    try:
        _read(stats, reader, tail_fn or local_tail(rd), group_names, failures, tail_lines,
              keep_rows)
    except (BackendError, sqlite3.Error) as exc:
        stats.problem = f"the journal is incomplete: {exc}"
    finally:
        reader.close()
    return stats


def _read(stats: RunStats, reader: JournalReader, read: TailFn, group_names: list[str] | None,
          failures: int, tail_lines: int, keep_rows: bool) -> None:
    with_meta = True
    try:
        stats.meta = reader.meta()
    except (BackendError, ValueError):
        with_meta = False
    if with_meta and isinstance(stats.meta.get("run"), str):
        stats.run = stats.meta["run"]
    names = group_names if group_names is not None else stats.meta.get("groups")
    groups: dict[int, GroupStats] = {}
    counts: dict[str, int] = {}
    failed: list[JobRow] = []
    for row in reader.rows():
        counts[row.status] = counts.get(row.status, 0) + 1
        g = groups.get(row.grp)
        if g is None:
            g = groups[row.grp] = GroupStats(row.grp, _label(row.grp, names, row.name))
        g.total += 1
        g.counts[row.status] = g.counts.get(row.status, 0) + 1
        if row.trial > 0 and row.status != J.SKIPPED:
            g.retried += 1
        if row.status == J.FAILED:
            stats.failed_total += 1
            if len(failed) < failures:
                failed.append(row)
        if keep_rows:
            stats.rows.append(row)
    stats.counts = {k: counts[k] for k in J.STATUSES if counts.get(k)}
    stats.counts.update({k: v for k, v in counts.items() if k not in J.STATUSES})
    stats.groups = [groups[k] for k in sorted(groups)]
    total = stats.meta.get("total")
    stats.total = total if isinstance(total, int) else sum(counts.values())
    stats.failures = [
        Failure(r.idx, r.name, r.grp, r.rc, r.trial, r.note, stderr_tail(read, r, tail_lines))
        for r in failed
    ]


def job_json(row: JobRow) -> dict[str, Any]:
    """One job of `status --output json` (the contract's keys first)."""
    return {"index": row.idx, "name": row.name, "status": row.status, "rc": row.rc,
            "trials": job_trials(row), "jid": row.jid, "group": row.grp,
            "submitted": row.submitted, "started": row.started, "ended": row.ended,
            "note": row.note}


def status_json(stats: RunStats) -> dict[str, Any]:
    """`status --output json` (documented with its JSON Schema in docs/json-output.md)."""
    meta = stats.meta
    return {
        "run": stats.run,
        "counts": stats.counts,
        "jobs": [job_json(r) for r in stats.rows],
        "live": stats.live,
        "holder": stats.holder,
        "rundir": str(stats.rundir),
        "total": stats.total,
        "done": stats.done,
        "started": meta.get("started"),
        "ended": None if stats.live else meta.get("ended"),
        "exit_code": None if stats.live else meta.get("exit_code"),
        "elapsed": None if stats.elapsed is None else round(stats.elapsed, 3),
        "groups": [g.to_json() for g in stats.groups],
        "failures": [f.to_json() for f in stats.failures],
        "failed_total": stats.failed_total,
        "problem": stats.problem or None,
    }


def fmt_duration(seconds: float | None) -> str:
    """`0.4s`, `12s`, `3m05s`, `2h04m`, `1d03h`."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
