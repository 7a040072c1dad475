"""Cost of one poll pass: xqdecl's events path and sweeps vs xqute's per-job check.

For N in-flight jobs (all started, none ended), one pass is timed when
(a) nothing changed, (b) 1% of the jobs ended, (c) all of them ended:

* events Rust / events Py -- ``poll_events()`` (Py: the Python reference in
  tests/oracles/poller_ref.py): one stat of ``events/`` when idle; with
  changes, one listing and one unlink per entry. The end events are
  named as the wrapper names them, ``<i>.0.e<rc>``: no file of the job is read.
* events Rust bare -- the same with bare ``<i>.0.e`` entries (what a wrapper
  that could not write its rc file leaves): the rc file of each job is read.
* sweep Rust 1t / 2t / sweep Py -- ``sweep()``: one stat per watched job.
* xqute -- ``Scheduler.check_all_done()`` of xqute (from PyPI, installed in a
  throwaway venv, never a dependency): per job, an async ``is_file`` + read of
  its status file, the polling hook, and the transition of ended jobs.

Each cell is "wall (cpu)" of one pass, the median of --repeat runs (idle events
passes: the mean of many calls). CPU is process CPU time (all threads).

A second table is a steady load, as the runner meets it: N jobs in flight, a
separate writer process ending --rate of them a second (rc file by temp +
rename, then the end event, as wrappers do) and the same number of new jobs
starting, while the loop runs one events pass a second and a sweep every 30 s
(the runner's cadence). It prints the loop's CPU share of one core.

    python benchmarks/bench_poll.py                # 1k, 10k, 100k (several minutes)
    python benchmarks/bench_poll.py --quick        # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from xqdecl._xqdecl import Poller as RustPoller

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the Python reference's home
from tests.oracles.poller_ref import PyPoller

SCENARIOS = [("none", 0), ("1%", 100), ("all", 1)]
Sample = tuple[float, float]  # wall seconds, cpu seconds


def build_rundir(root: Path, n: int) -> None:
    """n started jobs: jobs/<i>/start.0 present, no rc yet."""
    (root / "events").mkdir(parents=True)
    for i in range(n):
        d = root / "jobs" / str(i)
        d.mkdir(parents=True)
        (d / "start.0").write_bytes(b"host 1 1 1\n")


def age(path: Path) -> None:
    old = time.time() - 60
    os.utime(path, (old, old))


def timed(fn: Callable[[], object]) -> tuple[Sample, object]:
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return (time.perf_counter() - w0, time.process_time() - c0), out


def end_jobs(root: Path, changed: list[int]) -> None:
    """What the wrapper of an ending job does first: its rc by temp file + rename."""
    for i in changed:
        d = root / "jobs" / str(i)
        (d / "rc.0.tmp").write_bytes(b"0\n")
        os.replace(d / "rc.0.tmp", d / "rc.0")


def send_events(root: Path, changed: list[int], kind: str) -> None:
    """... and then its end event (``e0``: with the rc, as wrappers do; ``e``: bare)."""
    for i in changed:
        (root / "events" / f"{i}.0.{kind}").touch()


def bench_ours(root: Path, n: int, repeat: int, idle_calls: int) -> dict[str, dict[str, Sample]]:
    """{scenario: {column: sample}} for every xqdecl column, on one rundir.

    The rc files of a scenario are written once and read by every poller; the
    events pollers consume (unlink) the entries, so each gets a fresh set.
    """
    pollers = {label: make(root) for label, make, _, _ in COLUMNS}
    everyone = [(i, 0) for i in range(n)]

    def settle() -> None:  # absorb the start reports, record the events folder's stat
        for p in pollers.values():
            p.watch(everyone)
            p.sweep()
        age(root / "events")
        for p in pollers.values():
            p.poll_events()

    settle()
    out: dict[str, dict[str, Sample]] = {}
    for name, step in SCENARIOS:
        changed = list(range(0, n, step)) if step else []
        samples: dict[str, list[Sample]] = {label: [] for label in pollers}
        reps = min(repeat, 2) if (changed and n >= 100_000 and step == 1) else repeat
        for _ in range(reps):
            end_jobs(root, changed)
            for label, _, method, kind in COLUMNS:
                p = pollers[label]
                if method == "poll_events":
                    send_events(root, changed, kind)
                if not changed and method == "poll_events":  # a few µs: many calls
                    (w, c), _ = timed(lambda p=p: [p.poll_events() for _ in range(idle_calls)])
                    samples[label].append((w / idle_calls, c / idle_calls))
                    continue
                sample, got = timed(getattr(p, method))
                assert len(got) == len(changed), (name, label, len(got))
                samples[label].append(sample)
            for i in changed:
                (root / "jobs" / str(i) / "rc.0").unlink()
            if changed:
                settle()
        out[name] = {label: median(s) for label, s in samples.items()}
    return out


STEADY_WRITER = r"""
import os, sys, time
root, n, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ev = os.path.join(root, "events")
t0 = time.monotonic()
for tick in range(int(seconds)):
    for k in range(tick * rate, (tick + 1) * rate):
        d = f"{root}/jobs/{k}"  # job k ends ...
        with open(f"{d}/rc.0.tmp", "w") as f:
            f.write("0\n")
        os.replace(f"{d}/rc.0.tmp", f"{d}/rc.0")
        open(f"{ev}/{k}.0.e0", "w").close()
        d = f"{root}/jobs/{n + k}"  # ... and job n + k starts
        with open(f"{d}/start.0", "w") as f:
            f.write("host 1 1 1\n")
        open(f"{ev}/{n + k}.0.s", "w").close()
    time.sleep(max(0.0, t0 + tick + 1 - time.monotonic()))
