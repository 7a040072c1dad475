"""Faults: a runner killed at any instant, bad files, full or read-only disks,
huge outputs, stray children, a flaky scheduler, hostile values, bad specs."""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xqdecl
from tests.shared import tmpfs
from tests.waits import pids_left, pids_with, wait_for_file
from xqdecl.backends.local import LocalBackend
from xqdecl.errors import BackendError, ExitCode
from xqdecl.store import journal as J

Xq = Callable[..., tuple[int, str, str]]
Write = Callable[..., Path]


def _run_cli(spec: Path, *args: str, capture: bool = True) -> subprocess.Popen[str]:
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "xqdecl.cli", "--output", "quiet", "run", str(spec), *args],
        text=True, stdout=pipe, stderr=pipe, start_new_session=True,
    )


# -- the runner killed at random instants --------------------------------------------------
def test_sigkill_loop_runs_every_job_exactly_once(write_spec: Write, tmp_path: Path) -> None:
    rng = random.Random(20261124)
    spec = write_spec("""
        forks = 6
        [[jobs]]
        name = "k{i}"
        cmd = "i=$XQDECL_JOB_INDEX; echo $i >> started; sleep 0.$((RANDOM % 8)); echo $i >> ended"
        matrix = { i = { range = [0, 60] } }
    """)
    kills = 0
    for _ in range(12):
        proc = _run_cli(spec, capture=False)
        time.sleep(rng.uniform(0.05, 1.2))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    final = _run_cli(spec)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    started = Counter((tmp_path / "started").read_text().split())
    ended = Counter((tmp_path / "ended").read_text().split())
    assert kills >= 3
    assert set(ended) == {str(i) for i in range(60)}
    assert max(ended.values()) == 1, "a job ran to its end twice"
    assert max(started.values()) == 1, "a job was started twice"


# -- status files that are missing, empty, garbage ---------------------------------------------
@pytest.mark.parametrize("junk", ["", "garbage\n", "12", "\x00\xff\n", "0 but no newline"])
def test_foreign_junk_in_rc_file_is_not_an_outcome(write_spec: Write, tmp_path: Path,
                                                    junk: str) -> None:
    # the job scribbles junk where its rc goes, then ends with rc 3: only the real rc counts
    (tmp_path / "junk").write_bytes(junk.encode("latin-1"))
    spec = write_spec("""
        [[jobs]]
        cmd = "cat junk > $XQDECL_JOB_METADIR/rc.$XQDECL_TRIAL; sleep 1.5; exit 3"
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.counts == {J.FAILED: 1}
    assert result.failed[0].rc == 3


def test_garbage_event_files_are_ignored(write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = "cd $XQDECL_JOB_METADIR/../../events && touch x.y.z 99.0.e 0.7.e ../../n; sleep 1"
        matrix = { i = [1, 2] }
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.counts == {J.SUCCEEDED: 2}


# -- disks that are full or read-only -------------------------------------------------------------
def test_read_only_workdir_is_a_clear_error(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    with tmpfs(ro, "ro,size=1m"):
        spec = write_spec(f'workdir = "{ro}"\n[[jobs]]\ncmd = ["true"]\n')
        code, _, err = xq("run", str(spec))
    assert code == 4
    assert "Traceback" not in err
    assert "Read-only file system" in err or "read-only" in err.lower()


def test_full_disk_fails_clearly_and_keeps_the_journal(xq: Xq, write_spec: Write,
                                                       tmp_path: Path) -> None:
    small = tmp_path / "small"
    with tmpfs(small, "size=2m"):
        spec = write_spec(f"""
            workdir = "{small}"
            [[jobs]]
            name = "f{{i}}"
            cmd = ["true"]
            matrix = {{ i = [1, 2, 3] }}
        """)
        code, _, err = xq("run", str(spec))
        assert code == 0, err
        filler = small / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        spec.write_text(spec.read_text().replace('"true"', '"echo", "{i}"'))
        code, _, err = xq("run", str(spec))
        assert code == 4, err
        assert "Traceback" not in err
        assert "space" in err.lower() or "full" in err.lower()
        filler.unlink()
        code, out, _ = xq("status", str(spec), "--output", "json")
        assert code == 0
        assert sum(json.loads(out)["counts"].values()) == 3


# -- what jobs do to the runner ---------------------------------------------------------------
def test_gigabytes_of_output_do_not_reach_the_runner(write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = "head -c 1500000000 /dev/zero"
    """)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.ok
    out = tmp_path / ".xqdecl" / "spec" / "jobs" / "0" / "stdout.0"
    assert out.stat().st_size == 1_500_000_000
    out.unlink()
    assert (after - before) < 100_000  # KiB: the runner never read the output


