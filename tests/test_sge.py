"""The SGE backend: rendering (pure) and behaviour on the real one-host cell.

The real-cell tests hand-write minimal job.sh wrappers (start file, rc file,
event files, as docs/internals.md describes) and count scheduler calls through
shim commands (`qsub = "<tmp>/bin/qsub"`) that log and exec the real ones.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests import cluster_bed
from tests.cluster_bed import Bed, ctx_for, every, poll, run, write_job
from xqdecl.backends.base import BackendContext, Liveness
from xqdecl.backends.sge import SgeBackend
from xqdecl.errors import SchedulerError
from xqdecl.spec import SgeOptions

COMMANDS = ("qsub", "qstat", "qacct", "qdel")


# -- helpers (tests/cluster_bed.py) ------------------------------------------------------
def make_bed(
    tmp_path: Path,
    n: int,
    body: str | Callable[[int], str] = "echo job",
    forks: int = 64,
    overrides: dict[str, str] | None = None,
    **options: Any,
) -> Bed:
    return cluster_bed.make_bed(
        tmp_path, n, backend=SgeBackend, options=SgeOptions, commands=COMMANDS, run_name="sgetest",
        body=body, forks=forks, overrides=overrides, rc_wait=90, **options,
    )  # fmt: skip


def write_shims(bindir: Path, overrides: dict[str, str] | None = None) -> dict[str, str]:
    return cluster_bed.write_shims(bindir, COMMANDS, overrides)


# -- rendering (no cell needed) --------------------------------------------------------
def test_directives_from_options() -> None:
    opts = SgeOptions(
        queue="all.q", resources=["h_vmem=4G", "h_rt=01:00:00"], pe="smp 4",
        directives=["-P lab", "#$ -l gpu=1"],
    )  # fmt: skip
    backend = SgeBackend(opts, ctx_for(Path("/nonexistent")))
    assert backend.directives(opts) == [
        "#$ -q all.q",
        "#$ -l h_vmem=4G",
        "#$ -l h_rt=01:00:00",
        "#$ -pe smp 4",
        "#$ -P lab",
        "#$ -l gpu=1",
    ]
    assert backend.directives(SgeOptions()) == []
    assert backend.directives(SgeOptions(pe="mpi 2-8")) == ["#$ -pe mpi 2-8"]
    assert backend._flags(opts)[:6] == ["-q", "all.q", "-l", "h_vmem=4G", "-l", "h_rt=01:00:00"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"queue": "all.q other.q"}, "queue"),
        ({"queue": ""}, "queue"),
        ({"resources": ["h_vmem=4G -l x"]}, "resources"),
        ({"resources": ["-V"]}, "resources"),
        ({"pe": "smp"}, "pe"),
        ({"pe": "smp four"}, "pe"),
        ({"pe": "smp 4 extra"}, "pe"),
        ({"directives": ["-l a=1\n#$ -l b=2"]}, "directives"),
        ({"directives": ["  "]}, "directives"),
    ],
)
def test_options_refuse_values_that_break_the_header(options: dict, field: str) -> None:
    # refused by the spec model, so `validate` reports them with file:line
    with pytest.raises(ValidationError, match=field):
        SgeOptions(**options)


def test_array_script_text(tmp_path: Path) -> None:
    opts = SgeOptions(queue="all.q", resources=["h_vmem=1G"])
    backend = SgeBackend(opts, ctx_for(tmp_path))
    text = backend.array_script("g0-1", opts)
    lines = text.splitlines()
    assert lines[:3] == ["#!/usr/bin/env bash", "#$ -q all.q", "#$ -l h_vmem=1G"]
    assert "/mnt/wd/r1/arrays/g0-1.tasks" in text
    assert 'exec bash /mnt/wd/r1/jobs/"$index"/job.sh "$trial"' in text


def test_array_script_picks_its_line(tmp_path: Path) -> None:
    """Run the array script by hand as SGE task 2: it execs job 7's wrapper, trial 2."""
    rundir = tmp_path / "run"
    (rundir / "events").mkdir(parents=True)
    for i in (5, 7):
        write_job(rundir, i, f"echo ran {i}")
    backend = SgeBackend(
        SgeOptions(), BackendContext(run="r", rundir=rundir, mounted_rundir=str(rundir), forks=4)
    )
    (rundir / "arrays").mkdir()
    (rundir / "arrays" / "g0-1.tasks").write_text("5 0\n7 2\n")
    script = rundir / "arrays" / "g0-1.sh"
    script.write_text(backend.array_script("g0-1", SgeOptions()))
    env = {**os.environ, "SGE_TASK_ID": "2"}
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=30)
    assert (rundir / "jobs" / "7" / "rc.2").read_text() == "0\n"
    assert (rundir / "jobs" / "7" / "stdout.2").read_text() == "ran 7\n"
    assert not (rundir / "jobs" / "5" / "rc.0").exists()
    env["SGE_TASK_ID"] = "3"  # no such line: a clear failure, not job 5
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode == 97 and "no line for task 3" in proc.stderr


