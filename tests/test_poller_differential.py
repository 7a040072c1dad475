"""Differential test: the Rust poller and the Python reference agree on random
file states (torn, garbage, empty, replaced, aged) and random operation orders.

Each implementation gets its own rundir; every file operation is applied to both.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.oracles.poller_ref import PyPoller, parse_rc
from xqdecl import _xqdecl as native

INDEXES = st.integers(0, 2)
TRIALS = st.integers(0, 1)
RC_CONTENT = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: f"{v}\n".encode()),
    st.sampled_from(
        [
            b"",
            b"0",
            b"1",
            b"12",
            b"0\n",
            b"3\nOUT_OF_MEMORY\n",
            b" 7 \r\n",
            b"+2\n",
            b"-0\n",
            b"x\n",
            b"1 2\n",
            b"2147483648\n",
            b"\xff\n",
            b"\x0b5\x0c\n",
            b"\x1c5\n",
            b"1_0\n",
            b" " * 254 + b"1\n",
            b" " * 255 + b"1\n",
            b"9" * 40 + b"\n",
        ]
    ),
    st.binary(max_size=10),
)
_VALID_EVENT = st.builds(
    lambda i, t, k: f"{i}.{t}.{k}",
    INDEXES,
    TRIALS,
    st.one_of(
        st.sampled_from(["s", "e", "e0", "e1", "e143", "e-15", "e2147483647", "e-2147483648"]),
        st.integers(-(2**31), 2**31 - 1).map(lambda rc: f"e{rc}"),
    ),
)
EVENT_NAME = st.one_of(
    _VALID_EVENT,
    _VALID_EVENT,
    _VALID_EVENT,
    st.sampled_from(["junk", "1.0", "01.0.e", "+1.0.s", "1.0.e.tmp", "1.0.x", "9" * 20 + ".0.s",
                     "1.0.e+1", "1.0.e-", "1.0.e2147483648", "1.0.s0", "0.0.e\u0661"]),
    st.text("0123456789.se+-x", min_size=1, max_size=7).filter(lambda s: s not in (".", "..")),
)
OPS = st.one_of(
    st.tuples(st.just("watch"), st.lists(st.tuples(INDEXES, TRIALS), max_size=5)),
    st.tuples(st.just("unwatch"), st.lists(INDEXES, max_size=3)),
    st.tuples(st.just("rc"), INDEXES, TRIALS, RC_CONTENT, st.booleans()),
    st.tuples(st.just("start"), INDEXES, TRIALS),
    st.tuples(st.just("rm_rc"), INDEXES, TRIALS),
    st.tuples(st.just("event"), EVENT_NAME),
    st.tuples(st.just("event_dir"), EVENT_NAME),
    st.tuples(st.just("age")),
    st.tuples(st.just("poll_events")),
    st.tuples(st.just("sweep")),
)


def _write(path: Path, data: bytes, rename: bool) -> None:
    if rename:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    else:  # in place: a reader may see it torn
        with open(path, "r+b" if path.exists() else "wb") as f:
            f.truncate(0)
            f.write(data)


def _apply(root: Path, op: tuple) -> None:
    kind = op[0]
    if kind == "rc":
        _, i, t, data, rename = op
        path = root / "jobs" / str(i) / f"rc.{t}"
        if not path.is_dir():
            _write(path, data, rename)
    elif kind == "start":
        _, i, t = op
        (root / "jobs" / str(i) / f"start.{t}").write_bytes(b"host 1 1 1\n")
    elif kind == "rm_rc":
        _, i, t = op
        (root / "jobs" / str(i) / f"rc.{t}").unlink(missing_ok=True)
    elif kind == "event":
        path = root / "events" / op[1]
        if not path.is_dir():
            path.write_bytes(b"")
    elif kind == "event_dir":
        path = root / "events" / op[1]
        if not path.exists():
            path.mkdir()
    elif kind == "age":
        old = time.time() - 100
        for dirpath, _, files in os.walk(root):
            for name in [*files, "."]:
                os.utime(os.path.join(dirpath, name), (old, old))


def _leftovers(root: Path) -> list[str]:
    return sorted(os.listdir(root / "events"))


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=st.lists(OPS, min_size=1, max_size=40), threads=st.sampled_from([1, 2]))
@example(  # an end event seen before the rc is usable: rechecked on later events passes
    ops=[
        ("rc", 0, 0, b"x\n", True),
        ("event", "0.0.e"),
        ("poll_events",),
        ("rc", 0, 0, b"1\n", True),
        ("poll_events",),
    ],
    threads=1,
)
def test_rust_and_python_pollers_agree(ops: list[tuple], threads: int) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        roots = [Path(a), Path(b)]
        for root in roots:
            (root / "events").mkdir()
            for i in range(3):
                (root / "jobs" / str(i)).mkdir(parents=True)
        rust, ref = native.Poller(a, threads), PyPoller(b, threads)
        rust.watch([(0, 0), (1, 0), (2, 1)])
        ref.watch([(0, 0), (1, 0), (2, 1)])
        for op in [*ops, ("poll_events",), ("sweep",)]:
            kind = op[0]
            if kind == "watch":
                rust.watch(op[1])
                ref.watch(op[1])
            elif kind == "unwatch":
                rust.unwatch(op[1])
                ref.unwatch(op[1])
            elif kind in ("poll_events", "sweep"):
                got, want = getattr(rust, kind)(), getattr(ref, kind)()
                assert got == want, (kind, ops)
            else:
                for root in roots:
                    _apply(root, op)
            assert len(rust) == len(ref)
        assert _leftovers(roots[0]) == _leftovers(roots[1])


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(RC_CONTENT, st.binary(max_size=300)))
def test_rc_parsing_agrees(data: bytes) -> None:
    assert native.parse_rc(data) == parse_rc(data)
