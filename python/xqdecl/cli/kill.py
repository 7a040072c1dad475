"""`xqdecl kill`: stopping a run from another terminal.

The runner is asked first (a request file, and SIGTERM when it runs on this
host): it cancels its jobs and records them. A runner that does not let go of
the run in time (stopped with SIGSTOP, stuck in a call) is not waited for
forever: its live jobs, as its journal lists them, are cancelled here through
the backend, by their job ids. With no runner at all, the same is done while
holding the run's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from xqdecl.cli.output import Output
from xqdecl.errors import BackendError, ExitCode
from xqdecl.spec import Spec
from xqdecl.store import journal as J
from xqdecl.store.journal import Journal, JournalReader
from xqdecl.store.layout import RunDir
from xqdecl.store.lock import RunLock, holder_of, holder_pid

Backend = Any  # a backend instance (xqdecl.backends): cancel(jids), close()


def stop_run(spec: Spec, rd: RunDir, out: Output, wait: float,
             make_backend: Callable[[], Backend]) -> int:
    """Ask the run's runner to cancel its live jobs; when it does not stop within
    `wait` seconds (stopped, stuck), cancel them here through the backend. With no
    runner, cancel the live jobs the journal lists."""
    if not rd.journal.exists():
        out.info(f"run {spec.name}: nothing to kill (never started)")
        if out.mode == "json":
            out.json({"run": spec.name, "runner": None, "cancelled": 0})
        return ExitCode.OK
    pid = holder_pid(rd.lock)
    holder = holder_of(rd.lock)
    if holder is None:
        return asyncio.run(_kill_direct(spec, rd, out, make_backend))
    rd.kill_request.write_text(f"{time.time()}\n")
    if pid is not None:
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to signal
            os.kill(pid, signal.SIGTERM)
    out.info(f"run {spec.name}: asked its runner ({holder}) to cancel every live job")
    t0 = time.monotonic()
    if _runner_stops(rd, wait):
        out.info(f"run {spec.name}: its runner has stopped")
        if out.mode == "json":
            out.json({"run": spec.name, "runner": holder, "cancelled": None, "answered": True})
        return ExitCode.OK
    out.info(f"run {spec.name}: its runner ({holder}) did not answer within "
             f"{time.monotonic() - t0:.0f} s (stopped or stuck): cancelling its live jobs "
             "here, through the backend")
    return asyncio.run(_kill_around(spec, rd, out, holder, make_backend))


def _runner_stops(rd: RunDir, wait: float) -> bool:
    """Whether the runner lets go of the run. It gets `wait` seconds, and again
    `wait` each time its journal shows it busy cancelling, up to 8 times `wait`."""
    start = time.monotonic()
    deadline = start + wait
    seen = _journal_counts(rd)
    while holder_of(rd.lock) is not None:
        now = time.monotonic()
        if now >= deadline:
            counts = _journal_counts(rd)
            if counts == seen or now - start >= 8 * wait:
                return False
            seen, deadline = counts, now + wait
        time.sleep(0.2)
    return True


def _journal_counts(rd: RunDir) -> dict[str, int] | None:
    try:
        reader = JournalReader(rd.journal)
    except (OSError, BackendError):
        return None
    try:
        return reader.counts()
    except BackendError:
        return None
    finally:
        reader.close()


def _live_rows(rd: RunDir) -> list[J.JobRow]:
    """The journal's live jobs, read without writing (a runner may still hold it)."""
    reader = JournalReader(rd.journal)
    try:
        return [r for r in reader.rows() if r.status in J.LIVE]
    finally:
        reader.close()


async def _cancel_rows(rows: list[J.JobRow], make_backend: Callable[[], Backend]) -> str | None:
    """Cancel the rows' jobs at the backend; the reason when it could not."""
    backend = make_backend()
    try:
        jids = [r.jid for r in rows if r.jid]
        if jids:
            await backend.cancel(jids)
    except BackendError as exc:
        return str(exc)
    finally:
        with contextlib.suppress(BackendError, OSError):
            await backend.close()
    return None


def _record_cancelled(rd: RunDir, rows: list[J.JobRow], note: str) -> None:
    journal = Journal(rd.journal)
    try:
        journal.db.execute("PRAGMA busy_timeout=3000")  # a stuck runner may hold it
        for r in rows:
            r.status, r.note, r.ended = J.CANCELLED, note, time.time()
        journal.update(rows)
    finally:
        journal.close()


async def _kill_around(spec: Spec, rd: RunDir, out: Output, holder: str,
                       make_backend: Callable[[], Backend]) -> int:
    """The runner holds the run but does not answer: cancel its live jobs anyway."""
    rows = _live_rows(rd)
    failed = await _cancel_rows(rows, make_backend)
    if failed is not None:
        out.error(f"xqdecl: run {spec.name}: could not cancel its live jobs: {failed}")
        if out.mode == "json":
            out.json({"run": spec.name, "runner": holder, "cancelled": 0, "answered": False,
                      "error": failed})
        return ExitCode.BACKEND
    try:
        _record_cancelled(rd, rows, "cancelled by xqdecl kill (its runner did not answer)")
    except BackendError as exc:
        out.error(f"xqdecl: warning: the journal still shows them live: {exc}")
    out.info(f"run {spec.name}: cancelled {len(rows)} live jobs; its runner ({holder}) is "
             "still there and will stop by itself if it resumes")
    if out.mode == "json":
        out.json({"run": spec.name, "runner": holder, "cancelled": len(rows),
                  "answered": False})
    return ExitCode.OK


async def _kill_direct(spec: Spec, rd: RunDir, out: Output,
                       make_backend: Callable[[], Backend]) -> int:
    """No runner: cancel the live jobs the journal lists, holding the run's lock."""
    lock = RunLock(rd.lock)
    lock.acquire()
    try:
        rows = _live_rows(rd)
        failed = await _cancel_rows(rows, make_backend)
        if failed is not None:
            raise BackendError(f"could not cancel the live jobs of run {spec.name}: {failed}")
        _record_cancelled(rd, rows, "cancelled by xqdecl kill")
    finally:
        lock.release()
    out.info(f"run {spec.name}: cancelled {len(rows)} live jobs")
    if out.mode == "json":
        out.json({"run": spec.name, "runner": None, "cancelled": len(rows)})
    return ExitCode.OK
