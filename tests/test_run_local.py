"""End to end on the local backend, through the real CLI."""

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

from tests.conftest import REPO
from tests.waits import pids_left, wait_for_file

Xq = Callable[..., tuple[int, str, str]]
Write = Callable[..., Path]


def _status(xq: Xq, spec: Path) -> dict:
    code, out, err = xq("status", str(spec), "--output", "json")
    assert code == 0, err
    return json.loads(out)


def test_hello_runs_and_passes_argv_exactly(xq: Xq, tmp_path: Path) -> None:
    spec = tmp_path / "hello.toml"
    spec.write_text((REPO / "configs" / "hello.toml").read_text())
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    st = _status(xq, spec)
    assert st["counts"] == {"succeeded": 6}
    hostile = "it's $HOME `whoami`"
    name = f"greet-{hostile}-1"
    code, out, _ = xq("logs", str(spec), name)
    assert code == 0
    assert out == f"hello, {hostile} (job 4, try 0)\n"


def test_failures_are_reported_with_rc_and_stderr(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "j{n}"
        cmd = "echo problem-{n} >&2; exit {n}"
        matrix = { n = [0, 3] }
    """)
    code, _, err = xq("run", str(spec))
    assert "j3" in err
    assert code == 1
    st = _status(xq, spec)
    assert st["counts"] == {"succeeded": 1, "failed": 1}
    failed = [j for j in st["jobs"] if j["status"] == "failed"]
    assert failed[0]["rc"] == 3 and failed[0]["name"] == "j3"
    code, out, _ = xq("status", str(spec))
    assert "problem-3" in out
    code, out, _ = xq("logs", str(spec), "j3", "--stderr")
    assert "problem-3" in out


def test_retry_keeps_every_trial(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        error_strategy = "retry"
        num_retries = 3
        [[jobs]]
        name = "flaky"
        cmd = "echo try-$XQDECL_TRIAL; [ $XQDECL_TRIAL -ge 2 ]"
    """)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    meta = spec.parent / ".xqdecl" / "spec" / "jobs" / "0"
    assert [(meta / f"stdout.{t}").read_text() for t in range(3)] == [
        "try-0\n", "try-1\n", "try-2\n"]
    assert (meta / "rc.0").read_text().startswith("1\n")
    st = _status(xq, spec)
    assert st["jobs"][0]["trials"] == 3 and st["jobs"][0]["status"] == "succeeded"


def test_retries_run_out(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        error_strategy = "retry"
        num_retries = 1
        [[jobs]]
        cmd = "exit 2"
    """)
    code, _, _ = xq("run", str(spec))
    assert code == 1
    assert _status(xq, spec)["jobs"][0]["trials"] == 2


def test_halt_cancels_the_rest(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        error_strategy = "halt"
        forks = 3
        [[jobs]]
        name = "j{i}"
        cmd = "if [ {i} = 0 ]; then exit 5; fi; sleep 60"
        matrix = { i = { range = [0, 6] } }
    """)
    t0 = time.monotonic()
    code, _, err = xq("run", str(spec))
    assert code == 1, err
    assert time.monotonic() - t0 < 30
    st = _status(xq, spec)
    assert st["counts"]["failed"] == 1
    assert st["counts"]["cancelled"] == 5
    # the two that were running made one attempt; the three never started made none
    assert sorted(j["trials"] for j in st["jobs"]) == [0, 0, 0, 1, 1, 1]


def test_timeout_fails_the_job_and_says_so(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["sleep", "60"]
        timeout = "1s"
    """)
    t0 = time.monotonic()
    code, _, _ = xq("run", str(spec))
    assert code == 1
    assert time.monotonic() - t0 < 30
    _, out, _ = xq("logs", str(spec), "0", "--stderr")
    assert "timed out after 1s" in out


def test_values_are_never_executed(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "v{index}"
        cmd = "echo {v} > out-{index}.txt"
        matrix = { v = ["$(touch pwned1)", "; touch pwned2", "`touch pwned3`", "a'b\\"c", "*"] }
        env = { VAL = "{v}" }
    """)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert not list(tmp_path.glob("pwned*"))
    outs = [(tmp_path / f"out-{i}.txt").read_text() for i in range(5)]
    assert outs == ["$(touch pwned1)\n", "; touch pwned2\n", "`touch pwned3`\n", "a'b\"c\n", "*\n"]


