"""The store layer: a folder is used as a run directory only if xqdecl made it one,
and a lost or damaged journal is rebuilt from the job files instead of rerunning
(or losing) jobs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shared import tmpfs
from tests.waits import wait_for_file
from xqdecl.errors import ExitCode, StoreError
from xqdecl.store import journal as J
from xqdecl.store.layout import MARKER, RunDir, write_atomic
from xqdecl.store.lock import RunLock
from xqdecl.store.recover import open_journal

Xq = Callable[..., tuple[int, str, str]]
Write = Callable[..., Path]

SPEC = """
    [[jobs]]
    name = "j{i}"
    cmd = "echo $XQDECL_JOB_INDEX >> ran; [ {i} != 2 ] || [ -e ok ]"
    matrix = { i = [0, 1, 2] }
"""


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under root with its bytes (None for a folder)."""
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            found[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            found[os.path.relpath(p, root)] = Path(p).read_bytes()
    return found


def _trial_files(rundir: Path) -> set[str]:
    return {str(p.relative_to(rundir)) for p in (rundir / "jobs").glob("*/*")}


def _ran(tmp_path: Path) -> list[str]:
    f = tmp_path / "ran"
    return f.read_text().split() if f.exists() else []


# -- 1. a folder xqdecl did not make is never used --------------------------------------------
def test_a_user_folder_is_refused_and_left_untouched(xq: Xq, write_spec: Write,
                                                      tmp_path: Path) -> None:
    spec = write_spec(SPEC)
    user = tmp_path / ".xqdecl" / "spec"
    (user / "events").mkdir(parents=True)
    (user / "events" / "0.0.s").write_text("mine")  # what the poller would delete
    (user / "notes.txt").write_text("my notes\n")
    (user / "data").mkdir()
    (user / "data" / "x.csv").write_text("1,2\n")
    before = _tree(user)
    for args in (("run", str(spec)), ("run", str(spec), "--dry-run"),
                 ("run", str(spec), "--fresh")):
        code, _, err = xq(*args)
        assert code == ExitCode.BACKEND, err
        assert "Traceback" not in err
        assert str(user) in err and "not an xqdecl run directory" in err
    assert _tree(user) == before
    assert _ran(tmp_path) == []


def test_an_empty_folder_is_taken_and_marked(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec(SPEC.replace("[ {i} != 2 ] || [ -e ok ]", "true"))
    rundir = tmp_path / ".xqdecl" / "spec"
    rundir.mkdir(parents=True)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert (rundir / MARKER).read_text().splitlines()[1] == "spec"


def test_a_rundir_of_the_earlier_format_is_adopted(xq: Xq, write_spec: Write,
                                                   tmp_path: Path) -> None:
    spec = write_spec(SPEC.replace("[ {i} != 2 ] || [ -e ok ]", "true"))
    assert xq("run", str(spec))[0] == 0
    rundir = tmp_path / ".xqdecl" / "spec"
    (rundir / MARKER).unlink()  # as an xqdecl before the marker left it
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert (rundir / MARKER).exists()
    assert len(_ran(tmp_path)) == 3  # nothing ran again


def test_a_report_before_the_first_run_does_not_block_it(xq: Xq, write_spec: Write,
                                                         tmp_path: Path) -> None:
    spec = write_spec(SPEC.replace("[ {i} != 2 ] || [ -e ok ]", "true"))
    xq("report", str(spec))
    assert (tmp_path / ".xqdecl" / "spec" / "report.html").exists()
    code, _, err = xq("run", str(spec))
    assert code == 0, err


def test_status_logs_kill_claim_no_folder(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec(SPEC)
    user = tmp_path / ".xqdecl" / "spec"
    user.mkdir(parents=True)
    (user / "mine.txt").write_text("x")
    xq("status", str(spec))
    xq("logs", str(spec), "0")
    xq("kill", str(spec))
    assert sorted(os.listdir(user)) == ["mine.txt"]


# -- 2. a lost or damaged journal: the files on disk are the truth -------------------------------
def _delete(db: Path) -> None:
    for f in db.parent.glob("journal.db*"):
        f.unlink()


def _delete_keep_wal(db: Path) -> None:
    db.unlink()


def _empty(db: Path) -> None:
    db.write_bytes(b"")


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(3000))


def _halve(db: Path) -> None:
    with sqlite3.connect(db) as c:  # the WAL into the file first, so half is really lost
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [_delete, _delete_keep_wal, _empty, _garbage, _halve])
def test_damaged_journal_is_rebuilt_and_nothing_runs_twice(
        xq: Xq, write_spec: Write, tmp_path: Path, damage: Callable[[Path], None]) -> None:
    spec = write_spec(SPEC)
    (tmp_path / "ok").write_text("")
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    rundir = tmp_path / ".xqdecl" / "spec"
    files = _trial_files(rundir)
    damage(rundir / "journal.db")
    code, out, err = xq("run", str(spec))
    assert code == 0, err
    assert "rebuilt" in err and "3 succeeded before" in err
    assert _trial_files(rundir) == files, "a job ran again"
    assert len(_ran(tmp_path)) == 3
    if damage not in (_delete, _delete_keep_wal):
        assert list(rundir.glob("journal.db.corrupt-*")), "the bad journal was not kept"
    code, out, _ = xq("status", str(spec), "--output", "json")
    assert code == 0
    assert '"skipped": 3' in out


@pytest.mark.parametrize("damage", [_delete, _garbage])
def test_rebuild_reruns_exactly_the_failed_job(xq: Xq, write_spec: Write, tmp_path: Path,
                                               damage: Callable[[Path], None]) -> None:
    spec = write_spec(SPEC)
    assert xq("run", str(spec))[0] == 1
    rundir = tmp_path / ".xqdecl" / "spec"
    damage(rundir / "journal.db")
    (tmp_path / "ok").write_text("")
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert sorted(_ran(tmp_path)) == ["0", "1", "2", "2"]
    # job 2 ran again from trial 0; its earlier attempt was moved under history/
    assert (rundir / "jobs" / "2" / "rc.0").read_text().startswith("0\n")
    [kept] = rundir.glob("history/*/2/rc.0")
    assert kept.read_text().startswith("1\n")
    assert not list(rundir.glob("history/*/0")) and not (rundir / "jobs" / "0" / "rc.1").exists()


def test_rebuild_compares_with_the_old_wrapper(xq: Xq, write_spec: Write,
                                               tmp_path: Path) -> None:
    # the definition changed while the journal was lost: every job runs again
    spec = write_spec(SPEC)
    (tmp_path / "ok").write_text("")
    assert xq("run", str(spec))[0] == 0
    rundir = tmp_path / ".xqdecl" / "spec"
    _delete(rundir / "journal.db")
    spec.write_text(spec.read_text().replace(">> ran;", ">> ran ;"))
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert len(_ran(tmp_path)) == 6
    for i in range(3):  # each ran again from trial 0; the first run's files are kept aside
        assert (rundir / "jobs" / str(i) / "rc.0").read_text().startswith("0\n")
        assert len(list(rundir.glob(f"history/*/{i}/rc.0"))) == 1


def test_fresh_over_a_garbage_journal(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec(SPEC)
    (tmp_path / "ok").write_text("")
    assert xq("run", str(spec))[0] == 0
    rundir = tmp_path / ".xqdecl" / "spec"
    _garbage(rundir / "journal.db")
    code, _, err = xq("run", str(spec), "--fresh")
    assert code == 0, err
    assert len(_ran(tmp_path)) == 6
    for i in range(3):  # trial 0 again each: the first run's files are kept aside
        meta = rundir / "jobs" / str(i)
        assert (meta / "rc.0").read_text().startswith("0\n")
        [kept] = rundir.glob(f"history/*/{i}/rc.0")
        assert kept.read_text().startswith("0\n")
    assert list(rundir.glob("journal.db.corrupt-*"))


def test_a_live_job_is_reattached_not_run_twice(write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        cmd = "echo x >> started; while [ ! -e go ]; do sleep 0.05; done; echo x >> ended"
    """)
    argv = [sys.executable, "-m", "xqdecl.cli", "--output", "quiet", "run", str(spec)]
    cli = [*argv[:4], "cli", *argv[5:]]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert wait_for_file(tmp_path / "started", 60)
    proc.send_signal(signal.SIGKILL)  # the runner dies; its job goes on
    proc.wait()
    rundir = tmp_path / ".xqdecl" / "spec"
    _delete(rundir / "journal.db")
    rerun = subprocess.Popen(cli, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert rerun.stderr is not None
    said = [rerun.stderr.readline() for _ in range(2)]  # said while planning
    first = next((line for line in said if "rebuilt" in line), said)
    assert "rebuilt" in first and "1 may still be running" in first, first
    (tmp_path / "go").write_text("")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert (tmp_path / "started").read_text().split() == ["x"]
    assert (tmp_path / "ended").read_text().split() == ["x"]
    assert not (rundir / "jobs" / "0" / "start.1").exists()


def test_journal_in_a_read_only_folder_is_a_store_error(xq: Xq, write_spec: Write,
                                                       tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    with tmpfs(mnt):
        spec = write_spec(f'workdir = "{mnt}"\n[[jobs]]\ncmd = ["true"]\n')
        assert xq("run", str(spec))[0] == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        rd = RunDir(mnt / "spec")
        with pytest.raises(StoreError, match=str(rd.journal)):
            open_journal(rd)
        code, _, err = xq("run", str(spec))
        assert code == ExitCode.BACKEND
        assert "Traceback" not in err and "read-only" in err.lower()
        assert not list((mnt / "spec").glob("journal.db.corrupt-*"))


# -- the pieces -------------------------------------------------------------------------------
def test_problem_tells_sound_from_damaged(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    J.Journal(db).close()
    assert J.problem(db) is None
    with sqlite3.connect(db) as c:
        c.execute("DROP TABLE meta")
    assert "meta" in (J.problem(db) or "")
    db.write_bytes(b"")
    assert "empty" in (J.problem(db) or "")
    db.write_bytes(b"not a database at all" * 100)
    assert J.problem(db) is not None


def test_write_atomic_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("old")
    with open(f, "rb") as reader:  # a reader keeps the old file
        write_atomic(f, "new", fsync=True)
        assert reader.read() == b"old"
    assert f.read_text() == "new"
    write_atomic(f, b"\x00bytes")
    assert f.read_bytes() == b"\x00bytes"
    assert os.stat(f).st_mode & 0o777 == 0o666 & ~_umask()
    with pytest.raises(TypeError):
        write_atomic(f, 12)  # type: ignore[arg-type]
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]
    assert f.read_bytes() == b"\x00bytes"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_lock_knows_when_its_file_was_replaced(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "runner.lock")
    lock.acquire()
    try:
        assert lock.still_held()
        (tmp_path / "runner.lock").unlink()
        assert not lock.still_held()
        other = RunLock(tmp_path / "runner.lock")
        other.acquire()  # nothing can stop it now: hence still_held for the runner
        other.release()
    finally:
        lock.release()


def test_lock_in_a_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the run lock"):
        RunLock(tmp_path / "gone" / "runner.lock").acquire()
