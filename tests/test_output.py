"""The output layer: live progress, the final summary, quiet and json modes."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from xqdecl.cli.output import CliReporter, Output, QuietReporter, Rate, counts_line, summary
from xqdecl.engine import RunResult
from xqdecl.errors import ExitCode
from xqdecl.store.journal import JobRow, Journal
from xqdecl.store.layout import RunDir


def _consoles(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=120, highlight=False), buf


def make_run(root: Path, groups: list[list[str]], *, trials: dict[int, int] | None = None,
             stderr: dict[int, str] | None = None) -> RunDir:
    """A run directory with a journal: `groups[g]` lists the statuses of its jobs."""
    rd = RunDir(root)
    rd.create()
    rows, idx, t = [], 0, time.time() - 100
    for g, statuses in enumerate(groups):
        for status in statuses:
            trial = (trials or {}).get(idx, 0)
            done = status in ("succeeded", "failed", "cancelled")
            rows.append(JobRow(idx, f"g{g}-job{idx}", g, "h", status, trial=trial,
                               rc=(0 if status == "succeeded" else 2) if done else None,
                               started=t + idx if status != "queued" else None,
                               ended=t + idx + 1.5 if done else None))
            idx += 1
    for i, text in (stderr or {}).items():
        rd.metadir(i).mkdir(parents=True, exist_ok=True)
        rd.file(i, "stderr", rows[i].trial).write_text(text)
    j = Journal(rd.journal)
    j.replace_all(rows)
    j.set_meta(run=root.name, total=len(rows), started=t, ended=t + 100, exit_code=1)
    j.close()
    return rd


def test_counts_line() -> None:
    line = counts_line({"succeeded": 3, "failed": 1, "running": 2, "queued": 4}, 10)
    assert line.startswith("4/10 done | ")
    assert "running 2" in line and "failed 1" in line


def test_rate_over_a_window() -> None:
    r = Rate(window=10)
    assert r.add(0.0, 0) is None
    assert r.add(2.0, 20) == pytest.approx(10.0)
    for t in range(3, 21):
        rate = r.add(float(t), 10 * t)
    assert rate == pytest.approx(10.0)
    for t in range(21, 41):  # twice as fast: older samples leave the window
        rate = r.add(float(t), 200 + 20 * (t - 20))
    assert rate == pytest.approx(20.0)
    assert len(r.samples) <= 12


def test_plain_lines_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    err, _ = _consoles(False)
    rep = CliReporter(Output("cli", err=err), tty=False, plain_every=10.0)
    rep.start("demo", 100, {"queued": 100})
    for _ in range(1000):  # a fast run calls progress every cycle: nothing is printed
        rep.progress({"queued": 50, "succeeded": 50})
    assert capsys.readouterr().err == ""
    rep.next = 0.0  # the 10 s are up
    rep.progress({"queued": 40, "running": 10, "succeeded": 45, "failed": 5})
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    assert "50/100 done" in line and "failed 5" in line and "jobs/s" in line and "ETA" in line


def test_progress_is_cheap_between_redraws(capsys: pytest.CaptureFixture[str]) -> None:
    err, buf = _consoles(True)
    rep = CliReporter(Output("cli", err=err), tty=True, refresh=3600)
    rep.start("demo", 10, {"queued": 10})
    counts = {"queued": 5, "running": 5}
    t = time.perf_counter()
    for _ in range(200_000):
        rep.progress(counts)
    spent = time.perf_counter() - t
    size = len(buf.getvalue())
    rep.finish(RunResult("demo", "/nonexistent", ExitCode.OK, {"succeeded": 10}))
    # one clock read per call: far below a microsecond each; the bound is loose
    assert spent < 5.0
    assert size > 0 and "queued 10" in buf.getvalue()


def test_live_display_per_group(tmp_path: Path) -> None:
    err, buf = _consoles(True)
    rep = CliReporter(Output("cli", err=err), tty=True, refresh=0.25)
    counts = {"queued": 30}
    groups = [{"queued": 10}, {"queued": 20}]
    rep.start("demo", 30, counts)
    rep.start_groups(["align-{s}", "sweep-{seed}"], [10, 20], groups)
    groups[0].update(queued=0, succeeded=8, failed=2)
    groups[1].update(queued=15, running=5)
    rep.next = 0.0
    rep.progress({"queued": 15, "running": 5, "succeeded": 8, "failed": 2})
    rep.message("warning: something")
    text = buf.getvalue()
    assert "#0 align-{s}" in text and "#1 sweep-{seed}" in text
    assert "10/10" in text and "0/20" in text and "running 5" in text
    assert "warning: something" in text
    rd = make_run(tmp_path / "demo", [["succeeded"] * 8 + ["failed"] * 2, ["queued"] * 20])
    rep.finish(RunResult("demo", str(rd.root), ExitCode.JOBS_FAILED, {}, elapsed=3.0))
    assert "exit 1" in buf.getvalue()


def test_quiet_reporter_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    for mode in ("quiet", "json"):
        out = Output(mode)
        rep = out.reporter()
        assert isinstance(rep, QuietReporter)
        rep.start("demo", 3, {"queued": 3})
        rep.progress({"succeeded": 3})
        rep.finish(RunResult("demo", "/nonexistent", ExitCode.OK, {"succeeded": 3}))
        out.info("hidden")
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


def test_summary_per_group_with_failures(tmp_path: Path) -> None:
    rd = make_run(
        tmp_path / "demo",
        [["succeeded", "succeeded", "failed"], ["succeeded", "skipped", "failed", "failed"]],
        trials={0: 2, 2: 1},
        stderr={2: "starting\nTraceback\nValueError: bad row 17\n", 5: "oops\n"},
    )
    err, buf = _consoles(False)
    result = RunResult("demo", str(rd.root), ExitCode.JOBS_FAILED, {}, elapsed=12.5,
                       retried=3)
    summary(Output("cli", err=err), result, group_names=["first-{n}", "second-{n}"])
    text = buf.getvalue()
    assert "exit 1" in text and "12s" in text
    for needle in ("#0 first-{n}", "#1 second-{n}", "total", "retried"):
        assert needle in text
    first_row = next(line for line in text.splitlines() if "#0 first-{n}" in line)
    numbers = [w for w in first_row.split() if w.isdigit()]
    assert numbers == ["3", "2", "1", "0", "2"]  # jobs, succeeded, failed, skipped, retried
    assert "ValueError: bad row 17" in text and "oops" in text
    assert "failed: job 2 g0-job2 (group 0) rc=2 trial 1" in text
    assert "xqdecl logs SPEC 2 --stderr" in text


def test_summary_without_a_journal(tmp_path: Path) -> None:
    err, buf = _consoles(False)
    result = RunResult("gone", str(tmp_path / "missing"), ExitCode.BACKEND,
                       {"succeeded": 2, "cancelled": 1}, message="the scheduler kept failing")
    summary(Output("cli", err=err), result)
    text = buf.getvalue()
    assert "exit 4" in text and "the scheduler kept failing" in text
    assert "all" in text
