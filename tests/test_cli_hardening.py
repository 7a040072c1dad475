"""The command line under hostile conditions (issue 11): a runner that does not
answer `kill`, readers that close stdout/stderr mid-run, jobs whose output would
drive the terminal, and SIGINT/SIGTERM at any instant of the command's start."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.waits import pids_left, pids_with

Write = Callable[..., Path]

#: the console script itself (`xqdecl.cli:main`), not `python -m`: its first instants count
XQDECL = str(Path(sys.executable).with_name("xqdecl"))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "xqdecl.cli", *args]


def _status(spec: Path) -> dict:
    proc = subprocess.run(_cli("--output", "json", "status", str(spec)), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _wait_running(spec: Path, n: int, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 90
    while True:
        st = _status(spec)
        if st.get("live") and st["counts"].get("running", 0) >= n:
            return st
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, st
        time.sleep(0.3)


# -- 1. kill when the runner does not answer ------------------------------------------------
def test_kill_cancels_through_the_backend_when_the_runner_is_stopped(write_spec: Write) -> None:
    spec = write_spec("""
        name = "stuck"
        forks = 3
        [[jobs]]
        name = "long-{n}"
        cmd = ["sleep", "311.{n}"]
        matrix = { n = [1, 2, 3] }
    """)
    runner = subprocess.Popen(_cli("--output", "quiet", "run", str(spec)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_running(spec, 3, runner)
        assert len(pids_with("sleep 311.")) == 3
        runner.send_signal(signal.SIGSTOP)
        kill = subprocess.run(_cli("kill", str(spec), "--wait", "1"), capture_output=True,
                              text=True, timeout=90)
        assert kill.returncode == 0, kill.stderr
        assert "did not answer within 1 s" in kill.stderr
        assert "cancelled 3 live jobs" in kill.stderr
        assert pids_left("sleep 311.") == []
        st = _status(spec)
        assert st["counts"].get("cancelled") == 3, st["counts"]
        # resumed, the runner finds its jobs gone and ends as interrupted
        runner.send_signal(signal.SIGCONT)
        assert runner.wait(timeout=90) == 130
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGCONT)
            runner.kill()
        runner.communicate()


def test_kill_wait_must_be_a_number_of_seconds(write_spec: Write) -> None:
    spec = write_spec('[[jobs]]\nname = "a"\ncmd = "true"\n')
    proc = subprocess.run(_cli("kill", str(spec), "--wait", "soon"), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "not a number of seconds" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- 2. closed stdout / stderr ------------------------------------------------------------------
LONG_SPEC = """
    name = "{name}"
    forks = 1
    [[jobs]]
    name = "p-{{n}}"
    cmd = "sleep 4; echo done > out.$XQDECL_JOB_INDEX"
    matrix = {{ n = [0, 1, 2, 3] }}
