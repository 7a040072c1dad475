"""Scheduler calls and wall time of many tiny jobs on the real Slurm test cluster.

    python benchmarks/bench_slurm.py [--sizes 1000,10000] [--throttle 256] [--cap 1200]
        [--xqute /tmp/xqute-venv/bin/python] [--xqute-cap 600] [--chunked 1000:100]

Every tool gets its own folder of shim commands (`sbatch`, `squeue`, `sacct`,
`scancel`) that log "<epoch> <args>" and exec the real command; xqdecl is
pointed at them through the spec's command-path options, xqute through its
scheduler options. Rows:

- `xqdecl run`: N jobs of `true` in one group (native arrays, `forks` = the
  array throttle), MaxArraySize read from the cluster;
- `xqdecl run, max_array_size=M` (from `--chunked N:M`): the same with a
  forced chunk size, to check that a group of N is ceil(N/M) submissions;
- `xqute` (when `--xqute` names a Python that has xqute installed, e.g. a
  throwaway venv: it is not a dependency of xqdecl): the same N jobs through
  its Slurm scheduler, with the same throttle as `forks`.

A *poll* is a burst of status calls (squeue/sacct) with less than
`--gap` seconds between consecutive calls; "squeue/poll" is the mean (and the
largest) number of squeue calls per burst. Each run has a time cap; a run that
does not finish within it is stopped, its jobs cancelled, and reported as
"did not finish in X s" with the calls made so far.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("sbatch", "squeue", "sacct", "scancel")

XQUTE_DRIVER = r"""
import asyncio, json, sys, time
from pathlib import Path

from xqute import Xqute  # first: it installs uvloop's event loop policy
from xqute.scheduler import Scheduler

workdir, n, forks, shims, partition, cap, prefix, cmd = sys.argv[1:9]
n, forks, cap = int(n), int(forks), float(cap)

async def main():
    passes = [0]
    original = Scheduler.check_all_done

    async def counted(self, jobs, counter):
        passes[0] += 1
        return await original(self, jobs, counter)

    Scheduler.check_all_done = counted
    opts = {c: f"{shims}/{c}" for c in ("sbatch", "squeue", "scancel")}
    opts["partition"] = partition
    xq = Xqute("slurm", workdir=workdir, forks=forks, scheduler_opts=opts,
               jobname_prefix=prefix)
    for _ in range(n):
        await xq.feed(json.loads(cmd))
    t0, start = time.perf_counter(), time.time()
    task = asyncio.ensure_future(xq.run_until_complete())
    await asyncio.wait({task}, timeout=cap)  # xqute swallows a cancellation: no wait_for
    finished = task.done() and task.exception() is None
    error = "" if not task.done() or task.exception() is None else repr(task.exception())
    wall = time.perf_counter() - t0
    if not finished:
        task.cancel()
        await asyncio.wait({task}, timeout=30)
    rcs = [Path(workdir) / str(i) / "job.rc" for i in range(n)]
    ends = [p.stat().st_mtime - start for p in rcs if p.exists()]
    print(json.dumps({"finished": finished, "wall": wall, "done": len(ends),
                      "last_end": max(ends, default=0.0), "passes": passes[0],
                      "error": error}))

