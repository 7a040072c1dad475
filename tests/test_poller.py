"""The poller's behaviour, run against both the Python reference and the Rust poller."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.oracles.poller_ref import PyPoller, parse_rc
from xqdecl import _xqdecl as native
from xqdecl.store import poller as poller_mod
from xqdecl.store.poller import make_poller

IMPLS = {"python": PyPoller, "rust": native.Poller}


@pytest.fixture(params=sorted(IMPLS))
def new_poller(request: pytest.FixtureRequest) -> Callable[..., poller_mod.Poller]:
    return IMPLS[request.param]


def make_rundir(root: Path, jobs: int) -> Path:
    (root / "events").mkdir(parents=True)
    for i in range(jobs):
        (root / "jobs" / str(i)).mkdir(parents=True)
    return root


def put(root: Path, rel: str, data: bytes = b"") -> None:
    """Write like the wrapper does: temp file + rename."""
    tmp = root / f"{rel}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, root / rel)


def entries(root: Path) -> list[str]:
    return sorted(os.listdir(root / "events"))


def test_constructor_errors(new_poller, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        new_poller(str(tmp_path / "missing"))
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        new_poller(str(tmp_path / "f"))
    with pytest.raises(ValueError, match="threads"):
        new_poller(str(tmp_path), 0)
    p = new_poller(str(tmp_path), threads=1)
    assert p.rundir == str(tmp_path) and p.threads == 1 and len(p) == 0


def test_events_flow(new_poller, tmp_path: Path) -> None:
    r = make_rundir(tmp_path, 4)
    p = new_poller(str(r))
    p.watch([(0, 1), (1, 1), (2, 1), (3, 1)])
    assert len(p) == 4
    assert p.poll_events() == []
    put(r, "jobs/0/start.1", b"host 1 1 1\n")
    put(r, "events/0.1.s")
    put(r, "jobs/1/start.1", b"host 1 1 1\n")
    put(r, "jobs/1/rc.1", b"3\nkilled\n")
    put(r, "events/1.1.s")
    put(r, "events/1.1.e")
    put(r, "events/2.7.e")  # another trial
    put(r, "events/9.1.e")  # not watched
    put(r, "events/garbage")
    assert p.poll_events() == [(0, 1, True, None), (1, 1, True, 3)]
    assert entries(r) == []
    assert len(p) == 3
    assert p.poll_events() == []
    # a lost event: the sweep finds it
    put(r, "jobs/3/rc.1", b"-9\n")
    assert p.poll_events() == []
    assert p.sweep() == [(3, 1, True, -9)]
    assert len(p) == 2


def test_news_in_event_names_is_taken_without_reads(new_poller, tmp_path: Path) -> None:
    r = make_rundir(tmp_path, 4)  # no start or rc file is ever written here
    p = new_poller(str(r))
    p.watch([(0, 1), (1, 1), (2, 1), (3, 1)])
    for name in ["0.1.s", "1.1.s", "1.1.e143", "2.1.e-15", "3.0.e0", "3.1.e1x"]:
        put(r, f"events/{name}")
    assert p.poll_events() == [(0, 1, True, None), (1, 1, True, 143), (2, 1, True, -15)]
    assert entries(r) == []
    assert len(p) == 2  # 0 runs; 3's events were another trial's and garbage
    put(r, "events/0.1.s")
    assert p.poll_events() == []  # a second start is no news
    # a bare end event still has the rc file read, and waits for it
    put(r, "events/3.1.e")
    assert p.poll_events() == []
    put(r, "jobs/3/rc.1", b"4\n")
    assert p.poll_events() == [(3, 1, True, 4)]


def test_watch_replaces_trial_and_unwatch(new_poller, tmp_path: Path) -> None:
    r = make_rundir(tmp_path, 3)
    p = new_poller(str(r))
    p.watch([(0, 1), (1, 1), (2, 1), (1, 1)])
    p.watch([(1, 2)])
    p.unwatch([0, 42])
    assert len(p) == 2
    put(r, "jobs/1/rc.1", b"0\n")
    assert p.sweep() == []
    put(r, "jobs/1/rc.2", b"1\n")
    put(r, "jobs/2/rc.1", b"0\n")
    assert p.sweep() == [(1, 2, True, 1), (2, 1, True, 0)]
    assert len(p) == 0
    with pytest.raises(OverflowError):
        p.watch([(-1, 0)])


UNUSABLE = [
    b"",
    b"4",
    b"12",
    b"garbage\n",
    b"\xff\xfe\n",
    b"1 2\n",
    b"99999999999\n",
    b" " * 300 + b"7\n",
]


@pytest.mark.parametrize("content", UNUSABLE)
def test_unusable_rc_never_reports(new_poller, tmp_path: Path, content: bytes) -> None:
    r = make_rundir(tmp_path, 1)
    p = new_poller(str(r))
    p.watch([(0, 0)])
    put(r, "jobs/0/rc.0", content)
    put(r, "events/0.0.e")
    assert p.poll_events() == []
    assert p.sweep() == []
    assert p.poll_events() == []
    assert len(p) == 1
    put(r, "jobs/0/rc.0", b"6\n")  # completed later: found by the events recheck
    assert p.poll_events() == [(0, 0, True, 6)]


def test_unreadable_and_odd_files(new_poller, tmp_path: Path) -> None:
    r = make_rundir(tmp_path, 3)
    p = new_poller(str(r))
    p.watch([(0, 0), (1, 0), (2, 0)])
    (r / "jobs/0/rc.0").mkdir()  # a folder where a file belongs
    os.symlink(r / "nowhere", r / "jobs/1/rc.0")  # dangling link
    os.mkfifo(r / "jobs/2/rc.0")  # must not block a pass
    put(r, "events/2.0.e")
    (r / "events/sub").mkdir()
    assert p.poll_events() == [] and p.sweep() == []
    assert entries(r) == ["sub"]


def test_same_size_rewrite_by_rename_is_seen(new_poller, tmp_path: Path) -> None:
    r = make_rundir(tmp_path, 1)
    p = new_poller(str(r))
    p.watch([(0, 0)])
    put(r, "jobs/0/rc.0", b"x\n")
    assert p.sweep() == []
    put(r, "jobs/0/rc.0", b"4\n")
    assert p.sweep() == [(0, 0, True, 4)]


def test_old_folder_is_not_relisted(new_poller, tmp_path: Path) -> None:
    r = make_rundir(tmp_path, 1)
    p = new_poller(str(r))
    p.watch([(0, 0)])
    ev = r / "events"
    old = time.time() - 10
    os.utime(ev, (old, old))
    assert p.poll_events() == []
    st = os.stat(ev)
    put(r, "jobs/0/start.0")
    put(r, "events/0.0.s")
    os.utime(ev, ns=(st.st_atime_ns, st.st_mtime_ns))  # looks unchanged: not listed
    assert p.poll_events() == []
    assert entries(r) == ["0.0.s"]
    os.utime(ev, (old + 1, old + 1))
    assert p.poll_events() == [(0, 0, True, None)]


def test_parse_rc_rules() -> None:
    assert parse_rc(b"0\n") == 0
    assert parse_rc(b" -15\r\nsignal\n") == -15
    assert parse_rc(b"1") is None  # torn: no end of line
    assert parse_rc(b"2147483648\n") is None
    for data in [b"", b"1", b"x\n", b"+7\n", b"\x0b3\x0c\n", b"1_0\n", b"-2147483648\n"]:
        assert native.parse_rc(data) == parse_rc(data)


def test_make_poller_is_the_rust_one_with_no_switch(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("XQDECL_POLLER", "python")  # the old switch: gone
    p = make_poller(tmp_path, threads=1)
    assert isinstance(p, native.Poller) and p.threads == 1
    assert poller_mod.parse_rc is native.parse_rc
    assert not hasattr(poller_mod, "PyPoller")
    with pytest.raises(FileNotFoundError):
        make_poller(tmp_path / "missing")


def test_rust_threads_setter(tmp_path: Path) -> None:
    p = native.Poller(str(tmp_path))
    assert p.threads == 2
    p.threads = 1
    assert p.threads == 1
    with pytest.raises(ValueError):
        p.threads = 0
    assert "Poller(" in repr(p)


def test_ctrl_c_during_a_big_sweep_loses_nothing(tmp_path: Path) -> None:
    """The sweep returns to Python between bounded steps; an interrupted pass's
    findings are handed out by the next call."""
    r = make_rundir(tmp_path, 0)
    n = 400_000
    p = native.Poller(str(r), threads=1)
    p.watch([(i, 0) for i in range(n)])
    ends = [5, n // 2, n - 1]
    for i in ends:
        (r / "jobs" / str(i)).mkdir(parents=True)
        put(r, f"jobs/{i}/rc.0", b"0\n")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    seen: list[tuple[int, int, bool, int | None]] = []
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.002)
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            for _ in range(1000):  # keep sweeping until the alarm lands
                seen += p.sweep()
        assert time.perf_counter() - t0 < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seen += p.sweep()
    seen += p.sweep()
    assert len(p) == n - len(ends)
    assert sorted(c[0] for c in seen) == ends  # each end reported exactly once


def test_native_version_matches_package() -> None:
    import importlib.metadata

    import xqdecl

    assert native.__version__ == importlib.metadata.version("xqdecl")
    assert xqdecl.__version__ == native.__version__


def test_stub_lists_what_the_module_has() -> None:
    stub = Path(poller_mod.__file__).parent.parent.joinpath("_xqdecl.pyi").read_text()
    for name in ["Poller", "parse_rc", "parse_squeue", "parse_sacct", "parse_qstat",
                 "parse_qstat_xml", "parse_qacct", "parse_ps", "__version__"]:  # fmt: skip
        assert hasattr(native, name)
        assert name in stub