def test_forks_limit_jobs_in_flight(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    (tmp_path / "slots").mkdir()
    spec = write_spec("""
        forks = 3
        [[jobs]]
        cmd = "s=slots/$XQDECL_JOB_INDEX; touch $s; ls slots | wc -l >> seen; sleep 0.3; rm $s"
        matrix = { i = { range = [0, 12] } }
    """)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    seen = [int(x) for x in (tmp_path / "seen").read_text().split()]
    assert len(seen) == 12
    assert max(seen) <= 3
    assert max(seen) >= 2  # it did run jobs side by side


def test_no_seconds_of_sleep_per_job(xq: Xq, write_spec: Write) -> None:
    # a runner that sleeps ~2 s per local job (xqute) needs > 40 s here
    spec = write_spec("""
        forks = 2
        [[jobs]]
        cmd = ["true"]
        matrix = { i = { range = [0, 40] } }
    """)
    t0 = time.monotonic()
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert time.monotonic() - t0 < 20


def _start_run(spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xqdecl.cli", "run", str(spec)], text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def _wait_running(xq: Xq, spec: Path, n: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (spec.parent / ".xqdecl").exists():
            try:
                st = _status(xq, spec)
            except AssertionError:
                st = {}
            if st.get("counts", {}).get("running", 0) >= n:
                return st
        time.sleep(0.2)
    raise AssertionError("jobs never started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_cancels_live_jobs_and_exits_130(xq: Xq, write_spec: Write, sig: int) -> None:
    marker = f"sleep 7{sig}1.5"
    spec = write_spec(f"""
        forks = 2
        [[jobs]]
        cmd = "{marker}"
        matrix = {{ i = [1, 2, 3] }}
    """)
    proc = _start_run(spec)
    st = _wait_running(xq, spec, 2)
    assert st["live"] is True
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    time.sleep(0.3)
    assert pids_left(marker) == []
    counts = _status(xq, spec)["counts"]
    assert counts.get("cancelled") == 2 and counts.get("queued") == 1
    assert not _status(xq, spec)["live"]


def test_status_while_live_and_resume(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        forks = 2
        [[jobs]]
        name = "j{i}"
        cmd = "echo $XQDECL_JOB_INDEX >> ran.txt; sleep 5"
        matrix = { i = [1, 2, 3, 4] }
    """)
    proc = _start_run(spec)
    st = _wait_running(xq, spec, 1)
    assert st["live"] and sum(st["counts"].values()) == 4
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["0", "1", "2", "3"]
    # a rerun skips what succeeded with the same definition
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert len((tmp_path / "ran.txt").read_text().split()) == 4
    assert _status(xq, spec)["counts"] == {"skipped": 4}
    # a changed definition runs again; --fresh runs everything
    spec.write_text(spec.read_text().replace("sleep 5", "sleep 0"))
    code, _, _ = xq("run", str(spec))
    assert code == 0
    assert len((tmp_path / "ran.txt").read_text().split()) == 8
    code, _, _ = xq("run", str(spec), "--fresh")
    assert len((tmp_path / "ran.txt").read_text().split()) == 12


def test_second_runner_is_refused(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["sleep", "120"]
    """)
    proc = _start_run(spec)
    _wait_running(xq, spec, 1)
    code, _, err = xq("run", str(spec))
    assert code == 4
    assert "already being run by" in err and "pid" in err
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130


def test_kill_from_another_terminal(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["sleep", "61.25"]
        matrix = { i = [1, 2] }
    """)
    proc = _start_run(spec)
    _wait_running(xq, spec, 2)
    code, _, err = xq("kill", str(spec))
    assert code == 0, err
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert pids_left("sleep 61.25") == []
    assert _status(xq, spec)["counts"] == {"cancelled": 2}


def test_dry_run_renders_and_submits_nothing(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "d{x}"
        cmd = ["touch", "made-{x}"]
        matrix = { x = ["a", "b"] }
    """)
    code, _, err = xq("run", str(spec), "--dry-run")
    assert code == 0
    assert "nothing was submitted" in err
    jobs = tmp_path / ".xqdecl" / "spec" / "jobs"
    assert (jobs / "0" / "job.sh").read_text().count("exec -- touch made-a") == 1
    assert (jobs / "1" / "job.sh").exists()
    assert not list(tmp_path.glob("made-*"))
    assert not list(jobs.glob("*/stdout.*"))


def test_plan_validate_schema(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["echo", "{x}"]
        matrix = { x = { range = [0, 1000] } }
    """)
    code, _, err = xq("validate", str(spec))
    assert code == 0 and "1000 jobs" in err
    code, out, err = xq("plan", str(spec), "--output", "json")
    assert code == 0
    plan = json.loads(out)
    assert plan["jobs"] == 1000 and plan["groups"][0]["examples"][0].endswith("echo 0")
    code, out, _ = xq("schema")
    assert code == 0 and "jobs" in json.loads(out)["properties"]


def test_invalid_spec_exits_3_with_position(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        forks = "many"
        [[jobs]]
        cmd = ["true"]
    """)
    for command in ("run", "validate", "plan"):
        code, _, err = xq(command, str(spec))
        assert code == 3
        assert "spec.toml:1:" in err and "forks" in err
        assert "Traceback" not in err


def test_unknown_job_and_missing_spec(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["true"]
    """)
    assert xq("run", str(spec))[0] == 0
    code, _, err = xq("logs", str(spec), "nope")
    assert code == 2 and "no job" in err
    code, _, err = xq("run", str(spec.parent / "missing.toml"))
    assert code == 3 and "Traceback" not in err
    code, _, _ = xq("frobnicate")
    assert code == 2


def test_fresh_and_lost_journal_never_reuse_old_files(xq: Xq, write_spec: Write,
                                                     tmp_path: Path) -> None:
    """A new run's first attempt is trial 0; earlier attempts go under history/, kept."""
    spec = write_spec("""
        [[jobs]]
        cmd = "echo run $XQDECL_TRIAL; [ -e ok ]"
    """)
    assert xq("run", str(spec))[0] == 1
    (tmp_path / "ok").write_text("")
    code, _, err = xq("run", str(spec), "--fresh")
    assert code == 0, err
    rundir = tmp_path / ".xqdecl" / "spec"
    meta = rundir / "jobs" / "0"
    assert (meta / "rc.0").read_text().startswith("0\n")  # this run's attempt 0
    assert (meta / "stdout.0").read_text() == "run 0\n"
    kept = list(rundir.glob("history/*/0/rc.0"))  # the first run's outcome, kept aside
    assert len(kept) == 1 and kept[0].read_text().startswith("1\n")
    assert _status(xq, spec)["jobs"][0]["trials"] == 1
    # the journal is lost: its files say the job succeeded, so it is not run again
    (tmp_path / "ok").unlink()
    for f in rundir.glob("journal.db*"):
        f.unlink()
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert not (meta / "rc.1").exists()
    # lost again, and the definition changed: it runs again from trial 0, nothing overwritten
    for f in rundir.glob("journal.db*"):
        f.unlink()
    spec.write_text(spec.read_text().replace("echo run", "echo run again"))
    code, _, _ = xq("run", str(spec))
    assert code == 1
    assert (meta / "rc.0").read_text().startswith("1\n")
    assert sorted(p.read_text()[:2] for p in rundir.glob("history/*/0/rc.0")) == ["0\n", "1\n"]


def test_an_earlier_runs_unread_end_event_is_not_taken_for_the_new_attempt(
        xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    """A runner may end before it reads its last job's end event; the next run's
    attempt has the same `<index>.<trial>` tag and must not be taken as ended by it."""
    spec = write_spec("""
        [[jobs]]
        cmd = "[ -e ok ] || exit 7; sleep 1"
    """)
    assert xq("run", str(spec))[0] == 1
    rundir = tmp_path / ".xqdecl" / "spec"
    # as if the runner had ended before the wrapper's events were read
    (rundir / "events" / "0.0.s").write_text("")
    (rundir / "events" / "0.0.e7").write_text("")
    (tmp_path / "ok").write_text("")
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert (rundir / "jobs" / "0" / "rc.0").read_text().startswith("0\n")
    assert not list((rundir / "events").glob("0.0.*"))


def test_second_interrupt_kills_without_waiting(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    # the job ignores TERM, so a clean cancel would wait the whole (long) grace
    marker = f"sleep 329.{os.getpid()}"
    spec = write_spec(f"""
        [[jobs]]
        cmd = "trap '' TERM; touch started; {marker}"
    """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xqdecl.cli", "run", str(spec)], text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "XQDECL_CANCEL_GRACE": "120"},
    )
    wait_for_file(tmp_path / "started", 60)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None  # still waiting for the clean cancel
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 30
    assert "again" in err
    time.sleep(0.3)
    assert pids_left(marker) == []
