"""Launch cost of xqdecl next to other launchers, all rows in one table.

    python benchmarks/bench_launch.py [--jobs 10000] [--sleep-jobs 2000] [--forks 64]
                                      [--repeat 3] [--workloads W1,W2]
                                      [--hq PATH] [--compare CHECKOUT]

Workloads: W1 runs `--jobs` jobs of `true`; W2 runs `--sleep-jobs` jobs of
`sleep 0.2`, whose ideal wall time is jobs * 0.2 / forks (the "ideal x"
column). Both keep `--forks` jobs running at once. Each launcher/workload cell
is measured once per round, rounds interleave every cell (`--repeat`), and
the table shows the median of each column.

Rows (one is skipped, with the reason, when its tool is missing):
- xargs: `xargs -0 -n 1 -P F sh -c CMD`, one shell per job: the floor;
- parallel: GNU parallel, `parallel --will-cite -N0 -j F CMD`, one line of
  stdin per job (installed with apt-get when missing);
- hq: HyperQueue (`--hq PATH`, env XQDECL_BENCH_HQ, else `hq` on PATH): a
  fresh server and one worker with `--cpus F` per cell; wall time is
  `hq submit --array 1-N --wait -- CMD` only, the server and worker are stopped
  after it. Their CPU is read from /proc/<pid>/stat (utime + stime + cutime +
  cstime, so the tasks they reaped count) just before and after the submit;
  their peak RSS is VmHWM from /proc/<pid>/status;
- xqdecl: `python -m xqdecl.cli --output quiet run spec.toml` for a spec of
  one matrix job group with `forks = F`; `--compare CHECKOUT` adds the same
  row with CHECKOUT/python first on PYTHONPATH (its native module built or
  copied in), as bench_local.py does.
Every command runs as a child of this process and is reaped with wait4, so
CPU (user + sys) and peak RSS (largest process) cover its whole process tree
and nothing else; but Linux charges a child the RSS of the process it was
forked from when it execs, so every peak is at least this script's own RSS
(printed as the floor; kept small by deleting work folders with `rm -rf`).
Work folders are made under TMPDIR: `TMPDIR=/dev/shm` measures the launchers
without the cost of the disk's file creation (on this test machine's ext4
with `discard` a file created costs about 0.1 ms of kernel time, and run to
run it varies 2x), the default measures them on it.
"files/job" counts the files left in the row's fresh work folder (cwd,
TMPDIR, hq's server dir, xqdecl's workdir; not the spec) divided by jobs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLEEP = 0.2
TICK = os.sysconf("SC_CLK_TCK")
Sample = tuple[float, float, float]  # wall s, cpu s, peak MB


class Skip(Exception):
    """The row's tool is missing or failed."""


