"""The orchestration loop: submit within limits, watch, retry, stop cleanly.

Per-cycle cost follows the jobs in flight, never all jobs of the run: the
queue is a deque, counts are kept incrementally, the poller reads only what
its events folder names (plus a slow safety-net sweep over jobs in flight),
and the journal is written only for rows that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from xqdecl import journal as J
from xqdecl.backends import backend_class
from xqdecl.backends.base import BackendContext, JobState, Liveness, Submission
from xqdecl.cloud import CloudPoller, CloudStore
from xqdecl.errors import BackendError, ExitCode
from xqdecl.hooks import STATUS_HOOKS, Hooks, JobView, load_hooks
from xqdecl.journal import JobRow
from xqdecl.lock import RunLock
from xqdecl.plan import Plan
from xqdecl.poller import Poller, make_poller
from xqdecl.prepare import prepare_jobs, read_rc, read_start
from xqdecl.recover import open_journal
from xqdecl.report import write_report
from xqdecl.spec import Spec

#: consecutive failed scheduler calls before the run gives up (exit 4)
MAX_BACKEND_FAILURES = 8
#: seconds a retry waits on an array backend so retries close in time share one array
RETRY_HOLD = 2.0
#: seconds between two copies of a cloud run's journal into its bucket
MIRROR_INTERVAL = 15.0


@dataclass
class RunResult:
    """What a finished (or stopped) run reports."""

    run: str
    rundir: str
    exit_code: ExitCode
    counts: dict[str, int]
    failed: list[JobRow] = field(default_factory=list)
    elapsed: float = 0.0
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


class Runner:
    """Runs one spec to the end. Use `await Runner(spec).run()`."""

    def __init__(
        self,
        spec: Spec,
        *,
        fresh: bool = False,
        reporter: Reporter | None = None,
        poll_interval: float | None = None,
        hooks: Hooks | None = None,
    ):
        self.spec = spec
        self.hooks = hooks if hooks is not None else load_hooks(list(spec.plugins), spec)
        self._hooked = bool(self.hooks.active)
        self._pending: list[tuple[str, JobView]] = []
        self.polls = 0
        self.fresh = fresh
        self.reporter = reporter or Reporter()
        cls = backend_class(spec.scheduler.type)
        self.backend_cls = cls
        self.plan = Plan(spec, hooks=self.hooks)
        url = self.plan.location.url
        self.cloud = CloudStore(url) if url else None
        self.rd = self.plan.rundir
        self.forks = spec.forks or cls.default_forks()
        self.poll_interval = poll_interval if poll_interval is not None else cls.poll_interval
        self.rows: list[JobRow] = []
        self.queue: deque[int] = deque()
        self.inflight: dict[int, JobRow] = {}
        self.counts: dict[str, int] = dict.fromkeys(J.STATUSES, 0)
        self.group_counts = [dict.fromkeys(J.STATUSES, 0) for _ in self.plan.groups]
        self.dirty: set[int] = set()
        self.lost_since: dict[int, float] = {}
        self.retried = 0
        self.stop_reason: ExitCode | None = None
        self.force = False
        self._signal_name: str | None = None
        self.failures = 0
        self.retry_since: float | None = None  # when the oldest retry still queued was queued
        self._next_mirror = 0.0
        self._wake = asyncio.Event()

    # -- bookkeeping --------------------------------------------------------------
    def _set(self, row: JobRow, status: str) -> None:
        old = row.status
        self.counts[old] -= 1
        self.counts[status] += 1
        gc = self.group_counts[row.grp]
        gc[old] -= 1
        gc[status] += 1
        row.status = status
        self.dirty.add(row.idx)
        if self._hooked:
            self._raise_hooks(row, old, status)

    def _raise_hooks(self, row: JobRow, old: str, status: str) -> None:
        name = STATUS_HOOKS.get(status)
        if name is None or (status == J.CANCELLED and old not in J.LIVE):
            return
        if status in (J.SUCCEEDED, J.FAILED) and old in (J.SUBMITTING, J.SUBMITTED):
            # it ended between two polls: it did start, say so first
            self._notify("on_job_started", row, J.RUNNING)
        self._notify(name, row, status)

    def _notify(self, name: str, row: JobRow, status: str) -> None:
        if name in self.hooks.active:
            self._pending.append((name, self.plan.view(row, status)))

    async def _dispatch(self) -> None:
        """Deliver the notifications raised since the last cycle, in order."""
        while self._pending:
            batch, self._pending = self._pending, []
            for name, view in batch:
                await self.hooks.call(name, self.backend, view)

    def _flush(self) -> None:
        if self.dirty:
            self.journal.update(self.rows[i] for i in sorted(self.dirty))
            self.dirty.clear()
            if self.cloud is not None and time.monotonic() >= self._next_mirror:
                self._mirror()

    def _mirror(self) -> None:
        """A cloud run keeps a copy of its journal in the bucket (status, resume)."""
        if self.cloud is not None:
            self._next_mirror = time.monotonic() + MIRROR_INTERVAL
            self.cloud.write_bytes("journal.db", self.journal.snapshot())

    def _read_rc(self, index: int, trial: int) -> int | None:
        if isinstance(self.poller, CloudPoller):
            return self.poller.rc(index, trial)
        return read_rc(self.rd, index, trial)

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        """Cancel every live job and end the run as interrupted (exit 130)."""
        if self.stop_reason is None:
            self.stop_reason = ExitCode.INTERRUPTED
        self.wake()

    # -- the run --------------------------------------------------------------------
    async def run(self) -> RunResult:
        t0 = time.monotonic()
        self.rd.create(self.spec.name)  # StoreError for a folder that is not a run's
        lock = RunLock(self.rd.lock)
        lock.acquire()
        if self.cloud is not None and not self.fresh and not self.rd.journal.exists():
            copy = self.cloud.read_bytes("journal.db")  # resume from another machine
            if copy:
                self.rd.journal.write_bytes(copy)
        self.journal, self._rebuild = open_journal(self.rd)  # a bad one is set aside
        ctx = BackendContext(
            run=self.spec.name,
            rundir=self.rd.root,
            mounted_rundir=self.plan.mounted_rundir,
            forks=self.forks,
            wake=self.wake,
            message=self.reporter.message,
        )
        backend = self.backend_cls(self.spec.scheduler, ctx)
        self.backend = backend
        self.hooks.bind(backend, self.reporter.message)
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop)
        try:
            if "on_init" in self.hooks.active:  # before any wrapper (and its snippets)
                await self.hooks.call("on_init", self)
            await self._prepare()
            self.reporter.start(self.spec.name, len(self.rows), dict(self.counts))
            self.reporter.start_groups([g.name for g in self.spec.jobs],
                                       [g.count for g in self.plan.groups], self.group_counts)
            await self._dispatch()
            await self._loop()
        except BackendError as exc:
            self.reporter.message(f"error: {exc}")
            self.stop_reason = ExitCode.BACKEND
            self.message = str(exc)
            await self._cancel_inflight()
        finally:
            with contextlib.suppress(Exception):
                self._flush()
            for sig in installed:
                loop.remove_signal_handler(sig)
            try:
                await self._dispatch()
                if "on_shutdown" in self.hooks.active:
                    await self.hooks.call("on_shutdown", self, self._signal_name)
            finally:
                self.hooks.close()
                await backend.close()
        result = self._result(time.monotonic() - t0)
        with contextlib.suppress(BackendError):
            self.journal.set_meta(ended=time.time(), exit_code=int(result.exit_code))
            self._mirror()
        self.journal.close()
        write_report(self.rd.root, group_names=[g.name for g in self.spec.jobs])
        lock.release()
        self.reporter.finish(result)
        return result

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (RuntimeError, ValueError):  # not the main thread
                pass
        return installed

    def _on_signal(self, sig: int) -> None:
        self._signal_name = signal.Signals(sig).name
        if self.stop_reason == ExitCode.INTERRUPTED:
            self.force = True  # a second Ctrl-C: stop waiting for a clean cancel
            self.reporter.message("interrupted again: killing live jobs now")
        else:
            self.reporter.message(
                f"{signal.Signals(sig).name} received: cancelling live jobs (again to force)"
            )
        self.stop_reason = ExitCode.INTERRUPTED
        self.wake()

    def _check_kill_request(self) -> None:
        """`xqdecl kill` from a host that cannot signal this runner leaves a request file."""
        request = self.rd.root / "kill.request"
        if request.exists():
            request.unlink(missing_ok=True)
            self.reporter.message("kill requested: cancelling live jobs")
            self.request_stop()

    async def _prepare(self) -> None:
        (self.rd.root / "kill.request").unlink(missing_ok=True)
        directives = {g.index: self.backend.directives(g.options) for g in self.plan.groups}
        rows, live = prepare_jobs(self.plan, directives, self.journal.load(), self.fresh,
                                  self._rebuild, self.reporter.message)
        self.rows = rows
        for row in rows:
            self.counts[row.status] += 1
            self.group_counts[row.grp][row.status] += 1
            if self._hooked:  # once per job at the start, as the seed does when it creates jobs
                self._notify("on_job_init", row, row.status)
                if row.status == J.QUEUED:
                    self._notify("on_job_queued", row, J.QUEUED)
        self.journal.replace_all(rows)
        self.journal.set_meta(
            run=self.spec.name, spec=self.spec.source, total=len(rows), started=time.time(),
            backend=self.backend.name, ended=None, exit_code=None,
            groups=[g.name for g in self.spec.jobs],
        )
        if self.cloud is not None:
            self.poller: Poller = CloudPoller(self.cloud)
        else:
            self.poller = make_poller(str(self.rd.root))
        await self._reattach(live)
        self.queue.extend(r.idx for r in rows if r.status == J.QUEUED)

    async def _reattach(self, live: list[JobRow]) -> None:
        """Jobs an earlier runner left live: keep them if still alive, else decide."""
        pending = []
        for row in live:
            rc = self._read_rc(row.idx, row.trial)
            if rc is not None:
                self.inflight[row.idx] = row
                self._finish(row, rc, "")
            else:
                pending.append(row)
        items = [(r.jid, read_start(self.rd, r.idx, r.trial)) for r in pending]
        found = await self.backend.reattach_many(items) if items else []
        for row, jid in zip(pending, found, strict=True):
            if jid:
                row.jid = jid
                self.inflight[row.idx] = row
                self.poller.watch([(row.idx, row.trial)])
            else:
                row.note = "its earlier runner died; it will run again"
                row.trial += 1
                row.first_trial = row.trial
                self._set(row, J.QUEUED)

    async def _loop(self) -> None:
        now = time.monotonic()
        next_sweep = now + self.backend.sweep_interval
        next_query = now
        while True:
            if self.stop_reason is not None:
                await self._cancel_inflight()
                return
            await self._fill()
            await self._dispatch()
            if not self.queue and not self.inflight:
                return
            self._flush()
            self.reporter.progress(self.counts)
            if not self._wake.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            now = time.monotonic()
            sweep = now >= next_sweep
            if sweep:
                next_sweep = now + self.backend.sweep_interval
            self._collect(sweep)
            self.polls += 1
            if "on_job_polling" in self.hooks.active:
                await self._dispatch()  # a job's on_job_started comes before its polls
                for row in list(self.inflight.values()):
                    if row.status == J.RUNNING:  # polled while running, as in the seed
                        view = self.plan.view(row, row.status)
                        await self.hooks.call("on_job_polling", self.backend, view, self.polls)
            if now >= next_query or self.backend.query_interval <= 0:
                next_query = now + max(self.backend.query_interval, 0.5)
                self._check_kill_request()
                if self.inflight:
                    await self._liveness()

    # -- submission ---------------------------------------------------------------------
    async def _fill(self) -> None:
        if not self.queue:
            return
        if self.backend.arrays:
            held = self.retry_since is not None and self.inflight
            if held and time.monotonic() - self.retry_since < RETRY_HOLD:  # type: ignore[operator]
                return  # more retries may come: submit them together
            take = len(self.queue)
        else:
            take = min(self.forks - len(self.inflight), len(self.queue))
        if take <= 0:
            return
        batch = [self.rows[self.queue.popleft()] for _ in range(take)]
        if not self.queue:
            self.retry_since = None
        if "on_job_submitting" in self.hooks.active:
            batch = await self._ask_submitting(batch)
            if not batch:
                return
        for row in batch:
            if self.cloud is None:
                self._free_trial(row)
            row.jid = None
            row.rc = None
            row.note = None
            self.inflight[row.idx] = row
            self._set(row, J.SUBMITTING)
        self.poller.watch([(r.idx, r.trial) for r in batch])
        self._flush()  # the intent is durable before anything is submitted
        subs = [self._submission(r) for r in batch]
        n = max(1, self.spec.submission_batch)
        whole = self.backend.arrays or self.backend.whole_fill
        size = len(subs) if whole else max(1, -(-len(subs) // n))
        chunks = [subs[i : i + size] for i in range(0, len(subs), size)]
        try:
            results = await asyncio.gather(*(self.backend.submit(c) for c in chunks))
        except BackendError as exc:
            self._backend_failed(exc)
            for row in reversed(batch):
                self.inflight.pop(row.idx, None)
                self._set(row, J.QUEUED)
                self.queue.appendleft(row.idx)
            self.poller.unwatch([r.idx for r in batch])
            await asyncio.sleep(min(30.0, 0.5 * 2**self.failures))
            return
        self.failures = 0
        stamp = time.time()
        for res in (r for chunk in results for r in chunk):
            row = self.rows[res.index]
            if res.jid is None:
                self._finish(row, None, f"submission failed: {res.error}")
                continue
            row.jid = res.jid
            row.submitted = stamp
            if row.status == J.SUBMITTING:
                self._set(row, J.SUBMITTED)

    def _free_trial(self, row: JobRow) -> None:
        """Never reuse a trial number whose files exist (a lost journal, an old run)."""
        while (self.rd.file(row.idx, "start", row.trial).exists()
               or self.rd.file(row.idx, "rc", row.trial).exists()):
            if row.trial == row.first_trial:
                row.first_trial += 1
            row.trial += 1

    async def _ask_submitting(self, batch: list[JobRow]) -> list[JobRow]:
        """Plugins may veto a submission: the job is then skipped."""
        await self._dispatch()  # e.g. a retried job's on_job_failed/on_job_queued come first
        keep = []
        for row in batch:
            answers = await self.hooks.call("on_job_submitting", self.backend,
                                            self.plan.view(row, row.status))
            if any(a is False for a in answers):
                row.note = "skipped by a plugin (on_job_submitting)"
                self._set(row, J.SKIPPED)
            else:
                keep.append(row)
        return keep

    def _submission(self, row: JobRow) -> Submission:
        g = self.plan.groups[row.grp]
        return Submission(
            index=row.idx, trial=row.trial, name=row.name, script=self.rd.script(row.idx),
            group=row.grp, options=g.options, timeout=g.timeout,
        )

    def _backend_failed(self, exc: BackendError) -> None:
        self.failures += 1
        if self.failures == 1:
            self.reporter.message(f"warning: {exc} (retrying)")
        if self.failures >= MAX_BACKEND_FAILURES:
            raise BackendError(f"the scheduler kept failing: {exc}")

    # -- watching ---------------------------------------------------------------------------
    def _collect(self, sweep: bool) -> None:
        changes = self.poller.poll_events()
        if sweep:
            changes = [*changes, *self.poller.sweep()]
        self._apply(changes)

    def _apply(self, changes: Iterable[tuple[int, int, bool, int | None]]) -> None:
        for idx, trial, started, rc in changes:
            row = self.inflight.get(idx)
            if row is None or row.trial != trial:
                continue
            if started and row.status in (J.SUBMITTING, J.SUBMITTED):
                row.started = time.time()
                self._set(row, J.RUNNING)
            if rc is not None:
                self._finish(row, rc, "")

    async def _liveness(self) -> None:
        rows = [r for r in self.inflight.values() if r.jid]
        try:
            states = await self.backend.query([r.jid for r in rows if r.jid])
        except BackendError as exc:
            self._backend_failed(exc)
            return
        self.failures = 0
        now = time.monotonic()
        for row in rows:
            state = states.get(row.jid or "")
            if state is not None and state.liveness in (Liveness.PENDING, Liveness.RUNNING):
                self.lost_since.pop(row.idx, None)
                if state.liveness is Liveness.RUNNING and row.status == J.SUBMITTED:
                    row.started = row.started or time.time()
                    self._set(row, J.RUNNING)
                continue
            self._gone(row, state, now)

    def _gone(self, row: JobRow, state: JobState | None, now: float) -> None:
        """The scheduler no longer runs this job: the rc file decides, after a grace."""
        rc = self._read_rc(row.idx, row.trial)
        if rc is not None:
            self._finish(row, rc, "")
            return
        first = self.lost_since.setdefault(row.idx, now)
        if now - first < self.backend.lost_grace:
            return
        if state is None:
            why = "the job vanished from the scheduler without writing its rc file"
        else:
            why = f"the scheduler reports {state.reason or state.liveness.value}"
            why += " and the job wrote no rc file"
        self._finish(row, None, why)

    # -- outcomes -------------------------------------------------------------------------------
    def _finish(self, row: JobRow, rc: int | None, note: str) -> None:
        self.inflight.pop(row.idx, None)
        self.lost_since.pop(row.idx, None)
        self.poller.unwatch([row.idx])
        if row.jid:
            self.backend.release(row.jid)
        row.rc = rc
        row.ended = time.time()
        if note:
            row.note = note
            self._write_note(row, note)
        if rc == 0:
            self._set(row, J.SUCCEEDED)
            return
        g = self.plan.groups[row.grp]
        retries = row.trial - row.first_trial
        if g.error_strategy == "retry" and retries < g.num_retries and self.stop_reason is None:
            if self._hooked:  # the failed trial is reported before its retry is queued
                self._raise_hooks(row, row.status, J.FAILED)
            row.trial += 1
            self.retried += 1
            self._set(row, J.QUEUED)
            self.queue.append(row.idx)
            if self.retry_since is None:
                self.retry_since = time.monotonic()
            return
        self._set(row, J.FAILED)
        if g.error_strategy == "halt" and self.stop_reason is None:
            self.reporter.message(f"job {row.idx} ({row.name}) failed: halting the run")
            self.stop_reason = ExitCode.JOBS_FAILED

    def _write_note(self, row: JobRow, note: str) -> None:
        path = self.rd.file(row.idx, "notes", row.trial)
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as fh:
            fh.write(f"xqdecl: {note}\n")
        if self.cloud is not None:
            with contextlib.suppress(BackendError, OSError):
                self.cloud.write_bytes(f"jobs/{row.idx}/notes.{row.trial}", path.read_bytes())

    async def _cancel_inflight(self) -> None:
        """Cancel every live job, then record what each one became."""
        for idx in self.queue:
            if self.stop_reason == ExitCode.JOBS_FAILED:
                self.rows[idx].note = "not started: the run halted"
                self._set(self.rows[idx], J.CANCELLED)
        self.queue.clear()
        live = list(self.inflight.values())
        if not live:
            return
        if "on_job_killing" in self.hooks.active:
            live = await self._ask_killing(live)
        jids = [r.jid for r in live if r.jid]
        if jids:
            try:
                await self._cancel(jids)
            except BackendError as exc:
                self.reporter.message(f"warning: cancelling failed: {exc}")
        for row in live:
            rc = self._read_rc(row.idx, row.trial)
            self.inflight.pop(row.idx, None)
            self.poller.unwatch([row.idx])
            if row.jid:
                self.backend.release(row.jid)
            row.rc = rc
            row.ended = time.time()
            if rc == 0:  # it finished before the cancel reached it
                self._set(row, J.SUCCEEDED)
                continue
            row.note = "cancelled"
            self._set(row, J.CANCELLED)

    async def _ask_killing(self, live: list[JobRow]) -> list[JobRow]:
        """Plugins may keep a job alive through a cancel: it is left running."""
        await self._dispatch()
        kill = []
        for row in live:
            answers = await self.hooks.call("on_job_killing", self.backend,
                                            self.plan.view(row, row.status))
            if any(a is False for a in answers):
                self.inflight.pop(row.idx, None)
                self.poller.unwatch([row.idx])
                row.note = "kept running by a plugin (on_job_killing)"
                self.dirty.add(row.idx)
            else:
                kill.append(row)
        return kill

    async def _cancel(self, jids: Sequence[str]) -> None:
        task = asyncio.ensure_future(self.backend.cancel(jids))
        while not task.done():
            await asyncio.wait([task], timeout=0.1)
            if self.force and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, BackendError):
                    await task
                await self.backend.kill_now(jids)
                return
        task.result()

    def _result(self, elapsed: float) -> RunResult:
        failed = [r for r in self.rows if r.status == J.FAILED]
        if self.stop_reason == ExitCode.INTERRUPTED:
            code = ExitCode.INTERRUPTED
        elif self.stop_reason == ExitCode.BACKEND:
            code = ExitCode.BACKEND
        elif failed or self.counts[J.CANCELLED] or self.counts[J.QUEUED]:
            code = ExitCode.JOBS_FAILED
        else:
            code = ExitCode.OK
        return RunResult(
            run=self.spec.name, rundir=str(self.rd.root), exit_code=code,
            counts={k: v for k, v in self.counts.items() if v},
            failed=failed, elapsed=elapsed, retried=self.retried,
            message=getattr(self, "message", ""),
        )


def run_spec(spec: Spec, **kwargs: object) -> RunResult:
    """Blocking run (the Python API's `xqdecl.run`)."""
    return asyncio.run(Runner(spec, **kwargs).run())  # type: ignore[arg-type]

