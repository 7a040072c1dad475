"""Issue 11's runner points, each driven through the real CLI on the local backend:
a cancel cut short by SIGKILL, a workdir that goes away or read-only mid-run,
signals while a large spec is still being planned, and planning that writes
nothing per job before the job is submitted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.waits import pids_left, wait_for_file

Xq = Callable[..., tuple[int, str, str]]
Write = Callable[..., Path]


def _start(spec: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xqdecl.cli", "run", str(spec), *args], text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def _status(xq: Xq, spec: Path) -> dict:
    code, out, err = xq("status", str(spec), "--output", "json")
    assert code == 0, err
    return json.loads(out)


def _wait(cond: Callable[[], bool], limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_jobs_cancelled_by_a_runner_killed_mid_cancel_run_again(
        xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    """Ctrl-C, then the runner SIGKILLed during the cancel's grace: the next run finishes
    that cancel and runs the jobs again (they were cancelled, not failed)."""
    marker = f"sleep 331.{os.getpid()}"
    spec = write_spec(f"""
        forks = 3
        [[jobs]]
        name = "j{{i}}"
        cmd = "touch started-{{i}}; [ -e go ] && exit 0; trap '' TERM; {marker}"
        matrix = {{ i = [0, 1, 2] }}
    """)
    proc = _start(spec, env={"XQDECL_CANCEL_GRACE": "60"})
    try:
        for i in range(3):
            assert wait_for_file(tmp_path / f"started-{i}", 60)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        rundir = tmp_path / ".xqdecl" / "spec"
        # the runner writes `cancelling` before it sends the cancel, then waits the grace
        assert _wait(lambda: _status(xq, spec)["counts"].get("cancelling") == 3, 30)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert len(pids_left(marker, 0.5)) == 3  # they ignore TERM: still there
    (tmp_path / "go").write_text("")
    code, _, err = xq("run", str(spec), env={"XQDECL_CANCEL_GRACE": "1"})
    assert code == 0, err
    jobs = _status(xq, spec)["jobs"]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    assert not pids_left(marker)
    assert list(rundir.glob("history/*")) == []  # the cancelled attempts stay in place


def _immutable(path: Path, on: bool) -> bool:
    """chattr -R +i / -i: not even root may then write there (a read-only store, as far
    as the run can tell; works on ext4, which holds the tests' tmp folders here)."""
    flag = "+i" if on else "-i"
    try:
        return subprocess.run(["chattr", "-R", flag, str(path)],
                              capture_output=True).returncode == 0
    except FileNotFoundError:  # no e2fsprogs: the test says so and skips
        return False


def test_a_workdir_made_read_only_is_an_infrastructure_error(
        xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    """Exit 4 with a message, no job blamed; once writable again, a rerun runs exactly
    what had not finished and skips what had."""
    spec = write_spec(f"""
        forks = 2
        [[jobs]]
        name = "j{{i}}"
        cmd = "if [ {{i}} -ge 2 ]; then touch {tmp_path}/started-{{i}}; sleep 3; fi"
        matrix = {{ i = [0, 1, 2, 3, 4, 5] }}
    """)
    rundir = tmp_path / ".xqdecl" / "spec"
    proc = _start(spec)
    try:
        assert wait_for_file(tmp_path / "started-2", 60)
        # the job-facing folders (the journal's own files stay writable: SQLite maps them)
        if not all(_immutable(rundir / d, True) for d in ("jobs", "events")):
            pytest.skip("chattr +i does not work on this filesystem")
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        for d in ("jobs", "events"):
            _immutable(rundir / d, False)
    assert proc.returncode == 4, err
    assert "Traceback" not in err
    assert "run directory" in err or "journal" in err, err
    st = _status(xq, spec)
    assert st["counts"].get("failed", 0) == 0  # nothing was blamed on the jobs
    assert [j["status"] for j in st["jobs"][:2]] == ["succeeded", "succeeded"]
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    st = _status(xq, spec)
    assert [j["status"] for j in st["jobs"][:2]] == ["skipped", "skipped"]
    assert all(j["status"] == "succeeded" for j in st["jobs"][2:])


def test_a_deleted_workdir_stops_the_run_with_exit_4(
        write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec(f"""
        forks = 1
        [[jobs]]
        name = "j{{i}}"
        cmd = "touch {tmp_path}/started-{{i}}; sleep 1"
        matrix = {{ i = [0, 1, 2, 3] }}
    """)
    proc = _start(spec)
    try:
        assert wait_for_file(tmp_path / "started-0", 60)
        subprocess.run(["rm", "-rf", str(tmp_path / ".xqdecl")], check=True)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, err
    assert "Traceback" not in err and "run directory" in err
    assert not (tmp_path / "started-2").exists()  # it stopped submitting


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_large_spec_is_planned_ends_the_run_at_once(
        write_spec: Write, tmp_path: Path, sig: signal.Signals) -> None:
    """Planning goes a slice at a time: the first jobs start at once, a signal ends the
    run within seconds (exit 130, no traceback), and no job starts after it."""
    spec = write_spec(f"""
        forks = 2
        [[jobs]]
        name = "j{{i}}"
        cmd = ["sh", "-c", "touch {tmp_path}/started-$0; sleep 30", "{{i}}"]
        matrix = {{ i = {{ range = [0, 2000000] }} }}
    """)
    proc = _start(spec)
    try:
        assert wait_for_file(tmp_path / "started-0", 90)  # long before 2,000,000 are planned
        os.kill(proc.pid, sig)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert took < 20, took  # the cancel's grace is 3 s here; planning does not hold it up
    started = sorted(tmp_path.glob("started-*"))
    assert len(started) <= 2
    rundir = tmp_path / ".xqdecl" / "spec"
    # disk follows what was submitted: no folder for the jobs that were only planned
    assert len(list((rundir / "jobs").iterdir())) <= 2


def test_a_run_that_fails_inside_gives_its_lock_back(write_spec: Write, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error inside the loop (here: planning raises) must not leave the run
    locked for the rest of the process (the Python API runs many runs in one)."""
    import xqdecl
    from xqdecl.engine.planner import Planner

    spec = write_spec("""
        [[jobs]]
        cmd = ["true"]
    """)

    def broken(self: object, budget: float) -> int:
        raise RuntimeError("planning broke")

    with monkeypatch.context() as m:
        m.setattr(Planner, "step", broken)
        with pytest.raises(RuntimeError):
            xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.ok, result
