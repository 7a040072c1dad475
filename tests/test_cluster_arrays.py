"""What Slurm and SGE do alike, one body for both on the real services
(tests/cluster_bed.py: shim commands that count calls, hand-written wrappers)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_bed import Cluster, clusters, every, poll, run
from xqdecl.backends.base import Liveness, Submission

pytestmark = pytest.mark.parametrize("cluster", clusters())


@pytest.fixture
def service(cluster: Cluster, request: pytest.FixtureRequest) -> Any:
    """The running scheduler (the `slurm` or `sge` fixture; skips when it cannot start)."""
    return request.getfixturevalue(cluster.name)


def test_throttle_is_respected(cluster: Cluster, service: Any, tmp_path: Path) -> None:
    bed = cluster.bed(tmp_path, 8, body="sleep 2", **cluster.throttled(3))
    jids = [r.jid for r in run(bed.backend.submit(bed.subs)) if r.jid]
    assert cluster.array_arg(8, 3) in bed.calls(cluster.submit)[0]
    most = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        states = run(bed.backend.query(jids))
        most = max(most, sum(st.liveness is Liveness.RUNNING for st in states.values()))
        if all(bed.rc(s) is not None for s in bed.subs):
            break
        time.sleep(0.25)
    assert 1 <= most <= 3
    # no more than 3 jobs had started and not yet ended at any moment
    spans = []
    for s in bed.subs:
        meta = bed.rundir / "jobs" / str(s.index)
        spans.append(((meta / "start.0").stat().st_mtime, (meta / "rc.0").stat().st_mtime))
    assert max(sum(a <= t < b for a, b in spans) for t, _ in spans) <= 3


def test_retries_become_a_small_array(cluster: Cluster, service: Any, tmp_path: Path) -> None:
    bed = cluster.bed(tmp_path, 6, body="exit $(( t == 0 ))")
    run(bed.backend.submit(bed.subs))
    assert set(bed.wait_rcs(bed.subs).values()) == {1}  # every first trial fails
    retry = [Submission(s.index, 1, s.name, s.script, s.group, s.options) for s in bed.subs[1:4]]
    results = run(bed.backend.submit(retry))
    calls = bed.calls(cluster.submit)
    assert len(calls) == 2 and cluster.array_arg(3, 64) in calls[1]
    assert (bed.rundir / "arrays" / "g0-2.tasks").read_text() == "1 1\n2 1\n3 1\n"
    assert len({r.jid.split(cluster.sep)[0] for r in results if r.jid}) == 1
    assert bed.wait_rcs(retry) == {1: 0, 2: 0, 3: 0}


def test_cancel_a_running_array_with_one_call(cluster: Cluster, service: Any,
                                              tmp_path: Path) -> None:
    bed = cluster.bed(tmp_path, 5, body="sleep 120")
    jids = [r.jid for r in run(bed.backend.submit(bed.subs)) if r.jid]
    assert [j.split(cluster.sep)[1] for j in jids] == [
        str(k) for k in range(cluster.first_task, cluster.first_task + 5)]
    poll(bed, jids, every(5, Liveness.RUNNING))
    run(bed.backend.cancel(jids))
    assert bed.calls(cluster.cancel) == [jids[0].split(cluster.sep)[0]]  # the array id alone
    states = poll(bed, jids, lambda s: not any(
        st.liveness in (Liveness.PENDING, Liveness.RUNNING) for st in s.values()))
    assert not [j for j, st in states.items() if st.liveness is not Liveness.FAILED]
    run(bed.backend.cancel(jids[:2]))  # cancelling finished jobs again is quietly ignored
    assert [bed.rc(s) for s in bed.subs] == [None] * 5  # none got to its end


def test_no_array_mode_submits_each_wrapper(cluster: Cluster, service: Any,
                                            tmp_path: Path) -> None:
    options, placed = cluster.placed(service)
    bed = cluster.bed(tmp_path, 3, array=False, **options)
    results = run(bed.backend.submit(bed.subs))
    calls = bed.calls(cluster.submit)
    assert len(calls) == 3
    assert all(placed in c and cluster.array_word not in c for c in calls)
    assert calls[0].endswith(f"{bed.subs[0].script} 0")
    assert all(r.jid and r.jid.isdigit() for r in results)
    assert bed.wait_rcs(bed.subs) == {0: 0, 1: 0, 2: 0}
    jids = [r.jid for r in results if r.jid]
    states = poll(bed, jids, every(3, Liveness.DONE))
    assert {st.liveness for st in states.values()} == {Liveness.DONE}