def test_children_left_behind_are_cleaned_up(write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = "sleep 313.5 & echo started"
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.ok
    time.sleep(0.2)
    assert pids_left("sleep 313.5") == []


def test_cancel_reaches_every_child_of_a_job(write_spec: Write, tmp_path: Path) -> None:
    marker = f"sleep 317.{os.getpid()}"
    spec = write_spec(f"""
        [[jobs]]
        cmd = "{marker} & {marker} & touch forked; wait"
    """)
    proc = _run_cli(spec)
    wait_for_file(tmp_path / "forked", 10)
    assert len(pids_with(marker)) == 2
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    time.sleep(0.2)
    assert pids_left(marker) == []


def test_flaky_scheduler_queries_are_retried(write_spec: Write,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = LocalBackend.query

    async def flaky(self: LocalBackend, jids: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise BackendError("squeue: timed out (simulated)")
        return await original(self, jids)

    monkeypatch.setattr(LocalBackend, "query", flaky)
    messages: list[str] = []

    class Collect(xqdecl.Reporter):
        def message(self, text: str) -> None:
            messages.append(text)

    spec = write_spec("""
        [[jobs]]
        cmd = ["sleep", "2"]
        matrix = { i = [1, 2] }
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=Collect(), poll_interval=0.1)
    assert result.ok
    assert calls["n"] > 3
    assert len([m for m in messages if "timed out" in m]) == 1  # logged once, not per failure


def test_a_scheduler_that_keeps_failing_ends_the_run_with_4(
        write_spec: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: LocalBackend, jids: Any) -> Any:
        raise BackendError("controller unreachable (simulated)")

    monkeypatch.setattr(LocalBackend, "query", broken)
    monkeypatch.setattr("xqdecl.engine.submitter.MAX_BACKEND_FAILURES", 3)
    spec = write_spec("""
        [[jobs]]
        cmd = ["sleep", "30"]
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.exit_code == ExitCode.BACKEND
    assert "controller unreachable" in result.message
    assert result.counts == {J.CANCELLED: 1}


# -- hostile values everywhere -------------------------------------------------------------------
HOSTILE = ["$(touch PWNED_a)", "`touch PWNED_b`", "; touch PWNED_c", "' ; touch PWNED_d ; '",
           '" ; touch PWNED_e ; "', "$HOME", "a\nb", "*", "x > PWNED_f", "\\", "{x}",
           "x'\n$(touch PWNED_g)\n'", "#\n$(touch PWNED_h)"]


def test_hostile_values_are_never_executed(write_spec: Write, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # run from tmp_path: a value executed anywhere (even by the runner) lands here
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "work dir 'with' \"quotes\" $(touch PWNED_w)"
    params = tmp_path / "params.tsv"
    params.write_text("p\n" + "\n".join(v.replace("\n", " ") for v in HOSTILE) + "\n")
    spec = write_spec(f"""
        workdir = {json.dumps(str(workdir))}
        [[jobs]]
        prescript = "echo pre {{v}} >> pre.txt"
        name = "h{{index}}"  # a name must be one safe line: the values go everywhere else
        cmd = "printf '%s|' {{v}} >> out.txt; echo >> out.txt"
        matrix = {{ v = {json.dumps(HOSTILE)} }}
        env = {{ HOSTILE = "{{v}}" }}
        [[jobs]]
        name = "p{{index}}"
        cmd = ["bash", "-c", 'printf "%s|%s\\n" "$1" "$HOSTILE" >> argv.txt', "_", "{{p}}"]
        params_file = "params.tsv"
        env = {{ HOSTILE = "{{p}}" }}
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.ok, result
    assert not list(tmp_path.rglob("PWNED*"))
    lines = (tmp_path / "out.txt").read_text()
    for v in HOSTILE:
        assert v in lines
    argv = (tmp_path / "argv.txt").read_text().splitlines()
    assert sorted(argv) == sorted(f"{v}|{v}" for v in (h.replace("\n", " ") for h in HOSTILE))


# -- bad specs: random and mutated text ----------------------------------------------------------
SEED_SPEC = """name = "fz"
forks = 2
[env]
A = "1"
[[jobs]]
name = "j{i}"
cmd = ["echo", "{i}"]
matrix = { i = [1, 2] }
timeout = "1m"
"""


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_specs_never_crash_or_submit(tmp_path: Path, data: st.DataObject,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from xqdecl.cli import main

    text = SEED_SPEC
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["del", "ins", "dup"]))
        if op == "del":
            text = text[:pos] + text[pos + data.draw(st.integers(1, 12)):]
        elif op == "ins":
            text = text[:pos] + data.draw(st.text(alphabet='[]{}="\n #,.:-_x1{}', max_size=6)) + \
                text[pos:]
        else:
            text = text[:pos] + text[max(0, pos - 20):pos] + text[pos:]
    ext = data.draw(st.sampled_from(["toml", "yaml"]))
    path = tmp_path / f"m.{ext}"
    path.write_text(text)
    workdir = tmp_path / ".xqdecl"
    for argv in (["validate", str(path)], ["run", "--dry-run", str(path)]):
        code = main(["--output", "quiet", *argv])
        err = capsys.readouterr().err
        assert code in (ExitCode.OK, ExitCode.INVALID_SPEC), err
        assert "Traceback" not in err
        if code == ExitCode.INVALID_SPEC:
            assert re.search(r"m\.(toml|yaml)(:\d+:\d+)?:", err), err
    assert not list(workdir.glob("*/jobs/*/stdout.*"))  # nothing ever ran


def test_invalid_spec_submits_nothing(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = ["touch", "should-not-exist-{nope}"]
    """)
    code, _, err = xq("run", str(spec))
    assert code == 3 and "nope" in err
    assert not (tmp_path / ".xqdecl").exists()
    assert not list(tmp_path.glob("should-not-exist*"))