asyncio.run(main())
"""


@dataclass
class Row:
    tool: str
    jobs: int
    wall: float
    finished: bool
    done: int
    last_end: float  # seconds from the start to the last rc file written
    calls: dict[str, int]
    per_poll: list[int] = field(default_factory=list)
    note: str = ""
    cap: float = 0.0


def write_shims(bindir: Path) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    for cmd in COMMANDS:
        real = shutil.which(cmd) or f"/usr/bin/{cmd}"
        shim = bindir / cmd
        shim.write_text(
            f'#!/bin/sh\nprintf "%s %s\\n" "$(date +%s.%N)" "$*" >>{bindir}/{cmd}.calls\n'
            f'exec {real} "$@"\n'
        )
        shim.chmod(0o755)


def read_calls(bindir: Path) -> tuple[dict[str, int], list[int]]:
    """Calls per command, and the squeue calls of each poll (burst of status calls)."""
    counts: dict[str, int] = {}
    status: list[tuple[float, str]] = []
    for cmd in COMMANDS:
        log = bindir / f"{cmd}.calls"
        lines = log.read_text().splitlines() if log.exists() else []
        counts[cmd] = len(lines)
        if cmd in ("squeue", "sacct"):
            status += [(float(ln.split(" ", 1)[0]), cmd) for ln in lines if ln.strip()]
    return counts, bursts(sorted(status), GAP)


def bursts(calls: list[tuple[float, str]], gap: float) -> list[int]:
    """squeue calls per burst of status calls separated by at least `gap` seconds."""
    out: list[int] = []
    last = -math.inf
    for stamp, cmd in calls:
        if stamp - last >= gap:
            out.append(0)
        last = stamp
        out[-1] += cmd == "squeue"
    return out


def cancel_named(match: str, exact: bool) -> None:
    """Cancel leftover jobs of a stopped run with the real commands (not counted)."""
    proc = subprocess.run(["squeue", "-h", "-o", "%F|%j"], capture_output=True, text=True)
    ids = sorted({
        line.split("|")[0] for line in proc.stdout.splitlines()
        if "|" in line and (line.split("|", 1)[1] == match if exact
                            else line.split("|", 1)[1].startswith(match))
    })  # fmt: skip
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def run_xqdecl(tmp: Path, n: int, throttle: int, cap: float, partition: str, cmd: str,
               max_array_size: int | None = None) -> Row:
    name = f"bench-{n}-{max_array_size or 0}-{os.getpid()}"
    root = tmp / name
    bindir = root / "bin"
    write_shims(bindir)
    extra = f"max_array_size = {max_array_size}\n" if max_array_size else ""
    shims = "".join(f'{c} = "{bindir / c}"\n' for c in COMMANDS)
    spec = root / "spec.toml"
    spec.write_text(
        f'name = "{name}"\nworkdir = "{root / "wd"}"\nforks = {throttle}\n'
        f'[scheduler]\ntype = "slurm"\npartition = "{partition}"\n{shims}{extra}'
        f'[[jobs]]\nname = "t{{i}}"\ncmd = {cmd}\n'
        f"matrix = {{ i = {{ range = [0, {n}] }} }}\n"
    )
    argv = [sys.executable, "-m", "xqdecl.cli", "--output", "quiet", "run", str(spec)]
    t0, start = time.perf_counter(), time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        rc = proc.wait(cap)
        finished = True
    except subprocess.TimeoutExpired:
        proc.terminate()  # the runner cancels its live jobs on SIGTERM
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        finished = False
    wall = time.perf_counter() - t0
    cancel_named(f"xq-{name}", exact=True)
    done, last_end = rc_files(root / "wd" / name / "jobs", "rc.0", start)
    counts, per_poll = read_calls(bindir)
    label = "xqdecl run" + (f", max_array_size={max_array_size}" if max_array_size else "")
    note = "" if rc == 0 or not finished else f"exit {rc}"
    return Row(label, n, wall, finished, done, last_end, counts, per_poll, note, cap)


def run_xqute(tmp: Path, python: str, n: int, throttle: int, cap: float,
              partition: str, cmd: str) -> Row:
    root = tmp / f"xqute-{n}"
    bindir = root / "bin"
    write_shims(bindir)
    driver = root / "driver.py"
    driver.write_text(XQUTE_DRIVER)
    prefix = f"xqbench{os.getpid()}"
    argv = [python, str(driver), str(root / "wd"), str(n), str(throttle), str(bindir),
            partition, str(cap), prefix, cmd]
    t0, start = time.perf_counter(), time.time()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=cap + 120,
                              stdin=subprocess.DEVNULL)
        out, note = proc.stdout, "" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out, note = (exc.stdout or b"").decode() if exc.stdout else "", "killed"
    wall = time.perf_counter() - t0
    cancel_named(prefix, exact=False)
    result = next((json.loads(ln) for ln in out.splitlines() if ln.startswith("{")), None)
    counts, per_poll = read_calls(bindir)
    if result is None:
        done, last_end = rc_files(root / "wd", "job.rc", start)
        return Row("xqute " + xqute_version(python), n, wall, False, done, last_end, counts,
                   per_poll, note or "no result", cap)
    return Row("xqute " + xqute_version(python), n, result["wall"], result["finished"],
               result["done"], result["last_end"], counts, per_poll,
               note or result["error"], cap)


def rc_files(jobs: Path, name: str, start: float) -> tuple[int, float]:
    """(jobs with an rc file, seconds from `start` to the newest rc file)."""
    ends = [p.stat().st_mtime - start for p in jobs.glob(f"*/{name}")]
    return len(ends), max(ends, default=0.0)


def xqute_version(python: str) -> str:
    proc = subprocess.run([python, "-c", "import importlib.metadata as m; "
                           "print(m.version('xqute'))"], capture_output=True, text=True)
    return proc.stdout.strip()


def show(rows: list[Row]) -> None:
    """One Markdown table (it pastes into docs and issues as is)."""
    cols = ["tool", "jobs", "wall s", "jobs ended (last rc at s)", "sbatch", "squeue",
            "sacct", "scancel", "polls", "squeue/poll mean (max)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|")
    for r in rows:
        wall = f"{r.wall:.1f}" if r.finished else f"did not finish in {r.cap:.0f}"
        if r.note.startswith(("exit", "killed", "no result")) or "Error" in r.note:
            wall = f"crashed at {r.wall:.1f}" if r.wall < r.cap else wall
        mean = sum(r.per_poll) / len(r.per_poll) if r.per_poll else 0.0
        c = r.calls
        cells = [r.tool + (f" ({r.note})" if r.note else ""), str(r.jobs), wall,
                 f"{r.done} ({r.last_end:.1f})", *(str(c[k]) for k in COMMANDS),
                 str(len(r.per_poll)), f"{mean:.2f} ({max(r.per_poll, default=0)})"]
        print("| " + " | ".join(cells) + " |")


def cluster_max_array_size() -> int:
    proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return 1001


GAP = 0.8


def main() -> None:
    global GAP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--throttle", type=int, default=256)
    ap.add_argument("--cap", type=float, default=1200.0, help="seconds per xqdecl run")
    ap.add_argument("--xqute-cap", type=float, default=600.0, help="seconds per xqute run")
    ap.add_argument("--partition", default="debug")
    ap.add_argument("--xqute", default="", help="a Python with xqute installed")
    ap.add_argument("--chunked", default="1000:100", help="N:M, '' for none")
    ap.add_argument("--cmd", default="true", help="the job's command (argv, split on spaces)")
    ap.add_argument("--gap", type=float, default=GAP, help="seconds between two polls")
    ap.add_argument("--only", choices=("xqdecl", "xqute"), help="run one tool's rows only")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    GAP = args.gap
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cmd = json.dumps(args.cmd.split())
    tmp = Path(tempfile.mkdtemp(prefix="xq-bench-slurm-"))
    rows: list[Row] = []
    try:
        for n in sizes if args.only != "xqute" else []:
            rows.append(run_xqdecl(tmp, n, args.throttle, args.cap, args.partition, cmd))
            print(f"# done: xqdecl {n}", file=sys.stderr, flush=True)
        if args.chunked and args.only != "xqute":
            n, m = (int(x) for x in args.chunked.split(":"))
            rows.append(run_xqdecl(tmp, n, args.throttle, args.cap, args.partition, cmd, m))
            print(f"# done: xqdecl {n} chunked by {m}", file=sys.stderr, flush=True)
        if args.xqute and args.only != "xqdecl":
            for n in sizes:
                rows.append(run_xqute(tmp, args.xqute, n, args.throttle, args.xqute_cap,
                                      args.partition, cmd))
                print(f"# done: xqute {n}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    show(rows)
    size = cluster_max_array_size()
    expected = [f"{n}: {math.ceil(n / size)}" for n in sizes]
    if args.chunked:
        n, m = (int(x) for x in args.chunked.split(":"))
        expected.append(f"{n} chunked by {m}: {math.ceil(n / m)}")
    print(f"MaxArraySize={size}; expected sbatch calls per group = ceil(N / MaxArraySize): "
          + ", ".join(expected))
    print(f"job: {args.cmd}; throttle (forks) {args.throttle}; "
          f"poll = status calls with < {GAP:g} s between; machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
