"""The wrapper's own machinery against a hostile job environment and signal races.

The job's env, init snippets, prescript and the runner's environment belong to
the user; none of them may keep the wrapper from recording an rc and its event.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.waits import wait_for_file
from xqdecl.plan.wrapper import WrapperInput, render


def _make(tmp_path: Path, cmd: str | list[str], index: int = 0, **kw: object) -> Path:
    meta = tmp_path / "jobs" / str(index)
    ev = tmp_path / "events"
    meta.mkdir(parents=True, exist_ok=True)
    ev.mkdir(exist_ok=True)
    w = WrapperInput(index=index, name=f"j{index}", run="r", metadir=str(meta),
                     events_dir=str(ev), cmd=cmd, **kw)  # type: ignore[arg-type]
    script = meta / "job.sh"
    script.write_text(render(w))
    return script


def _start(script: Path, env: dict[str, str] | None = None,
           leader: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["bash", str(script), "0"], start_new_session=leader,
                            env=None if env is None else {**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run(script: Path, env: dict[str, str] | None = None, limit: float = 30) -> int:
    return _start(script, env).wait(timeout=limit)


def _rc(tmp_path: Path, index: int = 0) -> int:
    return int((tmp_path / "jobs" / str(index) / "rc.0").read_text().splitlines()[0])


def _stderr(tmp_path: Path, index: int = 0) -> str:
    return (tmp_path / "jobs" / str(index) / "stderr.0").read_text()


def _events(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "events").iterdir()}


# --- the user's PATH -------------------------------------------------------------------


@pytest.mark.parametrize(("cmd", "rc"), [(["/bin/true"], 0), (["/bin/false"], 1),
                                         (["/bin/sh", "-c", "exit 5"], 5)])
def test_empty_path_in_env_still_records_the_rc(tmp_path: Path, cmd: list[str], rc: int) -> None:
    script = _make(tmp_path, cmd, env={"PATH": ""}, timeout=60)
    assert _run(script) == rc
    assert _rc(tmp_path) == rc
    assert _events(tmp_path) == {"0.0.s", f"0.0.e{rc}"}


def test_the_command_sees_exactly_the_users_path(tmp_path: Path) -> None:
    script = _make(tmp_path, ["/bin/sh", "-c", 'printf "[%s]" "$PATH"'],
                   env={"PATH": "/nowhere:/also/not"})
    assert _run(script) == 0
    assert (tmp_path / "jobs" / "0" / "stdout.0").read_text() == "[/nowhere:/also/not]"


def test_empty_path_timeout_still_kills_and_records(tmp_path: Path) -> None:
    script = _make(tmp_path, ["/bin/sleep", "30"], env={"PATH": ""}, timeout=0.3)
    t0 = time.monotonic()
    assert _run(script) in (143, 137)
    assert time.monotonic() - t0 < 15
    assert _rc(tmp_path) in (143, 137)
    assert "timed out after 0.3s" in _stderr(tmp_path)


def test_empty_path_timeout_kill_grace_still_kills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("xqdecl.plan.wrapper.KILL_GRACE", 1)
    script = _make(tmp_path, ["/bin/bash", "-c", "trap '' TERM; /bin/sleep 30 & wait"],
                   env={"PATH": ""}, timeout=0.3)
    t0 = time.monotonic()
    assert _run(script) == 137
    assert time.monotonic() - t0 < 15
    assert _rc(tmp_path) == 137


def test_init_snippet_and_end_snippet_changing_path(tmp_path: Path) -> None:
    script = _make(tmp_path, ["/bin/sh", "-c", "exit 3"], init_snippets=["PATH=/nowhere"],
                   end_snippets=["PATH="], timeout=30)
    assert _run(script) == 3
    assert _rc(tmp_path) == 3
    assert "0.0.e3" in _events(tmp_path)


def test_prescript_emptying_path_leaves_the_wrapper_alone(tmp_path: Path) -> None:
    script = _make(tmp_path, ["/bin/true"], prescript="PATH=", timeout=30)
    assert _run(script) == 0
    assert "0.0.e0" in _events(tmp_path)


# --- signal races ----------------------------------------------------------------------

PARALLEL = 40


def _many_timeouts(tmp_path: Path, cmd: list[str], leader: bool = True) -> list[int]:
    scripts = [_make(tmp_path, cmd, index=i, timeout=0.2) for i in range(PARALLEL)]
    procs = [_start(s, leader=leader) for s in scripts]
    return [p.wait(timeout=60) for p in procs]


@pytest.mark.parametrize("leader", [True, False], ids=["group-leader", "not-leader"])
def test_timeout_rc_never_carries_the_watchdog_signal(tmp_path: Path, leader: bool) -> None:
    # `sleep` dies at once on TERM: the wrapper's wait is cut short by the USR1
    # trap while the child is already gone, which used to leave 128+USR1 as rc
    codes = _many_timeouts(tmp_path, ["sleep", "30"], leader)
    recorded = [_rc(tmp_path, i) for i in range(PARALLEL)]
    assert sorted(set(recorded)) == [143], recorded
    assert codes == recorded
    for i in range(PARALLEL):
        assert "timed out after 0.2s" in _stderr(tmp_path, i)
        assert f"{i}.0.e143" in _events(tmp_path)


def test_a_signal_rc_is_the_childs_not_the_trapped_signal(tmp_path: Path) -> None:
    # INT, HUP and USR2 interrupt the wrapper's wait too; the rc must be the child's (TERM)
    sigs = [signal.SIGINT, signal.SIGHUP, signal.SIGUSR2]
    scripts = [_make(tmp_path, ["sleep", "30"], index=i) for i in range(PARALLEL)]
    procs = [_start(s) for s in scripts]
    for i in range(PARALLEL):
        assert wait_for_file(tmp_path / "jobs" / str(i) / "start.0", 20)
    time.sleep(0.3)  # the children are started (the start file comes first)
    for i, proc in enumerate(procs):
        os.kill(proc.pid, sigs[i % 3])
    codes = [p.wait(timeout=60) for p in procs]
    assert sorted(set(codes)) == [143], codes
    assert [_rc(tmp_path, i) for i in range(PARALLEL)] == codes


def test_a_cancel_of_the_whole_group_records_term(tmp_path: Path) -> None:
    # the wrapper and the command get TERM at once (scancel, local cancel): bash may
    # lose the command's status then; the rc is still the TERM's, never garbage
    scripts = [_make(tmp_path, ["sleep", "30"], index=i) for i in range(PARALLEL)]
    procs = [_start(s) for s in scripts]
    for i in range(PARALLEL):
        assert wait_for_file(tmp_path / "jobs" / str(i) / "start.0", 20)
    time.sleep(0.3)
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    codes = [p.wait(timeout=60) for p in procs]
    assert sorted(set(codes)) == [143], codes
    assert [_rc(tmp_path, i) for i in range(PARALLEL)] == codes


def test_nothing_is_left_behind_after_an_early_end(tmp_path: Path) -> None:
    from tests.waits import pids_left

    script = _make(tmp_path, ["true"], timeout=300)
    assert _run(script) == 0
    stop = _make(tmp_path, ["sleep", "30"], index=1, timeout=0.2)
    assert _run(stop) == 143
    # no watchdog or kill-grace helper outlives its wrapper
    assert pids_left(f"bash {script}", 5) == []
    assert pids_left(f"bash {stop}", 5) == []


# --- user code and environment in the wrapper's own shell -----------------------------


@pytest.mark.parametrize("snippet", [
    "set -euo pipefail",
    "set -C",
    "shopt -s expand_aliases; alias kill=false wait=false printf=false",
    "kill() { return 1; }; wait() { return 1; }; printf() { return 1; }; trap() { return 1; }"
    "; mv() { return 1; }; command() { return 1; }; read() { return 1; }; cd() { return 1; }",
    "IFS=0123456789",
    "export POSIXLY_CORRECT=1",
])
def test_init_snippets_cannot_break_the_machinery(tmp_path: Path, snippet: str) -> None:
    (tmp_path / "jobs" / "0").mkdir(parents=True)
    (tmp_path / "jobs" / "0" / "rc.0.tmp").write_text("stale\n")  # noclobber must not matter
    script = _make(tmp_path, ["sh", "-c", "exit 3"], index=0, init_snippets=[snippet],
                   end_snippets=["false"], postscript="false", timeout=30)
    assert _run(script) == 3
    assert _rc(tmp_path) == 3
    assert "0.0.e3" in _events(tmp_path)
    slow = _make(tmp_path, ["sleep", "30"], index=1, init_snippets=[snippet], timeout=0.2)
    assert _run(slow) == 143
    assert _rc(tmp_path, 1) == 143
    assert "timed out" in _stderr(tmp_path, 1)


def test_exported_functions_and_bash_env_cannot_break_the_machinery(tmp_path: Path) -> None:
    rcfile = tmp_path / "bashenv"
    rcfile.write_text("PATH=/nowhere\nsleep() { return 1; }\n")
    env = {f"BASH_FUNC_{n}%%": "() { return 1; }"
           for n in ("kill", "wait", "printf", "mv", "trap", "read", "command", "hash")}
    env["BASH_ENV"] = str(rcfile)
    env["HOSTNAME"] = "not-this-host"
    script = _make(tmp_path, ["/bin/sh", "-c", "exit 4"], timeout=30)
    assert _run(script, env) == 4
    assert _rc(tmp_path) == 4
    assert "0.0.e4" in _events(tmp_path)
    host = (tmp_path / "jobs" / "0" / "start.0").read_text().split()[0]
    assert host == os.uname().nodename  # the kernel's name, not an inherited HOSTNAME
    slow = _make(tmp_path, ["/bin/sleep", "30"], index=1, timeout=0.2)
    assert _run(slow, env) == 143
    assert "timed out" in _stderr(tmp_path, 1)


def test_user_env_with_ifs_and_locale_leaves_the_start_line_parsable(tmp_path: Path) -> None:
    script = _make(tmp_path, ["/bin/true"], env={"IFS": "0123456789.", "LC_ALL": "C.UTF-8",
                                                 "CDPATH": "/"}, cwd=str(tmp_path))
    assert _run(script) == 0
    _host, pid, epoch = (tmp_path / "jobs" / "0" / "start.0").read_text().split()
    assert pid.isdigit() and abs(float(epoch) - time.time()) < 60
    assert "0.0.e0" in _events(tmp_path)
