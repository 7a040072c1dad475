"""The job executor (`python -m xqdecl.worker`, rust/exec) as the runner drives it:
NUL-ended records on its stdin, `s`/`e`/`!` lines on its stdout."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waits import wait_for_file


def record(index: int, argv: list[str], *, mode: str = "direct", rundir: Path | None = None,
           cwd: str = "", timeout: str = "", label: str = "",
           env: dict[str, str] | None = None) -> bytes:
    """One record as the runner writes it (trial 0)."""
    env = env or {}
    meta = str(rundir / "jobs" / str(index)) if rundir and mode == "direct" else ""
    events = str(rundir / "events") if rundir and mode == "direct" else ""
    fields = ["J", str(index), "0", mode, meta, events, cwd, timeout, label, "", "",
              str(len(argv)), *argv, str(len(env)), *(f"{k}={v}" for k, v in env.items())]
    return b"".join(os.fsencode(f) + b"\0" for f in fields)


class Worker:
    """A running executor and the lines it wrote so far."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xqdecl.worker", "--grace", "1", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        self._buf = b""

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def lines(self, count: int, limit: float = 10.0) -> list[str]:
        """The next `count` lines (fewer if the executor closed its stdout first)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + limit
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while self._buf.count(b"\n") < count:
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for lines; got {self._buf!r}"
                if not sel.select(left):
                    continue
                data = os.read(fd, 65536)
                if not data:
                    break
                self._buf += data
        got = self._buf.split(b"\n")
        done = min(count, len(got) - 1)
        self._buf = b"\n".join(got[done:])
        return [line.decode() for line in got[:done]]


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    if w.proc.poll() is None:
        os.killpg(w.proc.pid, 9)
    w.proc.wait(10)
    for f in (w.proc.stdin, w.proc.stdout):
        if f is not None and not f.closed:
            f.close()


@pytest.fixture
def rundir(tmp_path: Path) -> Path:
    (tmp_path / "events").mkdir()
    (tmp_path / "jobs").mkdir()
    return tmp_path


def masked(line: str) -> str:
    """An `s` line without its pid and start ticks (they vary), unless it did not start."""
    parts = line.split(" ")
    if parts[0] == "s":
        assert len(parts) == 5 and parts[3].isdigit() and parts[4].isdigit(), line
        return " ".join(parts[:3]) + (" 0 0" if parts[3] == "0" else "")
    return line


def test_direct_jobs_report_and_write_their_files(worker: Worker, rundir: Path) -> None:
    worker.send(record(1, ["true"], rundir=rundir)
                + record(2, ["sh", "-c", "echo hi; exit 3"], rundir=rundir)
                + record(3, ["no-such-command-xq"], rundir=rundir))
    got = [masked(line) for line in worker.lines(6)]
    assert got[:3] == ["s 1 0", "s 2 0", "s 3 0 0 0"]
    assert sorted(got[3:]) == ["e 1 0 0", "e 2 0 3", "e 3 0 127"]
    assert got[3] == "e 3 0 127"  # it never ran: its end follows its start at once
    jobs = rundir / "jobs"
    assert (jobs / "1" / "rc.0").read_bytes() == b"0\n\n"
    assert (jobs / "2" / "rc.0").read_bytes() == b"3\n\n"
    assert (jobs / "2" / "stdout.0").read_text() == "hi\n"
    why = "cannot run no-such-command-xq: No such file or directory"
    assert (jobs / "3" / "rc.0").read_text() == f"127\n{why}\n"
    host, pid, epoch = (jobs / "2" / "start.0").read_text().split(" ")
    assert host == socket.gethostname() and pid.isdigit()
    assert epoch.endswith("\n") and len(epoch.strip().split(".")[1]) == 6
    assert sorted(os.listdir(rundir / "events")) == [
        "1.0.e0", "1.0.s", "2.0.e3", "2.0.s", "3.0.e127", "3.0.s"]


def test_timeout_and_malformed_record(worker: Worker, rundir: Path) -> None:
    worker.send(b"oops\0" + record(0, ["sleep", "5"], rundir=rundir, timeout="0.2", label="0.2s"))
    got = [masked(line) for line in worker.lines(3)]
    assert got[0].startswith("! malformed record: ")
    assert got[1:] == ["s 0 0", "e 0 0 143"]
    assert (rundir / "jobs/0/rc.0").read_text() == "143\ntimed out after 0.2s\n"
    assert (rundir / "jobs/0/stderr.0").read_text() == "xqdecl: timed out after 0.2s (rc 143)\n"


def test_exits_0_after_input_ends_and_jobs_end(worker: Worker, rundir: Path) -> None:
    worker.send(record(0, ["sleep", "0.5"], rundir=rundir))
    assert masked(worker.lines(1)[0]) == "s 0 0"
    assert worker.proc.stdin is not None
    worker.proc.stdin.close()
    assert worker.proc.poll() is None  # its job still runs
    assert worker.lines(1) == ["e 0 0 0"]
    assert worker.proc.wait(10) == 0


def test_a_dead_runner_does_not_stop_the_jobs(worker: Worker, rundir: Path) -> None:
    worker.send(record(0, ["sh", "-c", "sleep 1; exit 4"], rundir=rundir))
    assert masked(worker.lines(1)[0]) == "s 0 0"
    assert worker.proc.stdin is not None and worker.proc.stdout is not None
    worker.proc.stdin.close()
    worker.proc.stdout.close()
    assert wait_for_file(rundir / "jobs/0/rc.0")
    assert (rundir / "jobs/0/rc.0").read_text() == "4\n\n"
    assert worker.proc.wait(10) == 0
    assert "0.0.e4" in os.listdir(rundir / "events")


def test_wrapper_mode(worker: Worker, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("echo not kept\nexit 5\n")
    worker.send(record(12, ["bash", str(script), "0"], mode="wrapper"))
    got = worker.lines(2)
    assert masked(got[0]) == "s 12 0"
    assert got[1] == "e 12 0 5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.sh"]


def test_with_events_unheard_event_files_are_left_only_once_nobody_reads(
        rundir: Path) -> None:
    w = Worker("--events", "unheard")
    try:
        w.send(record(1, ["true"], rundir=rundir))
        assert [masked(line) for line in w.lines(2)] == ["s 1 0", "e 1 0 0"]
        assert os.listdir(rundir / "events") == []  # told on the pipe: no files
        w.send(record(2, ["sh", "-c", "sleep 0.5; exit 6"], rundir=rundir))
        assert [masked(line) for line in w.lines(1)] == ["s 2 0"]
        assert w.proc.stdout is not None and w.proc.stdin is not None
        w.proc.stdout.close()  # the runner is gone
        w.proc.stdin.close()
        assert w.proc.wait(10) == 0
        assert (rundir / "jobs" / "2" / "rc.0").read_bytes() == b"6\n\n"
        assert os.listdir(rundir / "events") == ["2.0.e6"]  # for the next runner
    finally:
        if w.proc.poll() is None:
            os.killpg(w.proc.pid, 9)
            w.proc.wait(10)
