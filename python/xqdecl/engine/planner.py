"""Planning a run a slice at a time, so the first jobs start (and a signal is
seen) long before the last of a large spec are planned.

Each job's start is decided from what an earlier run of the same spec left in
the journal: a job that succeeded with the same definition is done; a job an
earlier runner left live is re-attached (then checked: ended, still alive, or
gone); everything else is queued, at attempt 0 (its earlier attempts' files
are moved to the history folder when it is submitted, see `submitter`).
Wrappers are rendered here only to compare definitions with earlier
successes; they are written when a job is submitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from xqdecl.engine.effects import Effects
from xqdecl.engine.table import Data, Ev
from xqdecl.plan import Plan, render_job
from xqdecl.spec import RenderedJob
from xqdecl.store import journal as J
from xqdecl.store.journal import JobRow
from xqdecl.store.layout import wrapper_hash

#: jobs planned between two looks at the clock
SLICE = 512


class Planner:
    """Adds the plan's jobs to the table, a time-bounded step at a time."""

    def __init__(self, plan: Plan, directives: dict[int, list[str]],
                 previous: Callable[[int, int], dict[int, JobRow]], effects: Effects,
                 *, fresh: bool, keep_trials: bool):
        self.plan = plan
        self.directives = directives
        self.previous = previous
        self.fx = effects
        self.fresh = fresh
        #: cloud workdirs cannot move earlier attempts aside: trial numbers go on instead
        self.keep_trials = keep_trials
        self.jobs: Iterator[RenderedJob] = plan.jobs()
        self.next = 0
        self.total = plan.total
        #: jobs re-attached from an earlier runner, to check (rc file, then the backend)
        self.verify: list[JobRow] = []

    @property
    def done(self) -> bool:
        return self.next >= self.total

    def step(self, budget: float) -> int:
        """Plan jobs for about `budget` seconds (at least one slice); returns how many."""
        t_end = time.monotonic() + budget
        n0 = self.next
        while not self.done:
            hi = min(self.total, self.next + SLICE)
            prev = self.previous(self.next, hi)
            for _ in range(hi - self.next):
                self._one(next(self.jobs), prev)
            if time.monotonic() >= t_end:
                break
        return self.next - n0

    def _one(self, job: RenderedJob, previous: dict[int, JobRow]) -> None:
        row = JobRow(idx=job.index, name=job.name, grp=job.group, hash="", status=J.QUEUED)
        self.next = job.index + 1
        self.fx.table.add(row)
        if "on_job_init" not in self.fx.active:
            self._decide(row, job, previous.get(row.idx))
            return
        n = len(self.fx.pending)  # a job's on_job_init comes before any other of its hooks
        self._decide(row, job, previous.get(row.idx))
        self.fx.pending.insert(n, ("on_job_init", self.fx.view(row, row.status, row.trial)))

    def _decide(self, row: JobRow, job: RenderedJob, prev: JobRow | None) -> None:
        i = row.idx
        if prev is None:
            self.fx(i, Ev.QUEUE)
            return
        row.hash = prev.hash
        named = prev.name in ("", job.name)  # a row rebuilt from the job's files has no name
        if (prev.status in (J.SUCCEEDED, J.SKIPPED) and not self.fresh and prev.hash
                and named and self._hash(job) == prev.hash):
            row.trial, row.rc, row.jid = prev.trial, 0, prev.jid
            row.submitted, row.started, row.ended = prev.submitted, prev.started, prev.ended
            self.fx(i, Ev.DONE)
            return
        if prev.status in J.LIVE:  # an earlier runner's job: find out what became of it
            row.trial = row.first_trial = prev.trial
            row.jid, row.submitted, row.started = prev.jid, prev.submitted, prev.started
            same = named and (not prev.hash or self._hash(job) == prev.hash)
            # a changed definition (or --fresh) stops the old one; it then runs again
            status = prev.status if same and not self.fresh else J.CANCELLING
            self.fx(i, Ev.REATTACH, Data(status=status))
            self.verify.append(row)
            return
        if self.keep_trials and (prev.jid or prev.status != J.QUEUED):
            row.trial = row.first_trial = prev.trial + 1
        self.fx(i, Ev.QUEUE)

    def _hash(self, job: RenderedJob) -> str:
        return wrapper_hash(render_job(self.plan, job, self.directives[job.group]).encode())
