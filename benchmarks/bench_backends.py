"""100 `true` jobs on each backend that can run here, through the full runner.

    python benchmarks/bench_backends.py [--jobs 100] [--forks 16] [--only ssh,container]
                                        [--cmd "sleep 8"]

Backends: local (baseline), ssh (the testbed's loopback sshd, two server entries
for the same sshd), container (rootful podman of the testbed), gbatch (the fake
gcloud of tests/data/gbatch, which runs the tasks on this machine: it measures
xqdecl's side, not Google's). A service that cannot start is reported and
skipped. Columns:

- wall s: the whole run (plan, submit, watch, summary), each backend with its own
  poll and query cadence;
- submit calls: external commands that started jobs (ssh sessions, container
  clients, `gcloud batch jobs submit`); local spawns processes directly;
- queries: the runner's batched liveness queries; per query: external commands
  each one issued (0 when the answer is in memory; n/a when no query came due:
  short jobs are all seen ending through their event files first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import xqdecl  # noqa: E402
from xqdecl.backends import backend_class  # noqa: E402

FAKE_GCLOUD = ROOT / "tests" / "data" / "gbatch"


def scheduler_for(name: str, tmp: Path) -> dict[str, Any] | str:
    """The [scheduler] table of a backend, or why it cannot run here."""
    from tests import testbed

    if name == "local":
        return {"type": "local"}
    if name == "ssh":
        svc = testbed.ensure("ssh")
        if isinstance(svc, str):
            return svc
        key, known = svc.info.get("keyfile", ""), svc.info.get("known_hosts", "")
        port = int(svc.info.get("port", "2222"))
        servers = [{"host": h, "port": port, "user": "root", "keyfile": key}
                   for h in ("127.0.0.1", "localhost")]
        return {"type": "ssh", "servers": servers, "ssh_options": [
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]}
    if name == "container":
        svc = testbed.ensure("podman")
        if isinstance(svc, str):
            return svc
        return {"type": "container", "runtime": "podman",
                "image": svc.info.get("image", "docker.io/library/alpine")}
    if name == "gbatch":
        state = tmp / "fake-gcloud"
        state.mkdir(exist_ok=True)
        os.environ["FAKE_GCLOUD_DIR"] = str(state)
        os.environ["PATH"] = f"{FAKE_GCLOUD}{os.pathsep}{os.environ['PATH']}"
        return {"type": "gbatch", "project": "bench", "location": "us-central1"}
    return f"unknown backend {name}"


class Counts:
    """Backend calls and the external commands behind them, counted in-process."""

    def __init__(self, name: str, tmp: Path):
        self.name, self.tmp = name, tmp
        self.calls: Counter[str] = Counter()
        self.patches: list[tuple[Any, str, Any]] = []

    def patch(self, owner: Any, attr: str, key: str) -> None:
        original = getattr(owner, attr)
        calls = self.calls

        async def counted(*a: Any, **k: Any) -> Any:
            calls[key] += 1
            return await original(*a, **k)

        self.patches.append((owner, attr, original))
        setattr(owner, attr, counted)

    def __enter__(self) -> Counts:
        cls = backend_class(self.name)
        self.patch(cls, "query", "queries")
        if self.name == "ssh":
            from xqdecl.backends import ssh

            original = ssh._Server.run
            calls = self.calls

            async def run(srv: Any, script: str, timeout: float) -> Any:
                calls["ssh start" if script.startswith("start()") else
                      "ssh query" if script.startswith("for p in") else "ssh other"] += 1
                return await original(srv, script, timeout)

            self.patches.append((ssh._Server, "run", original))
            ssh._Server.run = run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self.patches):
            setattr(owner, attr, original)

    def external(self, jobs: int) -> tuple[int, float]:
        """(submit commands, commands per query)."""
        queries = max(1, self.calls["queries"])
        if self.name == "ssh":
            return self.calls["ssh start"], self.calls["ssh query"] / queries
        if self.name == "container":
            return jobs, 0.0  # one client per job; liveness from pidfds
        if self.name == "gbatch":
            lines = (self.tmp / "fake-gcloud" / "calls.jsonl").read_text().splitlines()
            verbs = Counter(json.loads(ln)["argv"][2] for ln in lines)
            return verbs["submit"], verbs["list"] / queries
        return 0, 0.0


def bench(name: str, jobs: int, forks: int, cmd: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"xq-bench-{name}-") as tmp_s:
        tmp = Path(tmp_s)
        scheduler = scheduler_for(name, tmp)
        if isinstance(scheduler, str):
            return {"backend": name, "skipped": scheduler}
        spec = xqdecl.spec_from_dict({
            "name": f"bench-{name}", "workdir": str(tmp / "wd"), "forks": forks,
            "scheduler": scheduler, "jobs": [{"cmd": cmd, "matrix": {"i": list(range(jobs))}}],
        }, base_dir=tmp)
        with Counts(name, tmp) as counts:
            t0 = time.perf_counter()
            result = asyncio.run(xqdecl.Runner(spec).run())
            wall = time.perf_counter() - t0
            submits, per_query = counts.external(jobs)
        return {"backend": name, "jobs": jobs, "ok": result.counts.get("succeeded", 0),
                "wall": wall, "submits": submits, "queries": counts.calls["queries"],
                "per_query": per_query}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--forks", type=int, default=16)
    parser.add_argument("--only", default="local,ssh,container,gbatch")
    parser.add_argument("--cmd", default="true", help="each job's command (bash)")
    args = parser.parse_args()
    rows = [bench(name, args.jobs, args.forks, args.cmd) for name in args.only.split(",")]
    print(f"\n{args.jobs} jobs of `{args.cmd}`, forks = {args.forks}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    head = f"{'backend':10} {'jobs ok':>8} {'wall s':>8} {'submit calls':>13} " \
           f"{'queries':>8} {'cmds/query':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "skipped" in r:
            print(f"{r['backend']:10} skipped: {r['skipped']}")
            continue
        per = f"{r['per_query']:.2f}" if r["queries"] else "n/a"
        print(f"{r['backend']:10} {r['ok']:>4}/{r['jobs']:<3} {r['wall']:>8.1f} "
              f"{r['submits']:>13} {r['queries']:>8} {per:>11}")


if __name__ == "__main__":
    main()
