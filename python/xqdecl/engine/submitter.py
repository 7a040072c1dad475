"""Taking queued jobs to the backend: within `forks` (or as whole arrays),
with plugin vetoes, each job's wrapper written just before its submission
and its intent journaled before the call.

A job's first attempt in a run starts at trial 0: files an earlier run left
in its folder are moved under `history/` first, so nothing is overwritten
(cloud workdirs keep counting trials instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from xqdecl.backends.base import DirectJob, Submission
from xqdecl.engine.effects import Effects
from xqdecl.engine.stop import Stop
from xqdecl.engine.table import Data, Ev
from xqdecl.errors import BackendError, StoreError
from xqdecl.plan import Plan, write_wrapper
from xqdecl.plan.wrapper import direct_job, render
from xqdecl.store.journal import JobRow
from xqdecl.store.layout import wrapper_hash

#: consecutive failed scheduler calls before the run gives up (exit 4)
MAX_BACKEND_FAILURES = 8
#: seconds a retry waits on an array backend so retries close in time share one array
RETRY_HOLD = 2.0
#: an array backend waits for planning to finish unless this many jobs are queued
ARRAY_MIN = 1000


class SchedulerFailures:
    """Scheduler calls that failed in a row (submissions and queries alike): the
    first is said once, and after `MAX_BACKEND_FAILURES` the run gives up (exit 4)."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.count = 0

    def failed(self, exc: BackendError) -> None:
        self.count += 1
        if self.count == 1:
            self.say(f"warning: {exc} (retrying)")
        if self.count >= MAX_BACKEND_FAILURES:
            raise BackendError(f"the scheduler kept failing: {exc}")

    def ok(self) -> None:
        self.count = 0


