"""The job table: every job's status, attempt number and the counts, changed
only through one transition table. No I/O: the loop feeds it events and
carries out the effects it returns (docs/internals.md draws the table).

An event that a status does not allow raises `TransitionError`: a bug the
tests can see, never a silent overwrite.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from xqdecl.store.journal import (
    CANCELLED,
    CANCELLING,
    FAILED,
    QUEUED,
    RUNNING,
    SKIPPED,
    STATUSES,
    SUBMITTED,
    SUBMITTING,
    SUCCEEDED,
    JobRow,
)

#: a job added to the table but not yet given its first status
PLANNED = "planned"
LIVE = frozenset({SUBMITTING, SUBMITTED, RUNNING, CANCELLING})


class Ev(Enum):
    """What happens to a job."""

    QUEUE = "queue"          # planned: it runs in this run
    DONE = "done"            # planned: it succeeded in an earlier run with this definition
    REATTACH = "reattach"    # planned: an earlier runner left it live (status: the one it had)
    SUBMIT = "submit"        # taken from the queue; its intent is written before the call
    VETO = "veto"            # a plugin said no to its submission
    ACCEPTED = "accepted"    # the scheduler took it (jid)
    REFUSED = "refused"      # the scheduler refused this job (note: why)
    UNSENT = "unsent"        # the submit call failed as a whole: back to the queue's front
    STARTED = "started"      # its start file/event, or the scheduler says it runs
    ENDED = "ended"          # its rc file says rc
    LOST = "lost"            # no rc file, and the scheduler lost it past the grace
    CANCEL = "cancel"        # the run asks it to stop
    CANCEL_DONE = "cancel_done"  # the cancel returned; rc as found (None: no rc file)
    KEEP = "keep"            # a plugin kept it through a cancel: the run lets go of it
    GONE = "gone"            # re-attached, but neither alive nor ended: it never ran to its end
    HALT = "halt"            # the run stopped before it was submitted


class Fx(Enum):
    """What the loop must do after a transition."""

    JOURNAL = "journal"  # write the job's row (in the cycle's one transaction)
    WATCH = "watch"      # watch its (index, trial) for start/end events
    UNWATCH = "unwatch"  # stop watching it; let the backend forget its jid
    LET_GO = "let_go"    # stop watching it, but the backend keeps it running (a plugin said so)
    SUBMIT = "submit"    # put it in this cycle's submission
    CANCEL = "cancel"    # put it in this cycle's cancel call
    RETRY = "retry"      # it was queued again: hold array submissions briefly
    HALT = "halt"        # a job failed for good under error_strategy = "halt"
    NOTE = "note"        # add to an attempt's notes file: (NOTE, (text, trial))
    HOOK = "hook"        # raise a plugin hook: (HOOK, (hook name, status and trial it sees))


Effect = tuple[Fx, object]


class TransitionError(RuntimeError):
    """An event the job's status does not allow (a bug in the caller)."""

    def __init__(self, row: JobRow, event: Ev):
        super().__init__(f"job {row.idx} ({row.name}): event {event.value!r} "
                         f"is not allowed in status {row.status!r}")
        self.index, self.status, self.event = row.idx, row.status, event


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """What a group's failures lead to."""

    retries: int = 0      # attempts after the first one (error_strategy = "retry")
    halt: bool = False    # error_strategy = "halt"


_J = (Fx.JOURNAL, None)
_W = (Fx.WATCH, None)
_U = (Fx.UNWATCH, None)


def _hook(name: str, status: str, trial: int) -> Effect:
    """A hook sees the job as it was at this point (`trial`: the attempt it is about)."""
    return (Fx.HOOK, (name, status, trial))


@dataclass(slots=True)
class Data:
    """What an event carries (only the fields that event uses are read)."""

    now: float | None = None
    rc: int | None = None
    jid: str | None = None
    note: str | None = None
    trial: int | None = None
    status: str | None = None


Handler = Callable[["JobTable", JobRow, Data], list[Effect]]