# -- the real cell ------------------------------------------------------------------------


@pytest.mark.sge
def test_array_of_30_one_qsub_one_qstat_per_query(sge: Any, tmp_path: Path) -> None:
    bed = make_bed(tmp_path, 30, body=lambda i: f"echo out-{i}", queue=sge.queue)
    t0 = time.monotonic()
    results = run(bed.backend.submit(bed.subs))
    submit_s = time.monotonic() - t0
    calls = bed.calls("qsub")
    assert len(calls) == 1, calls
    assert " -t 1-30 -tc 64 " in calls[0] and f"-N xq-sgetest -o {bed.rundir}/arrays/" in calls[0]
    assert all(r.jid and not r.error for r in results)
    assert len({r.jid.split(".")[0] for r in results if r.jid}) == 1
    assert sorted(int(r.jid.split(".")[1]) for r in results if r.jid) == list(range(1, 31))
    tasks = (bed.rundir / "arrays" / "g0-1.tasks").read_text().splitlines()
    assert tasks == [f"{i} 0" for i in range(30)]
    assert "#$ -q " + sge.queue in (bed.rundir / "arrays" / "g0-1.sh").read_text()

    jids = [r.jid for r in results if r.jid]
    run(bed.backend.query(jids))
    assert len(bed.calls("qstat")) == 1
    assert bed.wait_rcs(bed.subs) == dict.fromkeys(range(30), 0)
    done_s = time.monotonic() - t0
    assert (bed.rundir / "jobs" / "29" / "stdout.0").read_text() == "out-29\n"
    # the tasks have left qstat: one qacct per query tells how they ended
    states = poll(bed, jids, every(30, Liveness.DONE))
    assert {st.liveness for st in states.values()} == {Liveness.DONE}
    number = jids[0].split(".")[0]
    assert bed.calls("qacct") and all(c == f"-j {number}" for c in bed.calls("qacct"))
    assert len(bed.calls("qacct")) <= len(bed.calls("qstat")) - 1
    print(f"\n30-task SGE array: submit {submit_s:.2f} s, all rc files after {done_s:.1f} s")


@pytest.mark.sge
def test_cancel_some_tasks_of_an_array(sge: Any, tmp_path: Path) -> None:
    bed = make_bed(tmp_path, 4, body="sleep 120")
    jids = [r.jid for r in run(bed.backend.submit(bed.subs)) if r.jid]
    poll(bed, jids, every(4, Liveness.RUNNING))
    run(bed.backend.cancel(jids[1:3]))
    assert bed.calls("qdel") == [" ".join(jids[1:3])]
    states = poll(bed, jids, lambda s: len(s) == 2, limit=30)  # the cancelled left qstat
    assert set(states) >= {jids[0], jids[3]}
    run(bed.backend.cancel(jids))


@pytest.mark.sge
def test_error_state_is_failed_with_its_reason_and_deleted(sge: Any, tmp_path: Path) -> None:
    """A working directory that does not exist puts the job in Eqw: it never runs."""
    bed = make_bed(tmp_path, 3, directives=[f"-wd {tmp_path}/no/such/dir"])
    jids = [r.jid for r in run(bed.backend.submit(bed.subs)) if r.jid]
    states = poll(bed, jids, every(3, Liveness.FAILED))
    assert {st.liveness for st in states.values()} == {Liveness.FAILED}
    for st in states.values():
        assert st.reason.startswith("E") and "chdir" in st.reason, st.reason
        assert f"{tmp_path}/no/such/dir" in st.reason
    assert len([c for c in bed.calls("qstat") if c.startswith("-j")]) == 1
    assert bed.calls("qdel") == [jids[0].split(".")[0]]
    # deleted: qstat no longer shows it, the backend still tells why it failed
    shown = subprocess.run(["qstat"], capture_output=True, text=True).stdout
    assert f" {jids[0].split('.')[0]} " not in shown
    again = run(bed.backend.query(jids))
    assert again == states
    assert len([c for c in bed.calls("qstat") if c.startswith("-j")]) == 1


@pytest.mark.sge
def test_submit_failures(sge: Any, tmp_path: Path) -> None:
    said = "error: commlib error: got select error (Connection refused)"
    bed = make_bed(tmp_path, 2, overrides={"qsub": f'echo "{said}" >&2; exit 1'})
    with pytest.raises(SchedulerError, match="Connection refused"):
        run(bed.backend.submit(bed.subs))
    bed = make_bed(tmp_path / "q", 2, queue="no-such-queue")  # a permanent refusal
    results = run(bed.backend.submit(bed.subs))
    assert all(r.jid is None and "qsub failed" in r.error for r in results)
    assert "no-such-queue" in results[0].error