"""


def bench_steady(root: Path, n: int, rate: int, seconds: float) -> dict[str, float]:
    """The runner's loop under a steady load (see the module doc); CPU of the loop only."""
    extra = rate * int(seconds)
    build_rundir(root, n)
    for i in range(n, n + extra):
        (root / "jobs" / str(i)).mkdir()
    poller = RustPoller(str(root), 2)
    poller.watch([(i, 0) for i in range(n)])
    poller.sweep()
    poller.poll_events()
    writer = subprocess.Popen(
        [sys.executable, "-c", STEADY_WRITER, str(root), str(n), str(rate), str(seconds)]
    )
    seen = passes = sweeps = 0
    sweep_cpu = 0.0
    c0, w0 = time.process_time(), time.perf_counter()
    next_sweep = w0 + 30.0
    while True:
        time.sleep(1.0)
        changes = poller.poll_events()
        passes += 1
        if time.perf_counter() >= next_sweep:
            s0 = time.process_time()
            changes += poller.sweep()
            sweep_cpu += time.process_time() - s0
            sweeps += 1
            next_sweep += 30.0
        ended = [c[0] for c in changes if c[3] is not None]
        seen += len(ended)
        poller.watch([(i + n, 0) for i in ended])  # each ended job's slot takes a new one
        if writer.poll() is not None and seen >= extra:
            break
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    writer.wait()
    assert len(poller) == n, (len(poller), n)
    shutil.rmtree(root)
    return {"jobs": n, "rate": rate, "wall": wall, "cpu": cpu, "passes": passes,
            "completions": seen, "sweeps": sweeps, "sweep_cpu": sweep_cpu}


def report_steady(r: dict[str, float]) -> None:
    events_cpu = r["cpu"] - r["sweep_cpu"]
    print()
    print(
        f"steady load: {int(r['jobs']):,} in flight, {int(r['rate'])} completions/s for "
        f"{r['wall']:.0f} s ({int(r['completions']):,} completions, {int(r['passes'])} events "
        f"passes, {int(r['sweeps'])} sweeps every 30 s)"
    )
    print(
        f"loop CPU {r['cpu'] * 1e3:.0f} ms = {r['cpu'] / r['wall']:.2%} of one core "
        f"(goal < 2%): events passes {events_cpu / r['passes'] * 1e3:.2f} ms each "
        f"({events_cpu / max(r['completions'], 1) * 1e6:.1f} µs per completion, "
        f"start events included), sweeps {r['sweep_cpu'] * 1e3:.0f} ms"
    )


