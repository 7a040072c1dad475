"""The local backend's executor: a job that needs no wrapper runs as its command
alone (the executor's child, no bash), with the wrapper's semantics; any other job
runs its wrapper; `plan --job N --script` prints the wrapper a job is equivalent to."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.waits import wait_for_file

Xq = Callable[..., tuple[int, str, str]]
Write = Callable[..., Path]

#: prints the command line of the job's parent process
PARENT = ("import os; print(open('/proc/%d/cmdline' % os.getppid(), 'rb').read()"
          ".replace(bytes(1), b' ').decode())")


def _rundir(tmp_path: Path) -> Path:
    return tmp_path / ".xqdecl" / "spec"


def test_a_job_without_scripts_is_the_executors_child_and_one_with_a_prescript_the_wrappers(
        xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec(f"""
        [[jobs]]
        name = "bare"
        cmd = ["{sys.executable}", "-c", "{PARENT}"]

        [[jobs]]
        name = "scripted"
        prescript = "true"
        cmd = ["{sys.executable}", "-c", "{PARENT}"]
    """)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    jobs = _rundir(tmp_path) / "jobs"
    bare = (jobs / "0" / "stdout.0").read_text()
    scripted = (jobs / "1" / "stdout.0").read_text()
    assert "run_executor" in bare and "job.sh" not in bare
    # the wrapper runs the command in a subshell of its own: the parent is that bash
    assert "run_executor" not in scripted and "bash" in scripted


def test_a_direct_job_sees_the_wrappers_environment_and_working_directory(
        xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    spec = write_spec("""
        cwd = "sub"
        [env]
        SHARED = "run"
        [[jobs]]
        name = "e-{x}"
        cmd = '''printf '%s|' "$XQDECL_JOB_INDEX" "$XQDECL_JOB_NAME" "$XQDECL_TRIAL" \\
            "$XQDECL_RUN" "$SHARED" "$MINE" "$PWD"; [ -t 0 ] || read -r line || echo eof'''
        matrix = { x = ["a b"] }
        env = { MINE = "{x}" }
    """)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    meta = _rundir(tmp_path) / "jobs" / "0"
    out = (meta / "stdout.0").read_text()
    assert out == f"0|e-a b|0|spec|run|a b|{tmp_path / 'sub'}|eof\n"
    assert (meta / "rc.0").read_bytes() == b"0\n\n"
    _host, pid, epoch, stamp = (meta / "start.0").read_text().split()
    assert pid.isdigit() and abs(float(epoch) - time.time()) < 120
    # no wrapper is written for it: its definition hash is on its start line
    assert not (meta / "job.sh").exists()
    with sqlite3.connect(_rundir(tmp_path) / "journal.db") as db:
        assert db.execute("select hash from jobs where idx = 0").fetchone() == (stamp,)


def test_direct_jobs_fail_timeout_and_crash_as_wrapped_ones_do(
        xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()
    spec = write_spec("""
        forks = 1  # in index order: the first job removes the last one's folder
        [[jobs]]
        name = "rm"
        cmd = ["rmdir", "gone"]
        [[jobs]]
        name = "rc3"
        cmd = ["sh", "-c", "echo out; echo err >&2; exit 3"]
        [[jobs]]
        name = "slow"
        cmd = ["sleep", "30"]
        timeout = "0.5s"
        [[jobs]]
        name = "segv"
        cmd = ["sh", "-c", "kill -SEGV $$"]
        [[jobs]]
        name = "missing"
        cmd = ["no-such-program-xq"]
        [[jobs]]
        name = "nodir"
        cmd = ["true"]
        cwd = "gone"
    """)
    code, out, err = xq("run", str(spec), "--output", "json", timeout=60)
    assert code == 1, err
    jobs = _rundir(tmp_path) / "jobs"
    assert (jobs / "0" / "rc.0").read_bytes() == b"0\n\n"
    assert (jobs / "1" / "rc.0").read_bytes() == b"3\n\n"
    assert (jobs / "1" / "stdout.0").read_text() == "out\n"
    assert (jobs / "1" / "stderr.0").read_text() == "err\n"
    assert (jobs / "2" / "rc.0").read_text().startswith("143\ntimed out after 0.5s")
    assert "xqdecl: timed out after 0.5s (rc 143)" in (jobs / "2" / "stderr.0").read_text()
    assert (jobs / "3" / "rc.0").read_text().startswith("139\n")
    assert "signal SIGSEGV" in (jobs / "3" / "stderr.0").read_text()
    assert (jobs / "4" / "rc.0").read_text().startswith("127\n")
    assert "no-such-program-xq" in (jobs / "4" / "stderr.0").read_text()
    assert (jobs / "5" / "rc.0").read_text().startswith("1\ncannot enter the working directory")
    code, out, _ = xq("status", str(spec), "--output", "json")
    rcs = {j["name"]: j["rc"] for j in json.loads(out)["jobs"]}
    assert rcs == {"rm": 0, "rc3": 3, "slow": 143, "segv": 139, "missing": 127, "nodir": 1}


def test_a_direct_job_outlives_a_killed_runner_and_its_rc_is_still_written(
        write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["sh", "-c", "sleep 2; echo done"]
    """)
    runner = subprocess.Popen([sys.executable, "-m", "xqdecl.cli", "run", str(spec),
                               "--output", "quiet"], start_new_session=True)
    meta = _rundir(tmp_path) / "jobs" / "0"
    try:
        assert wait_for_file(meta / "start.0", 30)
        os.killpg(runner.pid, signal.SIGKILL)
    finally:
        runner.wait(10)
    # no runner: the executor still writes the job's rc file when it ends
    assert wait_for_file(meta / "rc.0", 30)
    assert (meta / "rc.0").read_bytes() == b"0\n\n"
    assert (meta / "stdout.0").read_text() == "done\n"
    code = subprocess.run([sys.executable, "-m", "xqdecl.cli", "run", str(spec), "--output",
                           "quiet"], timeout=60).returncode
    assert code == 0
    assert not (meta / "rc.1").exists()  # resumed from the file: not run twice


def test_plan_prints_a_jobs_standalone_wrapper(xq: Xq, write_spec: Write,
                                               tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "w-{i}"
        cmd = ["sh", "-c", "echo job $XQDECL_JOB_INDEX trial $XQDECL_TRIAL; exit 4"]
        matrix = { i = [0, 1, 2] }
    """)
    code, by_index, err = xq("plan", str(spec), "--job", "2", "--script")
    assert code == 0, err
    code, by_name, _ = xq("plan", str(spec), "--job", "w-2", "--script")
    assert code == 0 and by_name == by_index
    assert by_index.startswith("#!/usr/bin/env bash\n") and "job 2 w-2" in by_index
    script = tmp_path / "w.sh"
    script.write_text(by_index)
    assert subprocess.run(["bash", str(script), "5"], timeout=30).returncode == 4
    meta = _rundir(tmp_path) / "jobs" / "2"
    assert (meta / "stdout.5").read_text() == "job 2 trial 5\n"
    assert (meta / "rc.5").read_bytes() == b"4\n\n"
    assert xq("plan", str(spec), "--job", "9", "--script")[0] == 2
    assert xq("plan", str(spec), "--job", "nope", "--script")[0] == 2
    assert xq("plan", str(spec), "--script")[0] == 2