class JobTable:
    """Rows, counts, the queue and the jobs in flight of one run."""

    def __init__(self, policies: Sequence[GroupPolicy]):
        self.policies = list(policies)
        self.rows: list[JobRow] = []
        self.counts: dict[str, int] = dict.fromkeys((PLANNED, *STATUSES), 0)
        self.group_counts = [dict.fromkeys((PLANNED, *STATUSES), 0) for _ in self.policies]
        self.queue: deque[int] = deque()
        self.inflight: dict[int, JobRow] = {}
        self.retried: set[int] = set()
        self.kept: set[int] = set()  # live jobs a plugin kept through a cancel
        self.stopping = False  # no retries, no new submissions once the run stops

    # -- rows ----------------------------------------------------------------------------
    def add(self, row: JobRow) -> None:
        """A planned job enters the table (in index order); give it an event next."""
        if row.idx != len(self.rows):
            raise ValueError(f"job {row.idx} added out of order (expected {len(self.rows)})")
        row.status = PLANNED
        self.rows.append(row)
        self.counts[PLANNED] += 1
        self.group_counts[row.grp][PLANNED] += 1

    def stop(self) -> None:
        """The run stops: nothing is retried or submitted from now on."""
        self.stopping = True

    def apply(self, index: int, event: Ev, data: Data | None = None) -> list[Effect]:
        """Feed one event to job `index`; returns the effects to carry out."""
        row = self.rows[index]
        handler = TRANSITIONS.get((row.status, event))
        if handler is None or index in self.kept:  # a kept job is no longer this run's
            raise TransitionError(row, event)
        return handler(self, row, data or _NO_DATA)

    def take(self, limit: int) -> list[int]:
        """Up to `limit` queued jobs, oldest first (they still need Ev.SUBMIT or Ev.VETO)."""
        q = self.queue
        return [q.popleft() for _ in range(min(limit, len(q)))]

    def halt_queued(self) -> list[int]:
        """The run halted: every job still queued is cancelled without starting."""
        halted = list(self.queue)
        self.queue.clear()
        for i in halted:
            _halt(self, self.rows[i], _NO_DATA)
        return halted

    # -- the one place a status changes ----------------------------------------------------
    def _to(self, row: JobRow, status: str) -> None:
        old = row.status
        self.counts[old] -= 1
        self.counts[status] += 1
        gc = self.group_counts[row.grp]
        gc[old] -= 1
        gc[status] += 1
        row.status = status
        if status in LIVE:
            self.inflight[row.idx] = row
        elif old in LIVE:
            del self.inflight[row.idx]


_NO_DATA = Data()


