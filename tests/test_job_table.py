"""The job table: every (status, event) pair, and random event sequences."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xqdecl.engine.table import (
    LIVE,
    PLANNED,
    TARGETS,
    TRANSITIONS,
    Data,
    Ev,
    Fx,
    GroupPolicy,
    JobTable,
    TransitionError,
)
from xqdecl.report.stats import job_trials
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

ALL_STATUSES = (PLANNED, *STATUSES)

#: events that lead a planned job to each status (a path through the table)
PATHS: dict[str, list[tuple[Ev, Data]]] = {
    PLANNED: [],
    QUEUED: [(Ev.QUEUE, Data())],
    SUBMITTING: [(Ev.QUEUE, Data()), (Ev.SUBMIT, Data(now=1.0))],
    SUBMITTED: [(Ev.QUEUE, Data()), (Ev.SUBMIT, Data(now=1.0)), (Ev.ACCEPTED, Data(jid="7"))],
    RUNNING: [(Ev.QUEUE, Data()), (Ev.SUBMIT, Data(now=1.0)), (Ev.STARTED, Data(now=2.0))],
    CANCELLING: [(Ev.REATTACH, Data(status=CANCELLING))],
    SUCCEEDED: [(Ev.QUEUE, Data()), (Ev.SUBMIT, Data(now=1.0)), (Ev.ENDED, Data(rc=0))],
    FAILED: [(Ev.QUEUE, Data()), (Ev.SUBMIT, Data(now=1.0)), (Ev.ENDED, Data(rc=3))],
    CANCELLED: [(Ev.QUEUE, Data()), (Ev.HALT, Data())],
    SKIPPED: [(Ev.DONE, Data())],
}

#: a typical payload for each event
PAYLOAD = {
    Ev.QUEUE: Data(), Ev.DONE: Data(), Ev.REATTACH: Data(status=RUNNING),
    Ev.SUBMIT: Data(now=5.0), Ev.VETO: Data(), Ev.ACCEPTED: Data(jid="9"),
    Ev.REFUSED: Data(note="no"), Ev.UNSENT: Data(), Ev.STARTED: Data(now=6.0),
    Ev.ENDED: Data(rc=1, now=7.0), Ev.LOST: Data(now=7.0), Ev.CANCEL: Data(),
    Ev.CANCEL_DONE: Data(rc=143), Ev.KEEP: Data(), Ev.HALT: Data(), Ev.GONE: Data(),
}


def table_with(status: str, retries: int = 0, halt: bool = False) -> JobTable:
    t = JobTable([GroupPolicy(retries=retries, halt=halt)])
    t.add(JobRow(idx=0, name="j", grp=0, hash="h", status=QUEUED))
    for ev, data in PATHS[status]:
        if ev is Ev.SUBMIT:
            assert t.take(1) == [0]
        t.apply(0, ev, data)
    assert t.rows[0].status == status
    return t


def check_invariants(t: JobTable, taken: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    actual = Counter(r.status for r in t.rows)
    assert {k: v for k, v in t.counts.items() if v} == dict(actual)
    for g, gc in enumerate(t.group_counts):
        assert {k: v for k, v in gc.items() if v} == dict(
            Counter(r.status for r in t.rows if r.grp == g))
    live = {r.idx for r in t.rows if r.status in LIVE and r.idx not in t.kept}
    assert set(t.inflight) == live
    assert sorted(t.queue) == sorted(set(t.queue))  # no job queued twice
    queued = {r.idx for r in t.rows if r.status == QUEUED}
    assert set(t.queue) | taken == queued


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("event", list(Ev))
def test_every_status_and_event(status: str, event: Ev) -> None:
    """Every pair is either a declared transition landing on a declared status, or an error."""
    t = table_with(status)
    if event in (Ev.SUBMIT, Ev.VETO, Ev.HALT) and t.queue:
        t.take(1)
    handler = TRANSITIONS.get((status, event))
    before = t.rows[0].status
    if handler is None:
        with pytest.raises(TransitionError) as info:
            t.apply(0, event, PAYLOAD[event])
        assert info.value.status == before and info.value.event is event
        assert t.rows[0].status == before  # nothing changed
        return
    effects = t.apply(0, event, PAYLOAD[event])
    assert t.rows[0].status in TARGETS[handler] | {before}
    if t.rows[0].status != before:
        assert (Fx.JOURNAL, None) in effects  # every change is written
    assert all(isinstance(fx, Fx) for fx, _ in effects)


def test_terminal_statuses_accept_no_event() -> None:
    for status in (SUCCEEDED, FAILED, CANCELLED, SKIPPED):
        assert not [ev for (s, ev) in TRANSITIONS if s == status]


def test_a_failure_is_retried_until_the_budget_is_spent() -> None:
    t = table_with(QUEUED, retries=2)
    for attempt in range(3):
        assert t.take(1) == [0]
        t.apply(0, Ev.SUBMIT, Data(now=1.0))
        assert t.rows[0].trial == attempt
        fx = t.apply(0, Ev.ENDED, Data(rc=1, now=2.0))
        hooks = [arg[0] for kind, arg in fx if kind is Fx.HOOK]  # type: ignore[index]
        if attempt < 2:
            assert t.rows[0].status == QUEUED and (Fx.RETRY, None) in fx
            assert hooks == ["on_job_started", "on_job_failed", "on_job_queued"]
        else:
            assert t.rows[0].status == FAILED and (Fx.RETRY, None) not in fx
    assert t.retried == {0}
    assert job_trials(t.rows[0]) == 3  # what `status` reports


def test_halt_stops_retries_and_says_so_once() -> None:
    t = JobTable([GroupPolicy(halt=True)])
    for i in range(3):
        t.add(JobRow(idx=i, name=f"j{i}", grp=0, hash="h", status=QUEUED))
        t.apply(i, Ev.QUEUE)
    for i in t.take(2):
        t.apply(i, Ev.SUBMIT, Data(now=1.0))
    assert (Fx.HALT, None) in t.apply(0, Ev.ENDED, Data(rc=1))
    assert t.stopping
    assert (Fx.HALT, None) not in t.apply(1, Ev.ENDED, Data(rc=1))
    assert t.halt_queued() == [2]
    assert t.rows[2].status == CANCELLED and job_trials(t.rows[2]) == 0


def test_cancel_then_the_end_decides() -> None:
    t = table_with(RUNNING)
    t.stop()
    assert (Fx.CANCEL, None) in t.apply(0, Ev.CANCEL)
    t.apply(0, Ev.CANCEL_DONE, Data(rc=143))
    assert t.rows[0].status == CANCELLED
    t = table_with(RUNNING)
    t.stop()
    t.apply(0, Ev.CANCEL)
    t.apply(0, Ev.ENDED, Data(rc=0))  # it finished before the cancel reached it
    assert t.rows[0].status == SUCCEEDED


def test_a_job_an_earlier_runner_was_cancelling_runs_again() -> None:
    """Ctrl-C, then the runner killed while cancelling: the rerun runs the job again."""
    t = table_with(CANCELLING, retries=0)
    assert 0 in t.inflight
    t.apply(0, Ev.ENDED, Data(rc=143))
    row = t.rows[0]
    assert row.status == QUEUED and list(t.queue) == [0]
    assert row.trial == 1 and row.trial - row.first_trial == 0  # not one of its retries


def test_unsent_goes_back_to_the_front() -> None:
    t = JobTable([GroupPolicy()])
    for i in range(3):
        t.add(JobRow(idx=i, name=f"j{i}", grp=0, hash="h", status=QUEUED))
        t.apply(i, Ev.QUEUE)
    taken = t.take(2)
    for i in taken:
        t.apply(i, Ev.SUBMIT, Data(now=1.0))
    for i in reversed(taken):
        t.apply(i, Ev.UNSENT)
    assert list(t.queue) == [0, 1, 2]
    check_invariants(t)


def test_rows_must_come_in_order() -> None:
    t = JobTable([GroupPolicy()])
    with pytest.raises(ValueError):
        t.add(JobRow(idx=1, name="j", grp=0, hash="h", status=QUEUED))


# -- random sequences ------------------------------------------------------------------------
EVENTS = st.sampled_from(list(Ev))


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 6),
    retries=st.integers(0, 2),
    halt=st.booleans(),
    steps=st.lists(st.tuples(st.integers(0, 5), EVENTS, st.sampled_from([0, 1, 143, None]),
                             st.booleans()), max_size=80),
)
def test_random_sequences_keep_the_books(n: int, retries: int, halt: bool,
                                         steps: list[tuple[int, Ev, int | None, bool]]) -> None:
    """Whatever happens, counts match the rows, the queue holds exactly the queued jobs,
    the in-flight map exactly the live ones, and an illegal event changes nothing."""
    t = JobTable([GroupPolicy(retries=retries, halt=halt), GroupPolicy()])
    for i in range(n):
        t.add(JobRow(idx=i, name=f"j{i}", grp=i % 2, hash="h", status=QUEUED))
    for idx, ev, rc, stop in steps:
        i = idx % n
        if stop:
            t.stop()
        if ev in (Ev.SUBMIT, Ev.VETO, Ev.HALT) and i in t.queue:
            t.queue.remove(i)  # taken from the queue first, as the loop does
        data = Data(now=1.0, rc=rc, jid="1", status=RUNNING)
        before = (t.rows[i].status, t.rows[i].trial)
        try:
            t.apply(i, ev, data)
        except TransitionError:
            assert (t.rows[i].status, t.rows[i].trial) == before
            if ev in (Ev.SUBMIT, Ev.VETO, Ev.HALT) and before[0] == QUEUED:
                raise
        else:
            assert t.rows[i].trial >= before[1]
            if t.stopping:
                assert not (before[0] in LIVE and t.rows[i].status == QUEUED
                            and before[0] != CANCELLING and t.rows[i].trial > before[1]
                            and ev is not Ev.UNSENT)
        check_invariants(t)