class Submitter:
    """One `fill` per cycle."""

    def __init__(self, plan: Plan, fx: Effects, backend: Any, stop: Stop,
                 directives: dict[int, list[str]], flush: Callable[[], None],
                 failures: SchedulerFailures, *, forks: int, batch: int, cloud: bool):
        self.plan = plan
        self.fx = fx
        self.table = fx.table
        self.backend = backend
        self.stop = stop
        self.directives = directives
        self.flush = flush
        self.failures = failures
        self.forks = forks
        self.batch = max(1, batch)
        self.cloud = cloud
        self.history = plan.rundir.history / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self._history_made = False
        #: jobs an executor may start without their wrapper, from `_files` to `_submission`
        self._direct: dict[int, DirectJob] = {}

    async def fill(self, planning_done: bool,
                   dispatch: Callable[[], Awaitable[None]]) -> None:
        table = self.table
        if self.stop or table.stopping or not table.queue:
            return
        if self.backend.arrays:
            if not planning_done and len(table.queue) < ARRAY_MIN:
                return  # more of the same groups are coming: one array for them
            since = self.fx.retry_since
            if since is not None and table.inflight and time.monotonic() - since < RETRY_HOLD:
                return  # more retries may come: submit them together
            take = len(table.queue)
        else:
            take = min(self.forks - len(table.inflight), len(table.queue))
        if take <= 0:
            return
        taken = table.take(take)
        if not table.queue:
            self.fx.retry_since = None
        if "on_job_submitting" in self.fx.active:
            taken = await self._ask(taken, dispatch)
        now = time.time()
        for i in taken:
            trial = self._files(table.rows[i])
            self.fx(i, Ev.SUBMIT, Data(now=now, trial=trial))
        batch, self.fx.outbox = self.fx.outbox, []
        if not batch:
            return
        self.flush()  # the intent is durable before anything is submitted
        await self._submit(batch)

    async def _submit(self, batch: list[JobRow]) -> None:
        subs = [self._submission(r) for r in batch]
        whole = self.backend.arrays or self.backend.whole_fill
        size = len(subs) if whole else max(1, -(-len(subs) // self.batch))
        chunks = [subs[i: i + size] for i in range(0, len(subs), size)]
        try:
            results = await asyncio.gather(*(self.backend.submit(c) for c in chunks))
        except StoreError:
            raise
        except BackendError as exc:
            self.failures.failed(exc)
            for row in reversed(batch):
                self.fx(row.idx, Ev.UNSENT)
            await asyncio.sleep(min(30.0, 0.5 * 2 ** self.failures.count))
            return
        self.failures.ok()
        for res in (r for chunk in results for r in chunk):
            if res.jid is None:
                self.fx(res.index, Ev.REFUSED, Data(note=f"submission failed: {res.error}",
                                                    now=time.time()))
            else:
                self.fx(res.index, Ev.ACCEPTED, Data(jid=res.jid))

    def _submission(self, row: JobRow) -> Submission:
        g = self.plan.groups[row.grp]
        direct = self._direct.pop(row.idx, None)
        if direct is not None:
            direct.env["XQDECL_TRIAL"] = str(row.trial)
        return Submission(index=row.idx, trial=row.trial, name=row.name,
                          script=self.plan.rundir.script(row.idx), group=row.grp,
                          options=g.options, timeout=g.timeout, direct=direct)

    async def _ask(self, taken: list[int], dispatch: Callable[[], Awaitable[None]]) -> list[int]:
        """Plugins may veto a submission: the job is then skipped."""
        await dispatch()  # e.g. a retried job's on_job_failed/on_job_queued come first
        keep = []
        for i in taken:
            row = self.table.rows[i]
            answers = await self.fx.hooks.call("on_job_submitting", self.backend,
                                               self.fx.view(row, row.status, row.trial))
            if any(a is False for a in answers):
                self.fx(i, Ev.VETO)
            else:
                keep.append(i)
        return keep

    # -- the job's files ------------------------------------------------------------------
    def _files(self, row: JobRow) -> int:
        """Write the job's wrapper; returns the trial to use (never one with files)."""
        rd = self.plan.rundir
        trial = row.trial
        try:
            first = row.trial == row.first_trial and row.submitted is None
            if first and not self.cloud:
                self._set_aside(row.idx)  # its folder now holds no attempt's files
            else:  # a later attempt: skip past any trial an earlier runner left behind
                while not self.cloud and (rd.file(row.idx, "start", trial).exists()
                                          or rd.file(row.idx, "rc", trial).exists()):
                    trial += 1
            w = self.plan.wrapper_input(self.plan.job(row.idx), self.directives[row.grp])
            text = render(w)
            direct = direct_job(w, trial) if self.backend.direct_jobs else None
            if direct is None:
                row.hash = write_wrapper(rd.script_str(row.idx), text)
            else:  # the executor makes its folder; the hash goes on its start line
                row.hash = direct.stamp = wrapper_hash(text.encode())
                direct.script_text = text
                self._direct[row.idx] = direct
            return trial
        except OSError as exc:
            raise StoreError(f"cannot write the files of job {row.idx} under "
                             f"{rd.metadir(row.idx)}: {exc.strerror or exc}") from None

    def _set_aside(self, index: int) -> None:
        """Earlier runs' attempts of a job go under history/ before it starts at trial 0."""
        folder = self.plan.rundir.metadir(index)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        if all(n == "job.sh" or n.endswith(".tmp") for n in names):
            return
        if not self._history_made:
            os.makedirs(self.history, exist_ok=True)
            self._history_made = True
        os.rename(folder, self.history / str(index))
        self._forget_events(index, names)

    def _forget_events(self, index: int, names: list[str]) -> None:
        """Event files an earlier run's attempts left unread (its runner ended first)
        name the same `<index>.<trial>` as this run's attempts will: remove them, or
        the poller would take an old end for the new attempt's."""
        events = self.plan.rundir.events
        moved = self.history / str(index)
        for name in names:
            kind, _, trial = name.partition(".")
            if kind not in ("start", "rc") or not trial.isdigit():
                continue
            tags = [f"{index}.{trial}.s", f"{index}.{trial}.e"]
            if kind == "rc":
                try:
                    with open(moved / name, "rb") as fh:
                        first = fh.read(64).split(b"\n", 1)[0].strip()
                    tags.append(f"{index}.{trial}.e{int(first)}")
                except (OSError, ValueError):
                    pass
            for tag in tags:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(events / tag)
