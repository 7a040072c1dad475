"""The Slurm backend: rendering (pure) and behaviour on the real one-node cluster.

The real-cluster tests hand-write minimal job.sh wrappers (start file, rc file,
event files, as docs/internals.md describes) and count scheduler calls through
shim commands (`sbatch = "<tmp>/bin/sbatch"`) that log and exec the real ones.
"""

from __future__ import annotations

import os
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
from xqdecl.backends.slurm import SlurmBackend
from xqdecl.errors import SchedulerError
from xqdecl.spec import SlurmOptions

COMMANDS = ("sbatch", "squeue", "sacct", "scancel")


# -- helpers (tests/cluster_bed.py) ------------------------------------------------------
def make_bed(
    tmp_path: Path,
    n: int,
    body: str | Callable[[int], str] = "echo job $XQDECL_X",
    forks: int = 64,
    overrides: dict[str, str] | None = None,
    **options: Any,
) -> Bed:
    return cluster_bed.make_bed(
        tmp_path, n, backend=SlurmBackend, options=SlurmOptions, commands=COMMANDS,
        run_name="slurmtest", body=body, forks=forks, overrides=overrides, rc_wait=60, **options,
    )  # fmt: skip


def write_shims(bindir: Path, overrides: dict[str, str] | None = None) -> dict[str, str]:
    return cluster_bed.write_shims(bindir, COMMANDS, overrides)


# -- rendering (no cluster needed) -------------------------------------------------------
def test_directives_from_options() -> None:
    opts = SlurmOptions(
        partition="short", time="01:00:00", mem="4G", cpus_per_task=2, gres="gpu:1",
        account="lab", qos="normal", directives=["--exclusive", "#SBATCH --constraint=avx2"],
    )  # fmt: skip
    backend = SlurmBackend(opts, ctx_for(Path("/nonexistent")))
    assert backend.directives(opts) == [
        "#SBATCH --partition=short",
        "#SBATCH --time=01:00:00",
        "#SBATCH --mem=4G",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --account=lab",
        "#SBATCH --qos=normal",
        "#SBATCH --exclusive",
        "#SBATCH --constraint=avx2",
    ]
    assert backend.directives(SlurmOptions()) == []


def test_options_refuse_values_that_break_the_header() -> None:
    # refused by the spec model, so `validate` reports them with file:line
    with pytest.raises(ValidationError, match="partition"):
        SlurmOptions(partition="a b")
    with pytest.raises(ValidationError, match="directives"):
        SlurmOptions(directives=["--x=1\n#SBATCH --y=2"])


def test_array_script_text(tmp_path: Path) -> None:
    opts = SlurmOptions(partition="short", mem="1G")
    backend = SlurmBackend(opts, ctx_for(tmp_path))
    text = backend.array_script("g0-1", opts)
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "#SBATCH --job-name=xq-r1" in lines
    # scheduler logs go under the rundir as the execution host sees it, never the cwd
    assert "#SBATCH --output=/mnt/wd/r1/arrays/g0-1.log" in lines
    assert "#SBATCH --error=/mnt/wd/r1/arrays/g0-1.log" in lines
    assert "#SBATCH --partition=short" in lines and "#SBATCH --mem=1G" in lines
    assert all(ln.startswith("#") for ln in lines[: lines.index("#SBATCH --mem=1G") + 1])
    assert "/mnt/wd/r1/arrays/g0-1.tasks" in text
    assert 'exec bash /mnt/wd/r1/jobs/"$index"/job.sh "$trial"' in text


