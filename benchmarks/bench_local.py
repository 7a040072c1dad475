"""Local backend throughput and planning cost, side by side in one run.

    python benchmarks/bench_local.py [--jobs 10000] [--forks 64] [--plan-jobs 100000]
                                     [--compare CHECKOUT]

`--compare` repeats each xqdecl row with the package of another checkout
(e.g. a `git worktree` of an earlier commit, its native module copied in),
interleaved with ours, so a refactor is compared with what it replaced.

Rows:
- xargs -P: a bare launcher running a minimal wrapper that writes the same
  start/rc (temp + rename)/stdout/stderr files, per job, as xqdecl's wrapper;
- xqdecl run: the full runner (plan, render every wrapper, journal, submit,
  watch, summary) on the local backend;
- xqdecl plan / validate and run --dry-run for a large spec.
Each row is a separate process; wall time, CPU time (user+sys of the whole
process tree) and peak RSS (largest process of the tree) are measured.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_WRAPPER = r"""#!/usr/bin/env bash
m=$1/jobs/$2
exec </dev/null >"$m/stdout.0" 2>"$m/stderr.0"
printf '%s %s\n' "$HOSTNAME" "$$" >"$m/start.0"
: >"$1/events/$2.0.s"
"${@:3}"
rc=$?
printf '%s\n' "$rc" >"$m/rc.0.tmp" && mv -f -- "$m/rc.0.tmp" "$m/rc.0"
: >"$1/events/$2.0.e"
exit $rc
"""


def measure(cmd: list[str], **kw: object) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak MB, exit code) of one command and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, **kw)  # type: ignore[call-overload]
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024, proc.returncode


def bare(tmp: Path, jobs: int, forks: int) -> tuple[float, float, float, int]:
    root = tmp / "bare"
    (root / "events").mkdir(parents=True)
    script = root / "wrapper.sh"
    script.write_text(BARE_WRAPPER)
    driver = (
        f"seq 0 {jobs - 1} | sed 's|^|{root}/jobs/|' | xargs mkdir -p; "
        f"seq 0 {jobs - 1} | xargs -P {forks} -I{{}} bash {script} {root} {{}} true"
    )
    return measure(["bash", "-c", driver])


def spec_file(tmp: Path, name: str, jobs: int, forks: int, cmd: str = '["true"]') -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\nforks = {forks}\n[[jobs]]\nname = "j{{i}}"\ncmd = {cmd}\n'
        f"matrix = {{ i = {{ range = [0, {jobs}] }} }}\n"
    )
    return path


def xq(*args: str) -> list[str]:
    return [sys.executable, "-m", "xqdecl.cli", "--output", "quiet", *args]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--forks", type=int, default=64)
    ap.add_argument("--plan-jobs", type=int, default=100_000)
    ap.add_argument("--compare", default=None, metavar="CHECKOUT",
                    help="also run the xqdecl rows with CHECKOUT/python first on PYTHONPATH")
    args = ap.parse_args()
    versions: list[tuple[str, dict[str, str] | None]] = [("", None)]
    if args.compare:
        other = os.path.abspath(os.path.join(args.compare, "python"))
        versions.append((f" [{os.path.basename(os.path.abspath(args.compare))}]",
                         {**os.environ, "PYTHONPATH": other}))
    tmp = Path(tempfile.mkdtemp(prefix="xq-bench-"))
    rows = []
    try:
        w, c, m, rc = bare(tmp, args.jobs, args.forks)
        rows.append((f"xargs -P {args.forks}, bare wrapper", args.jobs, w, c, m, rc))
        base = w
        ratio = 0.0
        for tag, env in versions:
            spec = spec_file(tmp, f"local{len(rows)}", args.jobs, args.forks)
            w, c, m, rc = measure(xq("run", str(spec)), env=env)
            rows.append((f"xqdecl run, forks={args.forks}{tag}", args.jobs, w, c, m, rc))
            ratio = ratio or w / base
        for tag, env in versions:
            big = spec_file(tmp, f"plan{len(rows)}", args.plan_jobs, 64, cmd='["echo", "{i}"]')
            for label, cmd in (
                ("xqdecl validate", xq("validate", str(big))),
                ("xqdecl plan", xq("plan", str(big))),
                ("xqdecl run --dry-run (renders all)", xq("run", "--dry-run", str(big))),
            ):
                w, c, m, rc = measure(cmd, env=env)
                rows.append((label + tag, args.plan_jobs, w, c, m, rc))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'what':52} {'jobs':>7} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'exit':>4}")
    for label, n, w, c, m, rc in rows:
        print(f"{label:52} {n:7d} {w:8.2f} {c:8.2f} {m:8.1f} {rc:4d}")
    print(f"xqdecl / bare launcher wall time: {ratio:.2f}x  (goal <= 1.25x)")
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
