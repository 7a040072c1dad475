"""What plugin hooks cost the runner, per job.

    python benchmarks/bench_hooks.py [--jobs 5000] [--forks 64] [--repeat 1] [--calls 100000]

Three real local runs of `true` x JOBS, each in a fresh process:
- none:  no plugins (the runner does nothing for hooks);
- sync:  a plugin implementing every on_job_* hook with `def`;
- async: the same hooks with `async def`.
The runner's own CPU time (user+sys of the runner process, not of the jobs)
is shown, and, measured from inside the run, the CPU spent building JobViews
and dispatching hook calls: on a shared, busy machine the whole-run numbers
vary by more than the hooks cost, the inside measure much less. Wall time is
dominated by starting 5,000 processes. The second table times one hook call
in isolation: the dispatch (`await hooks.call`) of a sync and an async
implementation, and building the JobView a call receives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOOKS = ("on_job_init", "on_job_queued", "on_job_submitting", "on_job_submitted",
         "on_job_started", "on_job_killing", "on_job_killed", "on_job_failed",
         "on_job_succeeded")


def plugin_source(kind: str) -> str:
    lines = ["from xqdecl import plugin", "CALLS = [0]", ""]
    prefix = "async def" if kind == "async" else "def"
    for hook in (*HOOKS, "on_job_polling"):
        args = "scheduler, job, counter" if hook == "on_job_polling" else "scheduler, job"
        lines += ["@plugin.impl", f"{prefix} {hook}({args}):", "    CALLS[0] += 1", ""]
    return "\n".join(lines)


def spec_text(name: str, jobs: int, forks: int, plugins: list[str]) -> str:
    listed = ", ".join(f'"{p}"' for p in plugins)
    return (f'name = "{name}"\nforks = {forks}\nplugins = [{listed}]\n[[jobs]]\n'
            f'name = "j{{i}}"\ncmd = ["true"]\nmatrix = {{ i = {{ range = [0, {jobs}] }} }}\n')


def worker(spec: str) -> None:
    """One run in this process: print wall, runner CPU, hook calls and their CPU as JSON.

    The runner's hook machinery (building each JobView, dispatching each call)
    is timed from inside with the thread's CPU clock, which other processes on
    a loaded machine disturb far less than the whole run's numbers.
    """
    import xqdecl
    from xqdecl.plugin.hooks import PluginHooks
    from xqdecl.plan import Plan

    spent = [0.0]
    call, view = PluginHooks.call, Plan.view

    async def timed_call(self, name, *args):  # type: ignore[no-untyped-def]
        t = time.thread_time()
        try:
            return await call(self, name, *args)
        finally:
            spent[0] += time.thread_time() - t

    def timed_view(self, row, status):  # type: ignore[no-untyped-def]
        t = time.thread_time()
        try:
            return view(self, row, status)
        finally:
            spent[0] += time.thread_time() - t

    PluginHooks.call, Plan.view = timed_call, timed_view  # type: ignore[method-assign]
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = xqdecl.run(spec, fresh=True)  # every repeat runs every job again
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t0
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    calls = 0
    for name in ("bench_sync_plugin", "bench_async_plugin"):
        if name in sys.modules:
            calls = sys.modules[name].CALLS[0]
    print(json.dumps({"wall": wall, "cpu": cpu, "calls": calls, "hook_cpu": spent[0],
                      "ok": result.ok}))


def run_variant(tmp: Path, kind: str, jobs: int, forks: int) -> dict:
    plugins = [] if kind == "none" else [f"bench_{kind}_plugin"]
    spec = tmp / f"{kind}.toml"
    spec.write_text(spec_text(f"bench-{kind}", jobs, forks, plugins))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get(
        "PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, "--worker", str(spec)], env=env,
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if not data["ok"]:
        raise SystemExit(f"the {kind} run failed")
    return data


async def per_call(n: int) -> list[tuple[str, float]]:
    """Seconds per call of the dispatch alone, and of building a JobView."""
    from xqdecl import plugin
    from xqdecl.store.journal import JobRow
    from xqdecl.plan import Plan
    from xqdecl.spec import spec_from_dict

    rows = []
    for kind in ("sync", "async"):
        hooks = plugin.hooks_for([f"bench_{kind}_plugin"])
        view = object()
        t0 = time.perf_counter()
        for _ in range(n):
            await hooks.call("on_job_started", None, view)
        rows.append((f"await hooks.call, {kind} impl", (time.perf_counter() - t0) / n))
        hooks.close()
    none = plugin.hooks_for([])
    t0 = time.perf_counter()
    for _ in range(n):
        if "on_job_started" in none.active:
            await none.call("on_job_started", None, None)
    rows.append(("no plugin (the runner's `active` check)", (time.perf_counter() - t0) / n))
    spec = spec_from_dict({"jobs": [{"name": "j{i}", "cmd": ["true", "{i}"],
                                     "matrix": {"i": {"range": [0, 1000]}}}]})
    plan = Plan(spec)
    row = JobRow(idx=7, name="j7", grp=0, hash="", status="running")
    t0 = time.perf_counter()
    for _ in range(n):
        plan.view(row, "running")
    rows.append(("Plan.view (the JobView of one call)", (time.perf_counter() - t0) / n))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--forks", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant (best is kept)")
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    with tempfile.TemporaryDirectory(prefix="xq-bench-hooks-") as d:
        tmp = Path(d)
        for kind in ("sync", "async"):
            (tmp / f"bench_{kind}_plugin.py").write_text(plugin_source(kind))
        runs: dict[str, list[dict]] = {"none": [], "sync": [], "async": []}
        for _ in range(args.repeat):  # interleaved, so a busy spell hits every variant
            for kind in runs:
                runs[kind].append(run_variant(tmp, kind, args.jobs, args.forks))
        results = {kind: min(rs, key=lambda r: r["cpu"]) for kind, rs in runs.items()}
        base = results["none"]["cpu"]
        print(f"{args.jobs} jobs of `true`, forks {args.forks}, local backend, best of "
              f"{args.repeat}; runner CPU = user+sys of the runner process (jobs excluded); "
              "hook CPU = measured inside the run around every JobView and hook call")
        print(f"{'plugins':<8} {'wall s':>7} {'runner CPU s':>13} {'vs none us/job':>15} "
              f"{'hook calls':>11} {'hook CPU s':>11} {'hook us/job':>12} {'us/call':>8}")
        for kind, r in results.items():
            calls = r["calls"]
            each = f"{r['hook_cpu'] / calls * 1e6:8.1f}" if calls else f"{'-':>8}"
            print(f"{kind:<8} {r['wall']:7.1f} {r['cpu']:13.2f} "
                  f"{(r['cpu'] - base) / args.jobs * 1e6:15.0f} {calls:11d} "
                  f"{r['hook_cpu']:11.3f} {r['hook_cpu'] / args.jobs * 1e6:12.1f} {each}")
        sys.path.insert(0, str(tmp))
        rows = asyncio.run(per_call(args.calls))
        print()
        print(f"{'one hook call, in isolation':<42} {'us':>8}")
        for label, seconds in rows:
            print(f"{label:<42} {seconds * 1e6:8.2f}")


if __name__ == "__main__":
    main()