def test_array_script_picks_its_line(tmp_path: Path) -> None:
    """Run the array script by hand as task 1: it execs job 7's wrapper with trial 2."""
    rundir = tmp_path / "run"
    (rundir / "events").mkdir(parents=True)
    for i in (5, 7):
        write_job(rundir, i, f"echo ran {i}")
    backend = SlurmBackend(
        SlurmOptions(),
        BackendContext(run="r", rundir=rundir, mounted_rundir=str(rundir), forks=4),
    )
    (rundir / "arrays").mkdir()
    (rundir / "arrays" / "g0-1.tasks").write_text("5 0\n7 2\n")
    script = rundir / "arrays" / "g0-1.sh"
    script.write_text(backend.array_script("g0-1", SlurmOptions()))
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "40"}
    env["SLURM_JOB_ID"] = "42"
    subprocess.run(["bash", str(script)], env=env, check=True, timeout=30)
    assert (rundir / "jobs" / "7" / "rc.2").read_text() == "0\n"
    assert (rundir / "jobs" / "7" / "stdout.2").read_text() == "ran 7\n"
    assert not (rundir / "jobs" / "5" / "rc.0").exists()
    assert (rundir / "arrays" / "g0-1.jobids").read_text() == "40_1 42\n"
    env["SLURM_ARRAY_TASK_ID"] = "2"  # no such line: a clear failure, not job 5
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode == 97 and "no line for task 2" in proc.stderr


# -- the real cluster -----------------------------------------------------------------------


@pytest.mark.slurm
def test_array_of_50_one_sbatch_one_squeue_per_query(slurm: Any, tmp_path: Path) -> None:
    bed = make_bed(tmp_path, 50, body=lambda i: f"echo out-{i}")
    t0 = time.monotonic()
    results = run(bed.backend.submit(bed.subs))
    submit_s = time.monotonic() - t0
    assert len(bed.calls("sbatch")) == 1, bed.calls("sbatch")
    assert "--array=0-49%64" in bed.calls("sbatch")[0]
    assert all(r.jid and not r.error for r in results)
    arrays = {r.jid.split("_")[0] for r in results if r.jid}
    assert len(arrays) == 1
    assert sorted(int(r.jid.split("_")[1]) for r in results if r.jid) == list(range(50))
    tasks = (bed.rundir / "arrays" / "g0-1.tasks").read_text().splitlines()
    assert tasks == [f"{i} 0" for i in range(50)]

    jids = [r.jid for r in results if r.jid]
    before = len(bed.calls("squeue"))
    run(bed.backend.query(jids))
    assert len(bed.calls("squeue")) == before + 1
    rcs = bed.wait_rcs(bed.subs)
    assert rcs == dict.fromkeys(range(50), 0)
    done_s = time.monotonic() - t0
    assert (bed.rundir / "jobs" / "49" / "stdout.0").read_text() == "out-49\n"
    states = poll(bed, jids, every(50, Liveness.DONE))
    assert len(states) == 50 and {st.liveness for st in states.values()} == {Liveness.DONE}
    # every task has exited now, so its end event (written after its rc file) is there
    assert len(list((bed.rundir / "events").glob("*.e"))) == 50
    print(f"\n50-task array: submit {submit_s:.2f} s, all rc files after {done_s:.1f} s")


@pytest.mark.slurm
def test_max_array_size_chunks(slurm: Any, tmp_path: Path) -> None:
    bed = make_bed(tmp_path, 25, max_array_size=10)
    results = run(bed.backend.submit(bed.subs))
    calls = bed.calls("sbatch")
    assert len(calls) == 3
    assert [c.split("--array=")[1].split()[0] for c in calls] == ["0-9%64", "0-9%64", "0-4%64"]
    by_array: dict[str, list[int]] = {}
    for r in sorted(results, key=lambda r: r.index):
        assert r.jid
        base, _, task = r.jid.partition("_")
        by_array.setdefault(base, []).append(int(task))
    assert sorted(len(v) for v in by_array.values()) == [5, 10, 10]
    assert bed.wait_rcs(bed.subs) == dict.fromkeys(range(25), 0)