# -- handlers: one per (status, event) family --------------------------------------------------
def _queue(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    t._to(row, QUEUED)
    t.queue.append(row.idx)
    return [_J, _hook("on_job_queued", QUEUED, row.trial)]


def _done(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    t._to(row, SKIPPED)
    row.note = d.note or "succeeded in an earlier run"
    return [_J]


def _reattach(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    status = d.status or SUBMITTED
    if status not in LIVE:
        raise TransitionError(row, Ev.REATTACH)
    t._to(row, status)
    if status == CANCELLING:  # an earlier runner died while cancelling it: finish that
        return [_J, _W, (Fx.CANCEL, None)]
    return [_J, _W]


def _submit(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    if d.trial is not None and d.trial > row.trial:  # files of that trial exist: skip past them
        row.trial = d.trial
    row.jid = row.rc = row.note = None
    row.submitted, row.started, row.ended = d.now, None, None
    t._to(row, SUBMITTING)
    return [_J, _W, (Fx.SUBMIT, None)]


def _veto(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    row.note = d.note or "skipped by a plugin (on_job_submitting)"
    t._to(row, SKIPPED)
    return [_J]


def _accepted(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    row.jid = d.jid
    if row.status == SUBMITTING:
        t._to(row, SUBMITTED)
        return [_J, _hook("on_job_submitted", SUBMITTED, row.trial)]
    return [_J]  # it started (or was asked to stop) before the answer came


def _unsent(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    t._to(row, QUEUED)
    row.submitted = None
    t.queue.appendleft(row.idx)
    return [_J, _U]


def _started(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    row.started = row.started or d.now
    t._to(row, RUNNING)
    return [_J, _hook("on_job_started", RUNNING, row.trial)]


def _noop(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    if d.now is not None and row.started is None and row.status != CANCELLING:
        row.started = d.now
    return []


def _ended(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    """The job's outcome: success, a retry, or a failure for good."""
    fx: list[Effect] = [_U, _J]
    if row.status in (SUBMITTING, SUBMITTED):  # it ended between two looks: it did start
        fx.append(_hook("on_job_started", RUNNING, row.trial))
    row.rc, row.ended = d.rc, d.now
    if d.note:
        row.note = d.note
        fx.append((Fx.NOTE, (d.note, row.trial)))
    if d.rc == 0:
        t._to(row, SUCCEEDED)
        fx.append(_hook("on_job_succeeded", SUCCEEDED, row.trial))
        return fx
    policy = t.policies[row.grp]
    fx.append(_hook("on_job_failed", FAILED, row.trial))
    if not t.stopping and row.trial - row.first_trial < policy.retries:
        row.trial += 1
        t.retried.add(row.idx)
        t._to(row, QUEUED)
        t.queue.append(row.idx)
        fx += [_hook("on_job_queued", QUEUED, row.trial), (Fx.RETRY, None)]
        return fx
    t._to(row, FAILED)
    if policy.halt and not t.stopping:
        t.stopping = True
        fx.append((Fx.HALT, None))
    return fx


def _lost(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    return _ended(t, row, Data(now=d.now, rc=None, note=d.note or "lost"))


def _cancel(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    t._to(row, CANCELLING)
    return [_J, (Fx.CANCEL, None)]


def _cancel_end(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    """A job asked to stop has ended: it succeeded if it got there first, else cancelled;
    one left cancelling by an earlier runner runs again (the user stopped that run, not it)."""
    row.rc, row.ended = d.rc, d.now
    if d.rc == 0:
        t._to(row, SUCCEEDED)
        return [_U, _J, _hook("on_job_succeeded", SUCCEEDED, row.trial)]
    if not t.stopping:
        row.trial += 1
        row.first_trial += 1  # not one of the job's retries
        row.note = "cancelled with an earlier run: it runs again"
        t._to(row, QUEUED)
        t.queue.append(row.idx)
        return [_U, _J, _hook("on_job_queued", QUEUED, row.trial)]
    row.note = d.note or "cancelled"
    t._to(row, CANCELLED)
    return [_U, _J, _hook("on_job_killed", CANCELLED, row.trial)]


def _gone(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    """An earlier runner's job that is neither alive nor ended runs again (not a retry)."""
    row.note = d.note or "its earlier runner died; it will run again"
    if t.stopping:
        t._to(row, CANCELLED)
        return [_U, _J]
    row.trial += 1
    row.first_trial += 1
    t._to(row, QUEUED)
    t.queue.append(row.idx)
    return [_U, _J, _hook("on_job_queued", QUEUED, row.trial)]


def _keep(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    row.note = d.note or "kept running by a plugin (on_job_killing)"
    del t.inflight[row.idx]  # still live for the scheduler; this run lets go of it
    t.kept.add(row.idx)
    return [(Fx.LET_GO, None), _J]


def _halt(t: JobTable, row: JobRow, d: Data) -> list[Effect]:
    row.note = d.note or "not started: the run halted"
    t._to(row, CANCELLED)
    return [_J]


_SENT = (SUBMITTING, SUBMITTED, RUNNING)

TRANSITIONS: dict[tuple[str, Ev], Handler] = {
    (PLANNED, Ev.QUEUE): _queue,
    (PLANNED, Ev.DONE): _done,
    (PLANNED, Ev.REATTACH): _reattach,
    (QUEUED, Ev.SUBMIT): _submit,
    (QUEUED, Ev.VETO): _veto,
    (QUEUED, Ev.HALT): _halt,
    (SUBMITTING, Ev.ACCEPTED): _accepted,
    (RUNNING, Ev.ACCEPTED): _accepted,
    (SUBMITTING, Ev.REFUSED): _lost,
    (SUBMITTING, Ev.UNSENT): _unsent,
    (SUBMITTING, Ev.STARTED): _started,
    (SUBMITTED, Ev.STARTED): _started,
    (RUNNING, Ev.STARTED): _noop,
    (CANCELLING, Ev.STARTED): _noop,
    **{(s, Ev.ENDED): _ended for s in _SENT},
    **{(s, Ev.LOST): _lost for s in _SENT},
    **{(s, Ev.CANCEL): _cancel for s in _SENT},
    **{(s, Ev.KEEP): _keep for s in _SENT},
    (CANCELLING, Ev.CANCEL): _noop,
    **{(s, Ev.GONE): _gone for s in LIVE},
    (CANCELLING, Ev.ENDED): _cancel_end,
    (CANCELLING, Ev.LOST): _cancel_end,
    (CANCELLING, Ev.CANCEL_DONE): _cancel_end,
}

#: what each transition can lead to (for docs/internals.md and the tests)
TARGETS: dict[Handler, frozenset[str]] = {
    _queue: frozenset({QUEUED}),
    _done: frozenset({SKIPPED}),
    _reattach: LIVE,
    _submit: frozenset({SUBMITTING}),
    _veto: frozenset({SKIPPED}),
    _halt: frozenset({CANCELLED}),
    _accepted: frozenset({SUBMITTED, RUNNING}),
    _unsent: frozenset({QUEUED}),
    _started: frozenset({RUNNING}),
    _noop: frozenset({RUNNING, CANCELLING}),
    _ended: frozenset({SUCCEEDED, QUEUED, FAILED}),
    _lost: frozenset({QUEUED, FAILED}),
    _cancel: frozenset({CANCELLING}),
    _keep: frozenset(_SENT),
    _gone: frozenset({QUEUED, CANCELLED}),
    _cancel_end: frozenset({SUCCEEDED, QUEUED, CANCELLED}),
}