"""


def _every_job_ran(spec: Path, n: int) -> None:
    st = _status(spec)
    assert st["counts"] == {"succeeded": n}, st["counts"]
    assert st["exit_code"] == 0
    for i in range(n):
        assert (spec.parent / f"out.{i}").read_text() == "done\n"


def test_closed_pipes_do_not_stop_the_run(tmp_path: Path) -> None:
    """A run long enough for the plain progress line (every 10 s) to be written
    after its readers went away; three runs side by side."""
    specs = {}
    for name in ("both", "head", "json"):
        (tmp_path / name).mkdir()
        text = LONG_SPEC.format(name=name)
        if name == "json":  # the JSON goes out at the end: no need to wait for progress
            text = text.replace("sleep 4", "sleep 0.2")
        specs[name] = tmp_path / name / "spec.toml"
        specs[name].write_text(text)
    # stdout and stderr are pipes whose reading ends close after the first bytes
    both = subprocess.Popen(_cli("run", str(specs["both"])), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # the shell's way: everything into `head -1`
    head = subprocess.Popen(
        ["bash", "-c", 'set -o pipefail; "$0" -m xqdecl.cli run "$1" 2>&1 | head -1; '
                       'echo "rc=${PIPESTATUS[0]}"', sys.executable, str(specs["head"])],
        stdout=subprocess.PIPE, text=True)
    js = subprocess.Popen(_cli("--output", "json", "run", str(specs["json"])),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert js.stdout is not None
    js.stdout.close()
    assert both.stderr is not None and both.stdout is not None
    assert both.stderr.read(10)  # the run has started talking
    both.stderr.close()
    both.stdout.close()
    assert both.wait(timeout=110) == 0
    out, _ = head.communicate(timeout=110)
    assert out.splitlines()[0].startswith("run head: 4 jobs")
    assert out.splitlines()[-1] == "rc=0"
    assert js.wait(timeout=110) == 0
    for name in ("both", "head", "json"):
        _every_job_ran(specs[name], 4)


def test_logs_into_a_closed_pipe_is_quiet(write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "big"
        cmd = "yes x | head -c 3000000"
    """)
    assert subprocess.run(_cli("run", str(spec)), capture_output=True, timeout=120).returncode == 0
    proc = subprocess.run(["bash", "-c", '"$0" -m xqdecl.cli logs "$1" big | head -c 10; '
                           'echo " rc=${PIPESTATUS[0]}"', sys.executable, str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout == "x\nx\nx\nx\nx\n rc=0\n"
    assert proc.stderr == ""


# -- 3. job output on a terminal ----------------------------------------------------------------
#: what a hostile job prints: a window title, a bell, a screen clear, a NUL, a lone CR
HOSTILE = b"A\x1b]0;owned\x07B\x1b[2JC\x00D\rE\n"
SHOWN = b"A\\x1b]0;owned\\x07B\\x1b[2JC\\x00D\\rE"
#: in the stderr tails of `run` and `status` (their lines are split at the CR too)
TAIL = SHOWN.split(b"\\r")[0]


def _in_pty(args: list[str], cwd: Path | None = None) -> tuple[int, bytes]:
    """Run `args` with a pseudo-terminal as stdin, stdout and stderr: (exit code, bytes shown)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True)
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer is gone
                break
            if not data:
                break
            shown += data
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), bytes(shown)


def _no_job_controls(shown: bytes) -> None:
    for raw in (b"\x1b]0;owned", b"\x07", b"\x1b[2J", b"\x00", b"D\rE"):
        assert raw not in shown, (raw, shown[-2000:])


@pytest.fixture
def hostile_run(write_spec: Write, tmp_path: Path) -> Path:
    (tmp_path / "hostile.bin").write_bytes(HOSTILE)
    spec = write_spec("""
        name = "hostile"
        [[jobs]]
        name = "h"
        cmd = "cat hostile.bin; cat hostile.bin >&2; exit 3"
    """)
    code, shown = _in_pty(_cli("run", str(spec)))
    assert code == 1, shown
    _no_job_controls(shown)
    assert TAIL in shown  # the stderr tail, spelled out
    return spec


def test_job_output_is_shown_safely_on_a_terminal(hostile_run: Path) -> None:
    spec = str(hostile_run)
    code, shown = _in_pty(_cli("status", spec))
    assert code == 0
    _no_job_controls(shown)
    assert TAIL in shown
    for stream in ([], ["--stderr"]):
        code, shown = _in_pty(_cli("logs", spec, "0", *stream))
        assert code == 0
        _no_job_controls(shown)
        assert SHOWN in shown
    code, shown = _in_pty(_cli("logs", spec, "0", "--raw"))
    assert code == 0 and HOSTILE[:-1] in shown


def test_logs_into_a_pipe_are_byte_exact(hostile_run: Path) -> None:
    rundir = hostile_run.parent / ".xqdecl" / "hostile" / "jobs" / "0"
    for stream, name in (([], "stdout.0"), (["--stderr"], "stderr.0")):
        proc = subprocess.run(_cli("logs", str(hostile_run), "0", *stream),
                              capture_output=True, timeout=60)
        expected = (rundir / name).read_bytes()
        if stream:
            notes = rundir / "notes.0"
            expected += notes.read_bytes() if notes.exists() else b""
        assert proc.returncode == 0
        assert proc.stdout == expected
        assert HOSTILE in proc.stdout
    js = subprocess.run(_cli("--output", "json", "logs", str(hostile_run), "0"),
                        capture_output=True, timeout=60)
    assert json.loads(js.stdout)["text"] == HOSTILE.decode()


# -- 4. SIGINT / SIGTERM at any instant of the start --------------------------------------------
def _catches(pid: int, sig: int) -> bool:
    """Whether process `pid` has a handler for `sig` (SigCgt in /proc/PID/status)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in text.splitlines()
                if line.startswith("SigCgt:"))
    return bool(mask >> (sig - 1) & 1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_any_instant_ends_with_130_and_one_line(write_spec: Write, tmp_path: Path,
                                                            sig: int) -> None:
    """From the instant xqdecl's own code runs (its handler for SIGTERM is in place,
    which must come before any heavy import and long before the run starts) to
    well into the run: always 130, never a traceback. (Before that instant the
    interpreter itself is starting and Python's defaults apply.)"""
    for i, delay in enumerate([0, 0, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5,
                               0.8, 1.5]):
        spec = write_spec(f"""
            name = "sig{i}"
            [[jobs]]
            name = "s-{{n}}"
            cmd = ["sleep", "61.7"]
            matrix = {{ n = [1, 2, 3] }}
        """, name=f"sig{i}.toml")
        proc = subprocess.Popen([XQDECL, "run", str(spec)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            while not _catches(proc.pid, signal.SIGTERM):
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.0005)
            # the handlers come first: the run has not begun
            assert not (tmp_path / ".xqdecl" / f"sig{i}" / "journal.db").exists()
            time.sleep(delay)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, (delay, proc.returncode, err)
        assert "Traceback" not in err and "Exception ignored" not in err, (delay, err)
        assert "interrupted" in err or "received" in err, (delay, err)
    assert pids_left("sleep 61.7") == []


# -- the pieces, in this process -----------------------------------------------------------------
def test_visible_spells_out_controls_but_newline_tab_and_crlf() -> None:
    from xqdecl.cli.streams import VisibleDecoder, visible

    assert visible("a\tb\nc\r\nd") == "a\tb\nc\r\nd"
    assert visible("\x1b[2J\x07\x00\rx\x7f\x9b") == "\\x1b[2J\\x07\\x00\\rx\\x7f\\x9b"
    dec = VisibleDecoder()  # chunks cut inside a CRLF and inside a UTF-8 character
    parts = [dec.feed(b"a\r"), dec.feed(b"\nb\r"), dec.feed(b"c\xe2\x82"),
             dec.feed(b"\xac\xff\x1b"), dec.feed(b"", final=True)]
    assert "".join(parts) == "a\r\nb\\rc€\\xff\\x1b"


def test_a_stream_whose_reader_left_never_raises() -> None:
    from xqdecl.cli.streams import SafeStream, write_bytes

    r, w = os.pipe()
    os.close(r)
    stream = SafeStream(os.fdopen(w, "w", buffering=1))
    stream.write("one line\n")  # EPIPE: swallowed, and the fd now goes to /dev/null
    stream.flush()
    assert stream.broken and not stream.isatty()
    stream.write("more\n" * 10000)
    stream.flush()
    assert os.readlink(f"/proc/self/fd/{stream.fileno()}") == os.devnull
    stream.stream.close()  # what was left in its buffer goes to /dev/null
    r2, w2 = os.pipe()
    os.close(r2)
    assert write_bytes(w2, b"x" * 100000) is False
    assert write_bytes(w2, b"y") is True  # pointed at /dev/null by then
    os.close(w2)
    assert SafeStream(None).write("nowhere") == len("nowhere")


def test_kill_says_so_and_exits_4_when_the_backend_cannot_cancel(write_spec: Write,
                                                                 tmp_path: Path) -> None:
    """A runner on another host holds the run and does not answer; scancel fails."""
    from xqdecl.spec import load_spec
    from xqdecl.store.journal import JobRow, Journal
    from xqdecl.store.layout import RunDir, locate

    scancel = tmp_path / "scancel"
    scancel.write_text("#!/bin/sh\necho 'scancel: error: the controller is down' >&2\nexit 1\n")
    scancel.chmod(0o755)
    spec = write_spec(f"""
        name = "far"
        [scheduler]
        type = "slurm"
        scancel = "{scancel}"
        [[jobs]]
        name = "a"
        cmd = "true"
    """)
    rd = RunDir(locate(load_spec(spec)).local)
    rd.root.mkdir(parents=True)
    journal = Journal(rd.journal)
    journal.replace_all([JobRow(0, "a", 0, "h", "running", jid="4242")])
    journal.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'elsewhere 77\\n')\n"
         "print('held', flush=True); time.sleep(120)", str(rd.lock)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        kill = subprocess.run(_cli("kill", str(spec), "--wait", "0.5"), capture_output=True,
                              text=True, timeout=90)
    finally:
        holder.kill()
        holder.communicate()
    assert kill.returncode == 4, kill.stderr
    assert "(elsewhere pid 77) did not answer" in kill.stderr
    assert "could not cancel its live jobs" in kill.stderr and "controller is down" in kill.stderr
    assert "Traceback" not in kill.stderr
