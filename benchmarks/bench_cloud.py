"""Object operations per job of a cloud-workdir run, against moto's S3 server.

    python benchmarks/bench_cloud.py [--jobs 20]

Starts an S3 API server on loopback, runs N short jobs of `echo` with
`workdir = "s3://..."` on the local backend (wrappers upload with `aws s3 cp`),
and counts the requests the server saw, by kind, split into those made by the
runner (poller, journal mirror) and by the jobs' wrappers (uploads). The
wrapper side is counted from the `aws` user agent.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

LINE = re.compile(r'"(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="xq-cloud-"))
    log = open(tmp / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "b",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        subprocess.run(["aws", "s3", "mb", "s3://bench"], env=env, check=True,
                       capture_output=True)
        spec = tmp / "cloud.toml"
        spec.write_text(
            'name = "cloud"\nworkdir = "s3://bench/runs"\nforks = 4\n[[jobs]]\n'
            f'cmd = ["echo", "{{i}}"]\nmatrix = {{ i = {{ range = [0, {args.jobs}] }} }}\n'
        )
        before = (tmp / "server.log").read_text().count("\n")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "xqdecl.cli", "--output", "quiet", "run",
                               str(spec)], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        lines = (tmp / "server.log").read_text().splitlines()[before:]
    finally:
        server.terminate()
        server.wait()
        log.close()
    ops: Counter[str] = Counter()
    for line in lines:
        m = LINE.search(line)
        if not m:
            continue
        method, path = m.groups()
        listing = method == "GET" and ("list-type" in path or "prefix=" in path)
        kind = "LIST" if listing else method
        where = "events" if "events" in path else "journal" if "journal.db" in path else "jobs"
        ops[f"{kind} {where}"] += 1
    n = args.jobs
    print(f"{n} jobs, exit {proc.returncode}, wall {wall:.1f}s")
    print(f"{'operation':22} {'count':>7} {'per job':>8}")
    for key, count in sorted(ops.items()):
        print(f"{key:22} {count:7d} {count / n:8.2f}")
    total = sum(ops.values())
    print(f"{'total':22} {total:7d} {total / n:8.2f}")


if __name__ == "__main__":
    main()
