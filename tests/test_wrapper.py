"""The wrapper script on its own: run with bash, no runner involved."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.waits import wait_for_file
from xqdecl.plan.wrapper import WrapperInput, command_line, render


def _make(tmp_path: Path, cmd: str | list[str], **kw: object) -> tuple[Path, Path]:
    meta = tmp_path / "jobs" / "0"
    ev = tmp_path / "events"
    meta.mkdir(parents=True)
    ev.mkdir()
    w = WrapperInput(index=0, name="j0", run="r", metadir=str(meta), events_dir=str(ev), cmd=cmd,
                     **kw)  # type: ignore[arg-type]
    script = meta / "job.sh"
    script.write_text(render(w))
    return script, meta


def _run(script: Path, trial: int = 0, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), str(trial)], capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


HOSTILE = ["a b", "it's", 'say "hi"', "$HOME", "`id`", "$(id)", "*", "a;rm -rf /tmp/nope", "\\n",
           "", "-n", "{x}", "line1\nline2", "tab\there"]


def test_argv_is_passed_exactly(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["printf", "%s\\n", *HOSTILE])
    proc = _run(script)
    assert proc.returncode == 0
    assert (meta / "stdout.0").read_text() == "".join(f"{v}\n" for v in HOSTILE)
    assert (meta / "rc.0").read_text().splitlines()[0] == "0"
    assert (tmp_path / "events" / "0.0.s").exists()
    assert (tmp_path / "events" / "0.0.e0").exists()  # the end event carries the rc
    assert (meta / "start.0").read_text().split()[1].isdigit()


def test_glob_is_not_expanded(tmp_path: Path) -> None:
    (tmp_path / "x1").write_text("")
    script, meta = _make(tmp_path, ["echo", "*"], cwd=str(tmp_path))
    _run(script)
    assert (meta / "stdout.0").read_text() == "*\n"


def test_string_command_runs_in_bash(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, "echo one; echo two >&2; exit 3")
    proc = _run(script)
    assert proc.returncode == 3
    assert (meta / "stdout.0").read_text() == "one\n"
    assert (meta / "stderr.0").read_text() == "two\n"
    assert (meta / "rc.0").read_text().splitlines()[0] == "3"


def test_env_and_xqdecl_variables(tmp_path: Path) -> None:
    script, meta = _make(
        tmp_path,
        ["bash", "-c", 'echo "$A|$XQDECL_JOB_INDEX|$XQDECL_TRIAL|$XQDECL_JOB_NAME|$XQDECL_RUN"'],
        env={"A": "x $y `z`"},
    )
    _run(script, trial=2)
    assert (meta / "stdout.2").read_text() == "x $y `z`|0|2|j0|r\n"
    assert not (meta / "stdout.0").exists()


def test_sigterm_is_a_failure_and_named(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["sleep", "30"])
    proc = subprocess.Popen(["bash", str(script), "0"], start_new_session=True)
    wait_for_file(meta / "start.0", 5)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) != 0
    rc = int((meta / "rc.0").read_text().splitlines()[0])
    assert rc == 143
    assert "SIGTERM" in (meta / "stderr.0").read_text()


def test_command_killed_by_signal_is_named(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["bash", "-c", "kill -KILL $$"])
    proc = _run(script)
    assert proc.returncode == 137
    assert "SIGKILL" in (meta / "stderr.0").read_text()


def test_timeout_term_then_recorded(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["sleep", "30"], timeout=0.5)
    t0 = time.monotonic()
    proc = _run(script)
    assert time.monotonic() - t0 < 10
    assert proc.returncode != 0
    assert "timed out after 0.5s" in (meta / "stderr.0").read_text()
    assert int((meta / "rc.0").read_text().splitlines()[0]) != 0


def test_timeout_kills_a_command_ignoring_term(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("xqdecl.plan.wrapper.KILL_GRACE", 1)
    script, meta = _make(tmp_path, ["bash", "-c", "trap '' TERM; sleep 30"], timeout=0.3)
    t0 = time.monotonic()
    _run(script)
    assert time.monotonic() - t0 < 15
    assert int((meta / "rc.0").read_text().splitlines()[0]) != 0


def test_no_sleep_on_the_normal_path(tmp_path: Path) -> None:
    script, _ = _make(tmp_path, ["true"], timeout=100)
    text = script.read_text()
    # the only sleeps are the timeout watchdog and the kill grace, never on the way through
    t0 = time.monotonic()
    _run(script)
    assert time.monotonic() - t0 < 1.5
    assert "eval" not in text
    # the timeout and the kill grace use no external sleep
    assert not [w for w in text.replace(";", " ").split() if w.endswith("sleep")]


def test_prescript_and_postscript(tmp_path: Path) -> None:
    script, meta = _make(
        tmp_path, ["bash", "-c", 'echo "cmd $PRE"; exit 4'],
        prescript="export PRE=set; echo pre", postscript='echo "post rc=$XQDECL_JOB_RC"',
    )
    proc = _run(script)
    assert proc.returncode == 4
    assert (meta / "stdout.0").read_text() == "pre\ncmd set\npost rc=4\n"


def test_failing_prescript_fails_the_job(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["echo", "never"], prescript="false")
    proc = _run(script)
    assert proc.returncode == 1
    assert "never" not in (meta / "stdout.0").read_text()
    assert "prescript failed" in (meta / "stderr.0").read_text()


def test_bad_cwd_is_recorded(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["true"], cwd=str(tmp_path / "missing"))
    proc = _run(script)
    assert proc.returncode == 1
    assert (meta / "rc.0").read_text().splitlines()[0] == "1"
    assert "working directory" in (meta / "stderr.0").read_text()


def test_missing_command_is_127(tmp_path: Path) -> None:
    script, meta = _make(tmp_path, ["no-such-command-xq"])
    proc = _run(script)
    assert proc.returncode == 127
    assert (meta / "rc.0").read_text().splitlines()[0] == "127"


def test_chatty_job_does_not_block(tmp_path: Path) -> None:
    # 20 MB on each stream: a pipe nobody reads would block after 64 KB
    script, meta = _make(tmp_path, "head -c 20000000 /dev/zero; head -c 20000000 /dev/zero >&2")
    proc = _run(script, timeout=60)
    assert proc.returncode == 0
    assert (meta / "stdout.0").stat().st_size == 20_000_000
    assert (meta / "stderr.0").stat().st_size == 20_000_000


def test_rewriting_the_wrapper_by_rename_does_not_disturb_a_running_job(tmp_path: Path) -> None:
    from xqdecl.plan import write_wrapper

    script, meta = _make(tmp_path, "sleep 1; echo first-version")
    proc = subprocess.Popen(["bash", str(script), "0"], start_new_session=True)
    wait_for_file(meta / "start.0", 10)  # bash is running the script once it is there
    changed = script.read_text().replace("first-version", "SECOND") + "echo junk\n" * 50
    write_wrapper(script, changed)
    assert proc.wait(timeout=20) == 0
    assert (meta / "stdout.0").read_text() == "first-version\n"


def test_command_line_forms() -> None:
    assert command_line(["a b", "c"]) == "exec -- 'a b' c"
    assert command_line("echo $x") == "exec bash -c 'echo $x'"
