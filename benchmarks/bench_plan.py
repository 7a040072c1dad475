"""Planning a large run: how soon the first job starts, how long until every job
is planned, and what that costs in memory and disk (issue 11: planning must not
write a file tree per job before the first submission, nor hold up signals).

Each size runs `xqdecl run` in-process on a spec of N jobs of `sleep 1000`
(forks = 1, so one job is submitted and the rest only planned), waits until
planning is done, then stops the run. Prints one table.

    python benchmarks/bench_plan.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import xqdecl
from xqdecl.engine import Reporter, Runner


def _du(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(path):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(root, n)).st_blocks * 512
    return files, size


async def _plan(spec_path: Path) -> dict[str, float]:
    spec = xqdecl.load_spec(spec_path)
    runner = Runner(spec, reporter=Reporter(), poll_interval=0.2)
    t0 = time.monotonic()
    task = asyncio.ensure_future(runner.run())
    first = None
    while True:
        await asyncio.sleep(0.01)
        if first is None and runner.counts.get("running", 0) + runner.counts.get(
                "submitted", 0) >= 1:
            first = time.monotonic() - t0
        planner = getattr(runner, "planner", None)
        if planner is not None and planner.done:
            break
    planned = time.monotonic() - t0
    runner.request_stop()
    t_stop = time.monotonic()
    await task
    stopped = time.monotonic() - t_stop
    return {"first": first or float("nan"), "planned": planned, "stop": stopped}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'jobs':>10} {'first job s':>12} {'all planned s':>14} {'jobs/s':>9} "
          f"{'stop s':>7} {'peak RSS MB':>12} {'files':>6} {'disk MB':>8}")
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="xqdecl-bench-plan-"))
        try:
            spec = tmp / "big.toml"
            spec.write_text(
                'forks = 1\n[[jobs]]\nname = "j{i}"\ncmd = ["sleep", "1000"]\n'
                f"matrix = {{ i = {{ range = [0, {n}] }} }}\n")
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            r = asyncio.run(_plan(spec))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            files, size = _du(tmp / ".xqdecl")
            print(f"{n:>10,} {r['first']:>12.2f} {r['planned']:>14.1f} "
                  f"{n / r['planned']:>9,.0f} {r['stop']:>7.2f} {max(peak, before) / 1024:>12.0f} "
                  f"{files:>6} {size / 2**20:>8.1f}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("(peak RSS is the process's high-water mark so far: sizes run in ascending order)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
