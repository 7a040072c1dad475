"""The run loop: feeds events from planning, the poller, the backend's batched
query and signals into the job table, and carries out its effects.

Each cycle: plan a slice (while planning lasts), check re-attached jobs,
submit within limits, deliver hooks, write the journal's changed rows in one
transaction, wait for news (or the poll interval), read events, and ask the
scheduler at most once per query interval. Nothing here sets a status: the
table does (engine/table.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from xqdecl.backends import backend_class
from xqdecl.backends.base import BackendContext
from xqdecl.engine.effects import Effects
from xqdecl.engine.planner import Planner
from xqdecl.engine.result import Reporter, RunResult, exit_code
from xqdecl.engine.stop import Canceller, Stop
from xqdecl.engine.store import RunStore
from xqdecl.engine.submitter import SchedulerFailures, Submitter
from xqdecl.engine.table import GroupPolicy, JobTable
from xqdecl.engine.watcher import Watcher
from xqdecl.errors import BackendError, ExitCode
from xqdecl.plan import Plan
from xqdecl.plugin.hooks import Hooks, JobView, load_hooks, run_info
from xqdecl.report import write_report
from xqdecl.spec import Spec
from xqdecl.store.cloud import CloudPoller, CloudStore
from xqdecl.store.journal import FAILED, RUNNING, JobRow
from xqdecl.store.poller import make_poller

#: seconds of planning per cycle while a large spec is planned
PLAN_BUDGET = 0.05


class Runner:
    """Runs one spec to the end. Use `await Runner(spec).run()`."""

    def __init__(self, spec: Spec, *, fresh: bool = False, reporter: Reporter | None = None,
                 poll_interval: float | None = None, hooks: Hooks | None = None):
        self.spec = spec
        self.fresh = fresh
        self.reporter = reporter or Reporter()
        self.hooks = hooks if hooks is not None else load_hooks(list(spec.plugins), spec)
        self.backend_cls = backend_class(spec.scheduler.type)
        self.plan = Plan(spec, hooks=self.hooks)
        self.rd = self.plan.rundir
        url = self.plan.location.url
        self.cloud = CloudStore(url) if url else None
        self.forks = spec.forks or self.backend_cls.default_forks()
        self.poll_interval = (poll_interval if poll_interval is not None
                              else self.backend_cls.poll_interval)
        self.table = JobTable([
            GroupPolicy(retries=g.num_retries if g.error_strategy == "retry" else 0,
                        halt=g.error_strategy == "halt")
            for g in self.plan.groups])
        self._wake = asyncio.Event()
        self.stop = Stop(self.reporter.message, self.wake)
        self.fx = Effects(self.table, self.hooks, self._view, self._halted)
        self.polls = 0

    # what plugins and tests read of a run in progress
    @property
    def rows(self) -> list[JobRow]:
        return self.table.rows

    @property
    def counts(self) -> dict[str, int]:
        return self.table.counts

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        """Cancel every live job and end the run as interrupted (exit 130)."""
        self.stop.request(ExitCode.INTERRUPTED)

    def _view(self, row: JobRow, status: str, trial: int) -> JobView:
        return self.plan.view(row, status, trial)

    def _halted(self, row: JobRow) -> None:
        self.reporter.message(f"job {row.idx} ({row.name}) failed: halting the run")
        self.stop.request(ExitCode.JOBS_FAILED)

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        t0 = time.monotonic()
        self.stop.install()  # before anything slow: a signal is seen from here on
        try:
            return await self._run(t0)
        finally:
            self.stop.uninstall()

    async def _run(self, t0: float) -> RunResult:
        store = RunStore.open(self.plan, self.spec, fresh=self.fresh, cloud=self.cloud,
                              say=self.reporter.message)
        self.store = store
        ctx = BackendContext(run=self.spec.name, rundir=self.rd.root,
                             mounted_rundir=self.plan.mounted_rundir, forks=self.forks,
                             wake=self.wake, message=self.reporter.message)
        try:
            return await self._with_store(store, ctx, t0)
        except BaseException:
            store.close()  # a bug or a cancelled task: the lock and the journal go back
            raise

    async def _with_store(self, store: RunStore, ctx: BackendContext, t0: float) -> RunResult:
        backend = self.backend_cls(self.spec.scheduler, ctx)
        self.backend = backend
        self.hooks.bind(backend, self.reporter.message)
        self.poller: Any = (CloudPoller(self.cloud) if self.cloud is not None
                            else make_poller(str(self.rd.root)))
        self.fx.poller, self.fx.release = self.poller, backend.release
        self.fx.note = store.write_note
        info = run_info(self.spec, self.rd.root, self.table.counts, self)
        try:
            if "on_init" in self.hooks.active:  # before any wrapper (and its snippets)
                await self.hooks.call("on_init", info)
            directives = {g.index: backend.directives(g.options) for g in self.plan.groups}
            self.planner = Planner(self.plan, directives, store.previous, self.fx,
                                   fresh=self.fresh, keep_trials=self.cloud is not None)
            failures = SchedulerFailures(self.reporter.message)
            self.submitter = Submitter(
                self.plan, self.fx, backend, self.stop, directives, self._flush, failures,
                forks=self.forks, batch=self.spec.submission_batch, cloud=self.cloud is not None)
            self.watcher = Watcher(self.fx, backend, self.poller, store, failures)
            self.canceller = Canceller(self.fx, backend, self.stop, self.plan.view,
                                       store.read_rc_for(self.poller), self._flush,
                                       self._dispatch, self.reporter.message)
            store.started(backend.name)
            self.reporter.start(self.spec.name, self.plan.total, self.table.counts)
            self.reporter.start_groups([g.name for g in self.spec.jobs],
                                       [g.count for g in self.plan.groups],
                                       self.table.group_counts)
            await self._cycle()
        except BackendError as exc:  # a scheduler that keeps failing, or the store
            self.reporter.message(f"error: {exc}")
            self.stop.reason = ExitCode.BACKEND
            self.stop.message = str(exc)
            if hasattr(self, "canceller"):
                with contextlib.suppress(BackendError):
                    await self.canceller.stop_all()
        finally:
            with contextlib.suppress(Exception):
                self._flush()
            try:
                await self.fx.dispatch(backend)
                if "on_shutdown" in self.hooks.active:
                    await self.hooks.call("on_shutdown", info, self.stop.signal_name)
            finally:
                self.hooks.close()
                await backend.close()
        result = self._result(time.monotonic() - t0)
        store.finish(result)
        write_report(self.rd.root, group_names=[g.name for g in self.spec.jobs])
        store.release()
        self.reporter.finish(result)
        return result

    async def _cycle(self) -> None:
        backend, planner, watcher = self.backend, self.planner, self.watcher
        now = time.monotonic()
        next_sweep = now + backend.sweep_interval
        next_query = now
        while True:
            if self.stop:
                await self.canceller.stop_all()
                return
            if not planner.done:
                planner.step(PLAN_BUDGET)
                if planner.done:
                    self.store.planned(self.plan.total)
            if planner.verify:
                rows, planner.verify = planner.verify, []
                await watcher.verify(rows)
            if self.fx.cancels:
                await self.canceller.leftovers()
            await self.submitter.fill(planner.done, self._dispatch)
            await self._dispatch()
            if planner.done and not self.table.queue and not self.table.inflight:
                return
            self._flush()
            self.reporter.progress(self.table.counts)
            if planner.done and not self._wake.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            elif not planner.done:
                await asyncio.sleep(0)  # signals and other tasks get their turn
            self._wake.clear()
            now = time.monotonic()
            sweep = now >= next_sweep
            if sweep:
                next_sweep = now + backend.sweep_interval
            watcher.collect(sweep)
            self.polls += 1
            if "on_job_polling" in self.hooks.active:
                await self._polling()
            if now >= next_query or backend.query_interval <= 0:
                next_query = now + max(backend.query_interval, 0.5)
                self.store.check_lock()
                if self.store.kill_requested():
                    self.reporter.message("kill requested: cancelling live jobs")
                    self.request_stop()
                await watcher.query()

    async def _dispatch(self) -> None:
        await self.fx.dispatch(self.backend)

    async def _polling(self) -> None:
        await self._dispatch()  # a job's on_job_started comes before its polls
        for row in list(self.table.inflight.values()):
            if row.status == RUNNING:  # polled while running, as in the seed
                view = self.plan.view(row, row.status, row.trial)
                await self.hooks.call("on_job_polling", self.backend, view, self.polls)

    def _flush(self) -> None:
        if self.fx.dirty:
            self.store.write(self.fx.take_dirty())

    def _result(self, elapsed: float) -> RunResult:
        failed = [r for r in self.table.rows if r.status == FAILED]
        counts = {k: v for k, v in self.table.counts.items() if v}
        if not self.planner_done():
            counts["queued"] = counts.get("queued", 0) + self.plan.total - len(self.table.rows)
        return RunResult(
            run=self.spec.name, rundir=str(self.rd.root),
            exit_code=exit_code(self.stop.reason, counts, len(failed)),
            counts=counts, failed=failed, elapsed=elapsed, retried=len(self.table.retried),
            message=self.stop.message if self.stop.reason == ExitCode.BACKEND else "",
        )

    def planner_done(self) -> bool:
        planner = getattr(self, "planner", None)
        return planner is not None and planner.done