@pytest.mark.sge
def test_chunks_of_max_aj_tasks_and_a_failed_chunk(sge: Any, tmp_path: Path) -> None:
    # the second qsub fails after the first went in: no exception (that would resubmit
    # the first chunk), an error for each job of the failed chunk only
    said = "error: commlib error: got select error (Connection refused)"
    flaky = (f'[ "$(wc -l <{tmp_path}/bin/qsub.calls)" = 2 ] && {{ echo "{said}" >&2; exit 1; }}'
             '\nexec qsub "$@"')
    bed = make_bed(tmp_path, 25, overrides={"qsub": flaky})
    bed.backend._max_tasks = 10
    results = sorted(run(bed.backend.submit(bed.subs)), key=lambda r: r.index)
    calls = bed.calls("qsub")
    assert [c.split(" -t ")[1].split()[0] for c in calls] == ["1-10", "1-10", "1-5"]
    assert [bool(r.jid) for r in results] == [True] * 10 + [False] * 10 + [True] * 5
    assert "Connection refused" in results[10].error
    assert [r.jid.split(".")[1] for r in results[20:] if r.jid] == ["1", "2", "3", "4", "5"]
    assert set(bed.wait_rcs(bed.subs[:10] + bed.subs[20:]).values()) == {0}


@pytest.mark.sge
def test_a_qsub_that_hangs_after_submitting_leaves_no_orphan(sge: Any, tmp_path: Path) -> None:
    hangs = f'{shutil.which("qsub")} "$@"; exec sleep 60'
    bed = make_bed(tmp_path, 2, body="sleep 60", overrides={"qsub": hangs})
    bed.backend.command_timeout = 3.0
    with pytest.raises(SchedulerError, match="did not answer"):
        run(bed.backend.submit(bed.subs))
    assert [c.split()[:2] for c in bed.calls("qstat")] == [["-j", "xq-sgetest"]]
    assert len(bed.calls("qdel")) == 1  # the array qsub made although it timed out
    number = bed.calls("qdel")[0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = subprocess.run(["qstat"], capture_output=True, text=True).stdout.split()
        if number not in shown:
            break
        time.sleep(0.5)
    assert number not in shown


@pytest.mark.sge
def test_query_failures(sge: Any, tmp_path: Path) -> None:
    broken = 'echo "error: commlib error: got select error (Connection refused)" >&2; exit 1'
    bed = make_bed(tmp_path, 1, overrides={"qstat": broken})
    with pytest.raises(SchedulerError, match="qstat failed"):
        run(bed.backend.query(["123.1"]))
    # no accounting file: the jobs are unknown (the rc file decides), and qacct rests a while
    no_acct = 'echo "error: can\'t open accounting file" >&2; exit 1'
    bed = make_bed(tmp_path / "a", 1, overrides={"qacct": no_acct})
    told: list[str] = []
    bed.backend.ctx.message = told.append
    assert run(bed.backend.query(["999999.1"])) == {}
    assert run(bed.backend.query(["999999.1"])) == {}
    assert len(bed.calls("qacct")) == 1
    assert len(told) == 1 and "can't open accounting file" in told[0]


@pytest.mark.sge
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_100_true_jobs_through_the_runner(sge: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The number in docs/backends.md: 100 jobs of `true`, one qsub, one qstat per poll."""
    import xqdecl

    queries: list[int] = []
    original = SgeBackend.query

    async def counting(self: SgeBackend, jids: Any) -> Any:
        queries.append(len(jids))
        return await original(self, jids)

    monkeypatch.setattr(SgeBackend, "query", counting)
    shims = write_shims(tmp_path / "bin")
    spec = xqdecl.spec_from_dict({
        "name": "hundred", "workdir": str(tmp_path / "wd"), "forks": 64,
        "scheduler": {"type": "sge", "queue": sge.queue, **shims},
        "jobs": [{"name": "t{i}", "cmd": ["true"], "matrix": {"i": {"range": [0, 100]}}}],
    }, base_dir=tmp_path)  # fmt: skip
    t0 = time.monotonic()
    result = asyncio.run(xqdecl.Runner(spec).run())
    wall = time.monotonic() - t0
    assert result.ok and result.counts == {"succeeded": 100}
    calls = {c: (tmp_path / "bin" / f"{c}.calls") for c in COMMANDS}
    count = {c: len(p.read_text().splitlines()) if p.exists() else 0 for c, p in calls.items()}
    qstat_j = sum(ln.startswith("-j") for ln in calls["qstat"].read_text().splitlines()) \
        if calls["qstat"].exists() else 0
    assert count["qsub"] == 1
    assert count["qstat"] - qstat_j == len(queries)  # one plain qstat per poll
    assert count["qacct"] <= len(queries) and count["qdel"] == 0
    print(f"\n100 x true on SGE: {wall:.1f} s wall, {len(queries)} polls, calls {count}")
