"""Carrying out what the job table asks for after each event.

The table decides; this module does: journal rows to write (once per cycle),
start/end watching a trial, letting the backend forget a jid, the cycle's
submissions and cancels, the array retry hold, a halt, and plugin hooks
(queued as views, delivered once per cycle in order).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from xqdecl.engine.table import Data, Ev, Fx, JobTable
from xqdecl.plugin.hooks import Hooks, JobView
from xqdecl.store.journal import JobRow


class Poller:  # the part of the poller interface the effects use
    def watch(self, jobs: list[tuple[int, int]]) -> None: ...
    def unwatch(self, indexes: list[int]) -> None: ...


class Effects:
    """Feeds events to the table and carries out the effects it returns."""

    def __init__(self, table: JobTable, hooks: Hooks,
                 view: Callable[[JobRow, str, int], JobView],
                 on_halt: Callable[[JobRow], None]):
        self.table = table
        self.hooks = hooks
        self.active = hooks.active
        self.view = view
        self.on_halt = on_halt
        self.poller: Poller | None = None
        self.release: Callable[[str], None] = lambda jid: None
        self.note: Callable[[JobRow, str, int], None] = lambda row, text, trial: None
        self.dirty: set[int] = set()
        self.pending: list[tuple[str, JobView]] = []
        self.outbox: list[JobRow] = []  # to submit this cycle
        self.cancels: list[JobRow] = []  # to cancel this cycle
        self.lost_since: dict[int, float] = {}
        #: when the oldest retry still queued was queued (arrays hold retries briefly)
        self.retry_since: float | None = None

    def __call__(self, index: int, event: Ev, data: Data | None = None) -> JobRow:
        """One event for job `index`, its effects carried out; returns the row."""
        row = self.table.rows[index]
        jid = row.jid
        for fx, arg in self.table.apply(index, event, data):
            if fx is Fx.JOURNAL:
                self.dirty.add(index)
            elif fx is Fx.WATCH:
                if self.poller is not None:
                    self.poller.watch([(index, row.trial)])
            elif fx is Fx.UNWATCH or fx is Fx.LET_GO:
                self.lost_since.pop(index, None)
                if self.poller is not None:
                    self.poller.unwatch([index])
                if jid and fx is Fx.UNWATCH:  # a job let go of runs on: the backend keeps it
                    self.release(jid)
            elif fx is Fx.SUBMIT:
                self.outbox.append(row)
            elif fx is Fx.CANCEL:
                self.cancels.append(row)
            elif fx is Fx.RETRY:
                if self.retry_since is None:
                    self.retry_since = time.monotonic()
            elif fx is Fx.HALT:
                self.on_halt(row)
            elif fx is Fx.HOOK:
                self._hook(row, arg)
            elif fx is Fx.NOTE:
                text, trial = arg  # type: ignore[misc]
                self.note(row, text, trial)
        return row

    def _hook(self, row: JobRow, arg: Any) -> None:
        name, status, trial = arg
        if name in self.active:
            self.pending.append((name, self.view(row, status, trial)))

    async def dispatch(self, scheduler: Any) -> None:
        """Deliver the hooks raised since the last call, in order."""
        while self.pending:
            batch, self.pending = self.pending, []
            for name, view in batch:
                await self.hooks.call(name, scheduler, view)

    def take_dirty(self) -> list[JobRow]:
        rows = [self.table.rows[i] for i in sorted(self.dirty)]
        self.dirty.clear()
        return rows
