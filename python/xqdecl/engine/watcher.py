"""Watching jobs in flight: the poller's events (and its slow safety-net
sweep), the backend's one batched query per interval, the lost-job grace, and
the check of jobs an earlier runner left live.

A job the scheduler no longer knows and that wrote no rc file is lost only
after the grace, and only if the run directory is still usable: a deleted or
read-only workdir is an infrastructure error (`StoreError`), never the job's.
"""

from __future__ import annotations

import time
from typing import Any

from xqdecl.backends.base import JobState, Liveness
from xqdecl.engine.effects import Effects
from xqdecl.engine.store import RunStore
from xqdecl.engine.submitter import SchedulerFailures
from xqdecl.engine.table import Data, Ev
from xqdecl.errors import BackendError, StoreError
from xqdecl.store import journal as J
from xqdecl.store.journal import JobRow

ALIVE = (Liveness.PENDING, Liveness.RUNNING)


class Watcher:
    def __init__(self, fx: Effects, backend: Any, poller: Any, store: RunStore,
                 failures: SchedulerFailures):
        self.fx = fx
        self.table = fx.table
        self.backend = backend
        self.poller = poller
        self.check_store = store.check_usable
        self.read_rc = store.read_rc_for(poller)
        self.read_start = store.read_start
        self.failures = failures

    def collect(self, sweep: bool) -> None:
        """Apply what the backend was told and the job files say: started, ended with rc."""
        try:
            changes = [*self.backend.take_news(), *self.poller.poll_events()]
            if sweep:
                changes = [*changes, *self.poller.sweep()]
        except OSError as exc:
            self.check_store()
            raise StoreError(f"cannot read the run's events: {exc}") from None
        inflight = self.table.inflight
        now = time.time()
        for idx, trial, started, rc in changes:
            row = inflight.get(idx)
            if row is None or row.trial != trial:
                continue
            if started and row.status in (J.SUBMITTING, J.SUBMITTED):
                self.fx(idx, Ev.STARTED, Data(now=now))
            if rc is not None:
                self.fx(idx, Ev.ENDED, Data(rc=rc, now=now))

    async def query(self) -> None:
        """One batched liveness query for every job in flight that has a jid."""
        rows = [r for r in self.table.inflight.values() if r.jid]
        if not rows:
            return
        try:
            states = await self.backend.query([r.jid for r in rows])
        except StoreError:
            raise
        except BackendError as exc:
            self.failures.failed(exc)
            return
        self.failures.ok()
        now = time.monotonic()
        for row in rows:
            if self.table.inflight.get(row.idx) is not row:
                continue
            state = states.get(row.jid or "")
            if state is not None and state.liveness in ALIVE:
                self.fx.lost_since.pop(row.idx, None)
                if state.liveness is Liveness.RUNNING and row.status == J.SUBMITTED:
                    self.fx(row.idx, Ev.STARTED, Data(now=time.time()))
                continue
            self._gone(row, state, now)

    def _gone(self, row: JobRow, state: JobState | None, now: float) -> None:
        """The scheduler no longer runs this job: the rc file decides, after a grace."""
        rc = self.read_rc(row.idx, row.trial)
        if rc is not None:
            self.fx(row.idx, Ev.ENDED, Data(rc=rc, now=time.time()))
            return
        first = self.fx.lost_since.setdefault(row.idx, now)
        if now - first < self.backend.lost_grace:
            return
        self.check_store()
        if state is None:
            why = "the job vanished from the scheduler without writing its rc file"
        else:
            why = f"the scheduler reports {state.reason or state.liveness.value}"
            why += " and the job wrote no rc file"
        self.fx(row.idx, Ev.LOST, Data(note=why, now=time.time()))

    async def verify(self, rows: list[JobRow]) -> None:
        """Jobs an earlier runner left live: ended (rc file), still alive, or gone."""
        pending = []
        now = time.time()
        for row in rows:
            if self.table.inflight.get(row.idx) is not row:
                continue
            rc = self.read_rc(row.idx, row.trial)
            if rc is not None:
                self.fx(row.idx, Ev.ENDED, Data(rc=rc, now=now))
            else:
                pending.append(row)
        if not pending:
            return
        items = [(r.jid, self.read_start(r.idx, r.trial)) for r in pending]
        found = await self.backend.reattach_many(items)
        for row, jid in zip(pending, found, strict=True):
            if jid:
                row.jid = jid
                self.fx.dirty.add(row.idx)
            else:
                self.fx(row.idx, Ev.GONE, Data(note="its earlier runner died; it will run again"))