def median(samples: list[Sample]) -> Sample:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


# -- xqute, run by the throwaway venv's interpreter --------------------------------------

XQUTE_DRIVER = r"""
import asyncio, json, logging, os, statistics, sys, time
from xqute.defaults import JobStatus
from xqute.job import Job
from xqute.schedulers.local_scheduler import LocalScheduler
from xqute.utils import logger

logger.setLevel(logging.WARNING)  # its per-transition INFO lines would flood the table
n, root, repeat = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def put(path, text):
    with open(str(path), "w") as f:
        f.write(text)

async def main():
    sched = LocalScheduler(workdir=root, forks=n)
    jobs = []
    for i in range(n):
        job = Job(index=i, cmd=["true"], workdir=sched.workdir)
        os.makedirs(str(job.metadir), exist_ok=True)
        put(job.status_file, str(JobStatus.RUNNING))
        job._status = JobStatus.RUNNING
        jobs.append(job)
    out = {}
    for name, step in (("none", 0), ("1%", 100), ("all", 1)):
        changed = jobs[::step] if step else []
        samples = []
        for _ in range(repeat):
            for job in changed:  # what its wrapper does when a job ends
                put(job.rc_file, "0")
                put(job.status_file, str(JobStatus.FINISHED))
            c0, w0 = time.process_time(), time.perf_counter()
            await sched.check_all_done(jobs, 0)
            samples.append((time.perf_counter() - w0, time.process_time() - c0))
            assert all(job._status == JobStatus.FINISHED for job in changed)
            for job in changed:
                put(job.status_file, str(JobStatus.RUNNING))
                os.unlink(str(job.rc_file))
                job._status = JobStatus.RUNNING
        out[name] = [statistics.median(s[0] for s in samples),
                     statistics.median(s[1] for s in samples)]
    print(json.dumps(out))

asyncio.run(main())
"""


def xqute_python(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"installing xqute into a throwaway venv {venv} ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "xqute"], check=True, timeout=600
        )
    except (subprocess.SubprocessError, OSError) as e:
        print(f"xqute unavailable ({e}); its column is left empty", file=sys.stderr)
        return None
    return python


