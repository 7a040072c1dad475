"""Local jobs are contained: whatever a job started ends with it (issue 11).

Every test runs real jobs through the CLI, once with a cgroup per job (where
this machine lets us write a cgroup hierarchy) and once with the subreaper
fallback (XQDECL_CONTAIN=reaper). Each job writes the pids of the processes it
leaves behind to `pids`; the test then checks /proc until they are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.waits import wait_for_file
from xqdecl.backends.contain import CONTAIN_ENV, ROOT_ENV, CgroupJail, run_token

Write = Callable[..., Path]


V1_ROOT = "/sys/fs/cgroup/freezer/xqdecl"  # the v1 freezer hierarchy, where mounted


def _cgroups_writable(version: int) -> bool:
    jail = CgroupJail.find(f"probe.{os.getpid()}")
    if jail is None or jail.version != version:
        return False
    jail.close(0)
    return True


@pytest.fixture(params=["cgroup", "cgroup-v1", "reaper"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "reaper":
        monkeypatch.setenv(CONTAIN_ENV, "reaper")
    else:
        monkeypatch.setenv(CONTAIN_ENV, "auto")
        version = 2
        if request.param == "cgroup-v1":
            monkeypatch.setenv(ROOT_ENV, V1_ROOT)
            version = 1
        if not _cgroups_writable(version):
            pytest.skip(f"no writable cgroup v{version} hierarchy on this machine")
    yield request.param


Runner = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def runner() -> Iterator[Runner]:
    """Start `xqdecl run spec`; `capture`: keep its stderr (not for one the test kills).
    Runners still going when the test ends (it failed) are killed."""
    started: list[subprocess.Popen[str]] = []

    def start(spec: Path, capture: bool = True, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xqdecl.cli", "--output", "quiet", "run", str(spec)],
            text=True, stdout=subprocess.DEVNULL, start_new_session=True,
            stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _ticks(pid: int) -> str | None:
    """The start time of a live (not zombie) process; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == b"Z" else fields[19].decode()


