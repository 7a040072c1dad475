"""Why and how a run stops: signals, `xqdecl kill`, a halt, an infrastructure
error; and cancelling its live jobs.

Signal handlers go in before anything slow (planning a large spec), so a
Ctrl-C or SIGTERM at any moment is seen within one cycle; a second one
forces the cancel (KILL without waiting for a grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from xqdecl.engine.effects import Effects
from xqdecl.engine.table import Data, Ev
from xqdecl.errors import BackendError, ExitCode
from xqdecl.store.journal import CANCELLING, JobRow


class Stop:
    """The run's stop request: its reason (an exit code), and whether to force it."""

    def __init__(self, say: Callable[[str], None], wake: Callable[[], None]):
        self.reason: ExitCode | None = None
        self.force = False
        self.signal_name: str | None = None
        self.message = ""
        self._say = say
        self._wake = wake
        self._installed: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def __bool__(self) -> bool:
        return self.reason is not None

    def request(self, reason: ExitCode, message: str = "") -> None:
        """Stop the run with `reason` (the first reason given is kept)."""
        if self.reason is None:
            self.reason = reason
            self.message = message
        self._wake()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM in the running loop (main thread only)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
            except (RuntimeError, ValueError):  # not the main thread
                pass

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in self._installed:
                self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        self.signal_name = name
        if self.reason == ExitCode.INTERRUPTED:
            self.force = True
            self._say("interrupted again: killing live jobs now")
        else:
            self._say(f"{name} received: cancelling live jobs (again to force)")
        self.reason = ExitCode.INTERRUPTED
        self._wake()


class Canceller:
    """Cancelling live jobs: all of them when the run stops, or the ones an earlier
    runner was cancelling when it died. A job's `cancelling` status is written
    before its cancel is sent, so a runner killed mid-cancel leaves jobs that the
    next run cancels for good and then runs again."""

    def __init__(self, fx: Effects, backend: Any, stop: Stop,
                 view: Callable[[JobRow, str, int], Any],
                 read_rc: Callable[[int, int], int | None], flush: Callable[[], None],
                 dispatch: Callable[[], Awaitable[None]], say: Callable[[str], None]):
        self.fx = fx
        self.table = fx.table
        self.backend = backend
        self.stop = stop
        self.view = view
        self.read_rc = read_rc
        self.flush = flush
        self.dispatch = dispatch
        self.say = say

    async def stop_all(self) -> None:
        """Cancel every live job, then record what each one became."""
        table = self.table
        table.stop()
        if self.stop.reason == ExitCode.JOBS_FAILED:
            self.fx.dirty.update(table.halt_queued())
        table.queue.clear()  # interrupted: queued jobs stay queued for the next run
        live = list(table.inflight.values())
        if not live:
            return
        if "on_job_killing" in self.fx.active:
            live = await self._ask_killing(live)
        for row in live:
            self.fx(row.idx, Ev.CANCEL)
        self.fx.cancels.clear()
        self.flush()  # a runner killed from here on leaves them `cancelling`: they run again
        jids = [r.jid for r in live if r.jid]
        if jids:
            try:
                await self._cancel(jids)
            except BackendError as exc:
                self.say(f"warning: cancelling failed: {exc}")
        now = time.time()
        for row in live:
            if table.inflight.get(row.idx) is row:
                rc = self.read_rc(row.idx, row.trial)
                self.fx(row.idx, Ev.CANCEL_DONE, Data(rc=rc, now=now))

    async def _ask_killing(self, live: list[JobRow]) -> list[JobRow]:
        """Plugins may keep a job alive through a cancel: it is left running."""
        await self.dispatch()
        kill = []
        for row in live:
            answers = await self.fx.hooks.call("on_job_killing", self.backend,
                                               self.view(row, row.status, row.trial))
            if any(a is False for a in answers):
                self.fx(row.idx, Ev.KEEP)
            else:
                kill.append(row)
        return kill

    async def _cancel(self, jids: Sequence[str]) -> None:
        """The backend's cancel; a second Ctrl-C turns it into an immediate kill."""
        task = asyncio.ensure_future(self.backend.cancel(jids))
        while not task.done():
            await asyncio.wait([task], timeout=0.1)
            if self.stop.force and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, BackendError):
                    await task
                await self.backend.kill_now(jids)
                return
        task.result()

    async def leftovers(self) -> None:
        """Jobs an earlier runner was cancelling when it died: finish that cancel."""
        rows = [r for r in self.fx.cancels
                if self.table.inflight.get(r.idx) is r and r.status == CANCELLING and r.jid]
        self.fx.cancels.clear()
        if rows:
            try:
                await self.backend.cancel([r.jid for r in rows if r.jid])
            except BackendError as exc:
                self.say(f"warning: cancelling an earlier run's job failed: {exc}")