def run(cmd: list[str], cwd: Path, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> Sample:
    """Wall, CPU and peak RSS of one command's whole process tree (wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin else None,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if stdin and proc.stdin:
        proc.stdin.write(stdin)
        proc.stdin.close()
    err = proc.stderr.read() if proc.stderr else b""
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise Skip(f"exit {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def shell_cmd(sleep: bool) -> str:
    return f"sleep {SLEEP}" if sleep else "true"


def xargs_row(work: Path, n: int, forks: int, sleep: bool) -> Sample:
    items = b"".join(b"%d\0" % i for i in range(n))
    return run(["xargs", "-0", "-n", "1", "-P", str(forks), "sh", "-c", shell_cmd(sleep)],
               work, items, {**os.environ, "TMPDIR": str(work)})


def parallel_row(work: Path, n: int, forks: int, sleep: bool) -> Sample:
    lines = b"".join(b"%d\n" % i for i in range(n))
    return run(["parallel", "--will-cite", "-N0", "-j", str(forks), shell_cmd(sleep)],
               work, lines, {**os.environ, "TMPDIR": str(work)})


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime


def proc_hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hq_row(hq: str, work: Path, n: int, forks: int, sleep: bool) -> Sample:
    env = {**os.environ, "HQ_SERVER_DIR": str(work / "server"), "TMPDIR": str(work)}

    def start(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([hq, *args], cwd=work, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def call(*args: str) -> int:
        return subprocess.run([hq, *args], cwd=work, env=env, timeout=60,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    server, worker = start("server", "start"), None
    try:
        deadline = time.monotonic() + 30
        while call("server", "info"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise Skip("hq server did not start")
            time.sleep(0.2)
        worker = start("worker", "start", "--cpus", str(forks))
        if call("worker", "wait", "1"):
            raise Skip("hq worker did not connect")
        pids = (server.pid, worker.pid)
        before = sum(proc_cpu(p) for p in pids)
        wall, cpu, peak = run([hq, "submit", "--array", f"1-{n}", "--wait", "--",
                               *shell_cmd(sleep).split()], work, env=env)
        cpu += sum(proc_cpu(p) for p in pids) - before
        return wall, cpu, max(peak, *(proc_hwm(p) for p in pids))
    finally:
        call("server", "stop")
        for p in (worker, server):
            if p is not None:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def xqdecl_row(pythonpath: Path, work: Path, n: int, forks: int, sleep: bool) -> Sample:
    cmd = '["sleep", "0.2"]' if sleep else '["true"]'
    spec = work / "spec.toml"
    spec.write_text(f'name = "b"\nforks = {forks}\n[[jobs]]\nname = "t{{i}}"\ncmd = {cmd}\n'
                    f"matrix = {{ i = {{ range = [0, {n}] }} }}\n")
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "TMPDIR": str(work)}
    return run([sys.executable, "-m", "xqdecl.cli", "--output", "quiet", "run", str(spec)],
               work, env=env)


def count_files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def version(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=30).stdout
    except OSError:
        return "missing"
    return (out.splitlines() or ["?"])[0].strip()


Row = Callable[[Path, int, int, bool], Sample]


def launchers(args: argparse.Namespace) -> tuple[list[tuple[str, Row]], list[str]]:
    rows: list[tuple[str, Row]] = []
    notes: list[str] = []
    if shutil.which("xargs"):
        rows.append(("xargs -P", xargs_row))
    else:
        notes.append("xargs: skipped, not found")
    if not shutil.which("parallel"):
        subprocess.run(["apt-get", "install", "-y", "parallel"], capture_output=True)
    if shutil.which("parallel"):
        rows.append(("GNU parallel", parallel_row))
        notes.append("parallel: " + version(["parallel", "--version"]))
    else:
        notes.append("parallel: skipped, not installed and apt-get install failed")
    hq = args.hq or os.environ.get("XQDECL_BENCH_HQ") or shutil.which("hq") or ""
    if hq and os.access(hq, os.X_OK):
        rows.append(("hq", lambda w, n, f, s: hq_row(hq, w, n, f, s)))
        notes.append(f"hq: {version([hq, '--version'])} ({hq})")
    else:
        notes.append("hq: skipped, no --hq, XQDECL_BENCH_HQ or hq on PATH")
    ours = ROOT / "python"
    rows.append(("xqdecl", lambda w, n, f, s: xqdecl_row(ours, w, n, f, s)))
    notes.append("xqdecl: " + version(["git", "describe", "--tags", "--always", "--dirty"], ROOT))
    if args.compare:
        other = Path(args.compare).resolve()
        rows.append((f"xqdecl [{other.name}]",
                     lambda w, n, f, s: xqdecl_row(other / "python", w, n, f, s)))
        notes.append(f"xqdecl [{other.name}]: "
                     + version(["git", "describe", "--tags", "--always", "--dirty"], other))
    return rows, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--jobs", type=int, default=10_000, help="W1 jobs of `true`")
    ap.add_argument("--sleep-jobs", type=int, default=2_000, help="W2 jobs of `sleep 0.2`")
    ap.add_argument("--forks", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--hq", default=None, metavar="PATH")
    ap.add_argument("--compare", default=None, metavar="CHECKOUT")
    args = ap.parse_args()
    sizes = {"W1": (args.jobs, False), "W2": (args.sleep_jobs, True)}
    loads = [w.strip() for w in args.workloads.split(",") if w.strip() in sizes]
    rows, notes = launchers(args)
    samples: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    failed: dict[tuple[str, str], str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="xq-launch-"))
    try:
        for rnd in range(args.repeat):
            for load in loads:
                n, sleep = sizes[load]
                for i, (name, row) in enumerate(rows):
                    key = (name, load)
                    if key in failed:
                        continue
                    work = tmp / f"{rnd}-{load}-{i}"
                    work.mkdir()
                    print(f"round {rnd + 1}: {load} {name} ...", file=sys.stderr, flush=True)
                    try:
                        wall, cpu, peak = row(work, n, args.forks, sleep)
                    except (Skip, OSError, subprocess.SubprocessError) as e:
                        failed[key] = str(e)
                        continue
                    finally:  # rm, not rmtree: this process's RSS must stay small (see above)
                        left = count_files(work) - name.startswith("xqdecl")
                        subprocess.run(["rm", "-rf", str(work)], check=False)
                    samples.setdefault(key, []).append((wall, cpu, peak, left / n))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = (f"{'launcher':22} {'load':4} {'jobs/s':>8} {'wall s':>8} {'CPU ms/job':>10} "
            f"{'peak MB':>8} {'files/job':>9} {'ideal x':>8}")
    print(head)
    print("-" * len(head))
    for load in loads:
        n, sleep = sizes[load]
        for name, _ in rows:
            got = samples.get((name, load))
            if not got:
                print(f"{name:22} {load:4} FAILED: {failed.get((name, load), '?')}")
                continue
            wall, cpu, peak, files = (statistics.median(col) for col in zip(*got, strict=True))
            ideal = f"{wall / (n * SLEEP / args.forks):8.2f}" if sleep else f"{'-':>8}"
            print(f"{name:22} {load:4} {n / wall:8.0f} {wall:8.2f} {cpu * 1000 / n:10.2f} "
                  f"{peak:8.1f} {files:9.2f} {ideal}")
    print(f"W1 = {args.jobs} x true, W2 = {args.sleep_jobs} x sleep {SLEEP}, forks = {args.forks}, "
          f"median of {args.repeat} interleaved round(s)")
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; "
          f"peak MB floor (this script's RSS): {floor:.1f}")
    for note in notes:
        print(note)
    for (name, load), why in failed.items():
        if (name, load) in samples:
            print(f"{name} {load}: a later round failed: {why}")


if __name__ == "__main__":
    main()