def bench_xqute(python: Path, tmp: Path, n: int, repeat: int) -> dict[str, Sample]:
    root = tmp / f"xqute-{n}"
    proc = subprocess.run(
        [str(python), "-c", XQUTE_DRIVER, str(n), str(root), str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(root, ignore_errors=True)
    return {k: tuple(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


# -- report ------------------------------------------------------------------------------


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.2f}s"


def cell(sample: Sample | None) -> str:
    return "-" if sample is None else f"{fmt(sample[0])} ({fmt(sample[1])})"


# (label, poller factory, method, end event kind)
COLUMNS: list[tuple[str, Callable[[Path], object], str, str]] = [
    ("events Rust", lambda r: RustPoller(str(r), 2), "poll_events", "e0"),
    ("events Rust bare", lambda r: RustPoller(str(r), 2), "poll_events", "e"),
    ("events Py", lambda r: PyPoller(r), "poll_events", "e0"),
    ("sweep Rust 1t", lambda r: RustPoller(str(r), 1), "sweep", ""),
    ("sweep Rust 2t", lambda r: RustPoller(str(r), 2), "sweep", ""),
    ("sweep Py", lambda r: PyPoller(r), "sweep", ""),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (no xqute)")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--xqute-venv", default="/tmp/xqdecl-bench-xqute-venv")
    ap.add_argument("--no-xqute", action="store_true")
    ap.add_argument("--dir", default=None, help="where the rundirs go (default: $TMPDIR)")
    ap.add_argument("--steady", type=float, default=60.0,
                    help="seconds of the steady-load run at the largest size (0: skip)")
    ap.add_argument("--rate", type=int, default=100, help="completions a second, steady load")
    args = ap.parse_args(argv)
    sizes = [300] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeat = 1 if args.quick else args.repeat
    idle_calls = 50 if args.quick else 5000
    python = None if (args.quick or args.no_xqute) else xqute_python(Path(args.xqute_venv))

    results: dict[tuple[int, str], dict[str, Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="xqdecl-bench-", dir=args.dir) as tmp:
        for n in sizes:
            root = Path(tmp) / f"run-{n}"
            print(f"  {time.strftime('%X')} {n:>7} jobs: building the rundir", file=sys.stderr)
            build_rundir(root, n)
            print(f"  {time.strftime('%X')} {n:>7} jobs: xqdecl pollers", file=sys.stderr)
            for scen, cells in bench_ours(root, n, repeat, idle_calls).items():
                results.setdefault((n, scen), {}).update(cells)
            shutil.rmtree(root)
        load = os.getloadavg()[0]
        steady = None
        if args.steady > 0 or args.quick:
            n = max(sizes)
            seconds = 3.0 if args.quick else args.steady
            print(f"  {time.strftime('%X')} {n:>7} jobs: steady load, {seconds:.0f} s",
                  file=sys.stderr)
            steady = bench_steady(Path(tmp) / "steady", n, args.rate, seconds)
        for n in sizes if python is not None else []:  # after ours: it takes minutes
            print(f"  {time.strftime('%X')} {n:>7} jobs: xqute", file=sys.stderr)
            for scen, sample in bench_xqute(python, Path(tmp), n, 1).items():
                results[(n, scen)]["xqute"] = sample
    report(results, sizes, load)
    if steady is not None:
        report_steady(steady)
    return 0


def report(
    results: dict[tuple[int, str], dict[str, Sample]], sizes: list[int], load: float
) -> None:
    labels = [c[0] for c in COLUMNS] + ["xqute"]
    rows = [["jobs", "changed", *labels]]
    for (n, scen), cells in results.items():
        rows.append([f"{n:,}", scen, *(cell(cells.get(label)) for label in labels)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(
        "one poll pass: wall (cpu); median of runs (idle events pass: mean of many calls);"
        f" load average {load:.1f} after xqdecl's columns (2 cores, shared)"
    )
    for k, r in enumerate(rows):
        print(
            "  ".join(
                v.rjust(w) if i > 1 else v.ljust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print()
    big = max(sizes)
    get = lambda n, s, lab: results.get((n, s), {}).get(lab)  # noqa: E731
    idle = get(big, "none", "events Rust")
    if idle:
        print(f"idle events pass at {big:,} in flight: {fmt(idle[0])} (goal <= 50µs)")
    for scen, step in SCENARIOS[1:]:
        for label in ("events Rust", "events Rust bare"):
            s = get(big, scen, label)
            if s:
                k = len(range(0, big, step))
                print(
                    f"{label}, {scen} ended: {fmt(s[0] / k)} wall, {fmt(s[1] / k)} cpu"
                    " per completion (goal <= 10µs)"
                )
    sweep = get(big, "none", "sweep Rust 2t")
    if sweep:
        print(f"sweep with 2 threads: {sweep[0] / big * 1e6:.2f}µs per job (goal <= 1.5µs)")
    for n in sizes:
        xq, ev, sw = (
            get(n, "none", "xqute"),
            get(n, "none", "events Rust"),
            get(n, "none", "sweep Rust 2t"),
        )
        if xq and ev and sw:
            print(
                f"xqute pass / ours at {n:,}: {xq[0] / ev[0]:,.0f}x the events pass, "
                f"{xq[0] / sw[0]:,.0f}x the 2-thread sweep (goal >= 200x at 10,000)"
            )


if __name__ == "__main__":
    sys.exit(main())