def _left_pids(path: Path, count: int) -> dict[int, str]:
    """The job's leftovers as it wrote them to `path` (waits for `count` of them)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) >= count:
            break
        time.sleep(0.05)
    pids = [int(p) for p in path.read_text().split()]
    assert len(pids) == count
    alive = {pid: t for pid in pids if (t := _ticks(pid)) is not None}
    assert len(alive) == count, "the job's children should be running by now"
    return alive


def _still_there(procs: dict[int, str], limit: float = 10.0) -> list[int]:
    """The processes of `procs` still running after up to `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        left = [pid for pid, t in procs.items() if _ticks(pid) == t]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _reap_leftovers(procs: dict[int, str]) -> None:
    """Clean up after a failing test, so no stray sleeps outlive it."""
    for pid, t in procs.items():
        if _ticks(pid) == t:
            os.kill(pid, signal.SIGKILL)


def _no_cgroups_left(spec: Path, name: str) -> None:
    jail = CgroupJail.find(run_token(name, spec.parent / ".xqdecl" / name))
    if jail is not None:
        names = jail.names()
        jail.close(2.0)
        assert names == [], f"cgroups of ended jobs are left: {names}"


def test_background_child_ends_after_runner_sigkill_and_reattach(
        mode: str, write_spec: Write, tmp_path: Path, runner: Runner) -> None:
    spec = write_spec("""
        name = "bg"
        [[jobs]]
        cmd = "sleep 300 & echo $! >> pids; while [ ! -e go ]; do sleep 0.05; done"
    """)
    first = runner(spec, capture=False)
    procs = _left_pids(tmp_path / "pids", 1)
    try:
        first.send_signal(signal.SIGKILL)
        first.wait()
        rerun = runner(spec)
        time.sleep(1.5)  # the rerun re-attaches to the running job
        assert rerun.poll() is None, rerun.communicate()
        (tmp_path / "go").touch()
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err
        assert _still_there(procs) == []
        if mode != "reaper":
            _no_cgroups_left(spec, "bg")
    finally:
        _reap_leftovers(procs)


@pytest.mark.parametrize("wrapped", [False, True], ids=["direct", "wrapped"])
def test_term_ignoring_children_end_after_a_cancel_whose_runner_died(
        mode: str, wrapped: bool, write_spec: Write, tmp_path: Path, runner: Runner) -> None:
    # the command ignores TERM (so do its children), and the runner that cancelled it
    # is killed during the grace. After the grace the job is KILLed all the same (by
    # the executor, or by a wrapper, for a job with a prescript), and the executor
    # KILLs what the job left in its process group when it ends; the rerun's
    # containment would end anything that left the group. A rerun may run the
    # cancelled job again: that trial ends at once.
    cmd = ("test $XQDECL_TRIAL = 0 || exit 0; trap '' TERM; "
           "sleep 300 & echo $! >> pids; sleep 300 & echo $! >> pids; wait")
    prescript = 'prescript = "true"' if wrapped else ""
    spec = write_spec(f"""
        name = "term"
        [[jobs]]
        cmd = "{cmd}"
        {prescript}
    """)
    first = runner(spec, capture=False, XQDECL_CANCEL_GRACE="120")
    procs = _left_pids(tmp_path / "pids", 2)
    try:
        first.send_signal(signal.SIGTERM)  # a cancel: TERM, then the grace
        time.sleep(1.0)
        assert first.poll() is None, "the runner should be waiting out its grace"
        first.send_signal(signal.SIGKILL)
        first.wait()
        rc_file = tmp_path / ".xqdecl" / "term" / "jobs" / "0" / "rc.0"
        assert wait_for_file(rc_file, 30), "the job should end after the grace"
        assert _still_there(procs) == [], "the executor KILLs the job's whole group"
        rerun = runner(spec)  # finds the rc: the job ended, its leftovers must go
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode in (0, 1), err
        assert _still_there(procs) == []
        if mode != "reaper":
            _no_cgroups_left(spec, "term")
    finally:
        _reap_leftovers(procs)


def test_setsid_daemon_ends_with_its_job(mode: str, write_spec: Write, tmp_path: Path,
                                        runner: Runner) -> None:
    spec = write_spec("""
        name = "daemon"
        [[jobs]]
        cmd = "setsid sleep 300 & echo $! >> pids; sleep 0.5"
    """)
    run = runner(spec)
    procs = _left_pids(tmp_path / "pids", 1)
    try:
        pid = next(iter(procs))
        deadline = time.monotonic() + 10  # $! is known before the child has called setsid
        while os.getsid(pid) != pid and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.getsid(pid) == pid, "the daemon should lead a session of its own"
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert _still_there(procs) == []
        if mode != "reaper":
            _no_cgroups_left(spec, "daemon")
    finally:
        _reap_leftovers(procs)


def test_child_in_another_process_group_ends_at_the_timeout(
        mode: str, write_spec: Write, tmp_path: Path, runner: Runner) -> None:
    # `set -m`: each background job of the command gets a process group of its own
    spec = write_spec("""
        name = "pgrp"
        timeout = 1
        [[jobs]]
        cmd = "set -m; sleep 300 & echo $! >> pids; wait"
    """)
    run = runner(spec)
    procs = _left_pids(tmp_path / "pids", 1)
    try:
        pid = next(iter(procs))
        deadline = time.monotonic() + 10  # $! is known before the child has its own group
        while os.getpgid(pid) != pid and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.getpgid(pid) == pid, "the child should lead a process group of its own"
        _, err = run.communicate(timeout=60)
        assert run.returncode == 1, err
        rc = (tmp_path / ".xqdecl" / "pgrp" / "jobs" / "0" / "rc.0").read_text()
        assert "timed out" in rc
        assert _still_there(procs) == []
        if mode != "reaper":
            _no_cgroups_left(spec, "pgrp")
    finally:
        _reap_leftovers(procs)