@pytest.mark.slurm
def test_failed_job_and_sacct_for_jobs_gone_from_squeue(slurm: Any, tmp_path: Path) -> None:
    bed = make_bed(tmp_path, 4, body=lambda i: f"sleep 0.5; exit {i % 2}")
    results = run(bed.backend.submit(bed.subs))
    jids = [r.jid for r in results if r.jid]
    assert bed.wait_rcs(bed.subs) == {0: 0, 1: 1, 2: 0, 3: 1}
    poll(bed, jids, every(4, Liveness.DONE, Liveness.FAILED))
    # pretend the jobs have left squeue: the answer must come from sacct (-c here)
    empty_squeue = 'echo "$*" >>' + str(bed.bin) + "/squeue.calls; exit 0"
    write_shims(bed.bin, {"squeue": empty_squeue})
    before = len(bed.calls("sacct"))
    deadline = time.monotonic() + 30
    states: dict = {}
    while time.monotonic() < deadline and len(states) < 4:
        states = run(bed.backend.query(jids))
        time.sleep(0.5)
    assert len(bed.calls("sacct")) > before
    assert {j: st.liveness for j, st in states.items()} == {
        jids[0]: Liveness.DONE, jids[1]: Liveness.FAILED,
        jids[2]: Liveness.DONE, jids[3]: Liveness.FAILED,
    }  # fmt: skip


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_time_limit_is_reported_as_timeout(slurm: Any, tmp_path: Path) -> None:
    bed = make_bed(tmp_path, 1, body="sleep 600", time="1")
    results = run(bed.backend.submit(bed.subs))
    jids = [r.jid for r in results if r.jid]
    t0 = time.monotonic()
    states = poll(bed, jids, lambda s: s and s[jids[0]].liveness is Liveness.FAILED, limit=200)
    assert states[jids[0]].liveness is Liveness.FAILED
    assert states[jids[0]].reason == "TIMEOUT"
    print(f"\n--time=1 job reported TIMEOUT after {time.monotonic() - t0:.0f} s")


@pytest.mark.slurm
def test_submit_failures(slurm: Any, tmp_path: Path) -> None:
    # the controller is away: SchedulerError (the runner retries the whole batch)
    said = "sbatch: error: Batch job submission failed: Unable to contact slurm controller"
    down = f'echo "{said}" >&2; exit 1'
    bed = make_bed(tmp_path, 3, overrides={"sbatch": down})
    with pytest.raises(SchedulerError, match="Unable to contact"):
        run(bed.backend.submit(bed.subs))
    # the controller goes away after a first chunk went in: no exception (that would
    # resubmit the first chunk), an error for each job of the failed chunk only
    where = tmp_path / "flaky"
    flaky = f'[ "$(wc -l <{where}/bin/sbatch.calls)" = 2 ] && {{ echo "{said}" >&2; exit 1; }}'
    flaky += '\nexec sbatch "$@"'
    bed = make_bed(where, 25, max_array_size=10, overrides={"sbatch": flaky})
    results = sorted(run(bed.backend.submit(bed.subs)), key=lambda r: r.index)
    assert len(bed.calls("sbatch")) == 3
    assert [bool(r.jid) for r in results] == [True] * 10 + [False] * 10 + [True] * 5
    assert "Unable to contact" in results[10].error
    assert set(bed.wait_rcs(bed.subs[:10] + bed.subs[20:]).values()) == {0}
    # a permanent refusal: an error per job
    bed = make_bed(tmp_path, 3, partition="no-such-partition")
    results = run(bed.backend.submit(bed.subs))
    assert all(r.jid is None and "sbatch failed" in r.error for r in results)
    assert "partition" in results[0].error.lower()


@pytest.mark.slurm
def test_query_failures_raise_scheduler_error(slurm: Any, tmp_path: Path) -> None:
    broken = 'echo "squeue: error: slurm_load_jobs error: Socket timed out" >&2; exit 1'
    bed = make_bed(tmp_path, 1, overrides={"squeue": broken})
    with pytest.raises(SchedulerError, match="squeue failed"):
        run(bed.backend.query(["123_0"]))
    bed = make_bed(tmp_path, 1, overrides={"squeue": "exec sleep 30"})
    bed.backend.command_timeout = 1.0
    t0 = time.monotonic()
    with pytest.raises(SchedulerError, match="did not answer"):
        run(bed.backend.query(["123_0"]))
    assert time.monotonic() - t0 < 10
    # a job id the cluster never had is simply absent
    bed = make_bed(tmp_path, 1)
    assert run(bed.backend.query(["999999_0"])) == {}
