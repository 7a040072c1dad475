"""Smoke run of benchmarks/bench_poll.py (--quick: a few hundred jobs, no xqute)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xqdecl._xqdecl")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_poll.py"


def test_bench_poll_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for column in ["events Rust", "events Rust bare", "events Py", "sweep Rust 1t",
                   "sweep Rust 2t", "sweep Py"]:
        assert column in out
    rows = [line.split()[:2] for line in out.splitlines() if line.startswith("300 ")]
    assert rows == [["300", "none"], ["300", "1%"], ["300", "all"]]
    assert "idle events pass at 300 in flight" in out
    # the steady load: every job the writer ended was reported, the loop's share printed
    steady = re.search(r"steady load: 300 in flight, 100 completions/s .*\((\d+) completions", out)
    assert steady and int(steady[1]) == 300, out
    assert re.search(r"loop CPU \d+ ms = [0-9.]+% of one core", out), out
    assert list(tmp_path.iterdir()) == []  # the rundirs are cleaned up
