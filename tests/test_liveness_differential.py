"""Differential test: every Rust liveness parser agrees with its Python reference
on generated scheduler outputs (well-formed, mangled and random)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles.liveness_ref import REFERENCE
from xqdecl import _xqdecl as native

_SMALL = st.integers(0, 3).map(str)
NUM = st.one_of(
    _SMALL, _SMALL, _SMALL, st.integers(0, 12).map(str), st.sampled_from(["007", "1" * 19, "x", ""])
)
WS = st.sampled_from([" ", " ", " ", "  ", "\t", " \x0b", "\x0c", "\x1c", "\xa0", "\u2028"])
NOISE = st.text(
    alphabet=" \t\r\n\x0b\x0c\x1c\x85\xa0|_[]-:,%.+0123456789ABCDEPRSTZqwhrtds\u017f<>/=aeiou",
    max_size=60,
)

_WORDS = (
    "PENDING CONFIGURING REQUEUED REQUEUE_HOLD RESV_DEL_HOLD RUNNING COMPLETING STAGE_OUT "
    "SIGNALING SUSPENDED COMPLETED FAILED CANCELLED TIMEOUT OUT_OF_MEMORY NODE_FAIL PREEMPTED "
    "BOOT_FAIL DEADLINE REVOKED SPECIAL_EXIT PD R CG CD F CA TO OOM"
)
SLURM_WORDS = [
    *_WORDS.split(),
    *["CANCELLED by 0", "CANCELLED+", "cancelled", "pd", "\u017f", "WEIRD", "", " ", "+", "R+"],
]


def _piece(lo: str, hi: str | None, step: str | None) -> str:
    s = lo if hi is None else f"{lo}-{hi}"
    return s if step is None else f"{s}:{step}"


PIECE = st.builds(_piece, NUM, st.none() | NUM, st.none() | st.sampled_from(["1", "2", "3", "0"]))
SPEC = st.builds(
    lambda pieces, throttle: ",".join(pieces) + throttle,
    st.lists(PIECE, min_size=1, max_size=3),
    st.sampled_from(["", "%1", "%64", "%"]),
)
SLURM_JID = st.one_of(
    NUM,
    st.builds(lambda b, t: f"{b}_{t}", NUM, NUM),
    st.builds(lambda b, s: f"{b}_[{s}]", NUM, SPEC),
    st.builds(lambda b, s: f"{b}.{s}", NUM, st.sampled_from(["batch", "extern", "0"])),
)
_SLURM_LINE_OK = st.builds(
    lambda j, s, r, sep: sep.join([j, s, r]),
    SLURM_JID,
    st.sampled_from(SLURM_WORDS),
    st.sampled_from(["None", "Priority", "0:0", "0:15", ""]),
    st.sampled_from(["|", "|", " ", "  "]),
)
SLURM_LINE = st.one_of(_SLURM_LINE_OK, _SLURM_LINE_OK, _SLURM_LINE_OK, NOISE)
_BASES = [str(b) for b in range(4)]
_TASKS = [str(t) for t in range(13)]
SLURM_WANTED = [*_BASES, *(f"{b}_{t}" for b in _BASES for t in _TASKS), "1_05", "01_1"]

SGE_STATE = st.sampled_from(
    ["qw", "hqw", "r", "t", "Rr", "Eqw", "dr", "dt", "s", "S", "d", "x", ""]
)
SGE_TASKS = st.one_of(st.just(""), NUM, SPEC, st.builds(lambda a, b: f"{a},{b}", NUM, NUM))
_QSTAT_LINE_OK = st.builds(
    lambda j, state, queue, slots, tasks, ws: ws.join(
        t
        for t in [
            j,
            "0.5",
            "name",
            "root",
            state,
            "11/24/2026",
            "22:05:13",
            queue,
            slots,
            tasks,
        ]
        if t
    ),
    NUM,
    SGE_STATE,
    st.sampled_from(["", "all.q@vm", "3"]),
    st.sampled_from(["1", "2", ""]),
    SGE_TASKS,
    WS,
)
QSTAT_LINE = st.one_of(_QSTAT_LINE_OK, _QSTAT_LINE_OK, _QSTAT_LINE_OK, NOISE)
QSTAT_XML_BLOCK = st.builds(
    lambda j, state, tasks, tail: (
        f"<job_list state='x'><JB_job_number>{j}</JB_job_number><state>{state}</state>"
        + (f"<tasks>{tasks}</tasks>" if tasks else "")
        + tail
    ),
    NUM,
    SGE_STATE,
    SGE_TASKS,
    st.sampled_from(["</job_list>", "", "</job_list></job_info>", "<state>"]),
)
QACCT_FIELD = st.one_of(
    st.builds(lambda n, ws: f"jobnumber{ws}{n}", NUM, WS),
    st.builds(lambda n, ws: f"taskid{ws}{n}", st.one_of(NUM, st.just("undefined")), WS),
    st.builds(
        lambda v, ws: f"failed{ws}{v}",
        st.sampled_from(["0", "0    ", "37  : qmaster enforced h_rt", "100 : assumedly after job"]),
        WS,
    ),
    st.sampled_from(["exit_status  137                  (Killed)", "qname all.q", "failed", "="]),
    NOISE,
)
QACCT_BLOCK = st.builds(
    lambda job, task, failed, extra, ws: "\n".join(
        ["=" * 62, f"jobnumber{ws}{job}", f"taskid{ws}{task}", f"failed{ws}{failed}", *extra]
    ),
    NUM,
    st.one_of(NUM, st.just("undefined")),
    st.sampled_from(["0", "0    ", "37  : qmaster enforced h_rt", "1"]),
    st.lists(QACCT_FIELD, max_size=3),
    WS,
)
QACCT_LINE = st.one_of(QACCT_BLOCK, QACCT_BLOCK, QACCT_FIELD)
_PS_LINE_OK = st.builds(
    lambda p, s, ws: f"{ws}{p}{ws}{s}",
    NUM,
    st.sampled_from(["S", "Ss", "R+", "Z", "Z+", "X", "D"]),
    WS,
)
PS_LINE = st.one_of(_PS_LINE_OK, _PS_LINE_OK, _PS_LINE_OK, NOISE)
SGE_WANTED = [*_BASES, *(f"{b}.{t}" for b in _BASES for t in _TASKS), "1.05", "2.undefined"]


def lines(line: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda ls, end: "\n".join(ls) + end,
        st.lists(line, min_size=1, max_size=20),
        st.sampled_from(["", "\n", "\r\n"]),
    )


CASES = {
    "squeue": (lines(SLURM_LINE), SLURM_WANTED),
    "sacct": (lines(SLURM_LINE), SLURM_WANTED),
    "qstat": (lines(QSTAT_LINE), SGE_WANTED),
    "qstat_xml": (st.lists(QSTAT_XML_BLOCK, max_size=6).map("\n".join), SGE_WANTED),
    "qacct": (lines(QACCT_LINE), SGE_WANTED),
    "ps": (lines(PS_LINE), [*_TASKS, "007", ""]),
}


def check(name: str, text: str, wanted: set[str]) -> None:
    ref = REFERENCE[name](text, wanted)
    got = getattr(native, f"parse_{name}")(text, wanted)
    assert got == {jid: (s.liveness.value, s.reason) for jid, s in ref.items()}
    assert set(got) <= wanted


def _pool(text: str, universe: list[str]) -> list[str]:
    """Wanted candidates: the universe's jids whose parent id occurs in the text."""
    seen = set(re.split(r"[|_.\[\]<>\s]+", text))
    return [j for j in universe if re.split(r"[_.]", j)[0] in seen] or universe


@pytest.mark.parametrize("name", sorted(CASES))
def test_rust_and_python_parsers_agree(name: str) -> None:
    text_strategy, universe = CASES[name]

    @settings(max_examples=250, deadline=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        text = data.draw(text_strategy, label="text")
        pool = _pool(text, universe)
        mask = data.draw(st.lists(st.booleans(), min_size=len(pool), max_size=len(pool)))
        check(name, text, {j for j, keep in zip(pool, mask, strict=True) if keep})

    run()


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=80, deadline=None)
@given(text=NOISE, wanted=st.sets(NUM | SLURM_JID, max_size=6))
def test_random_text(name: str, text: str, wanted: set[str]) -> None:
    check(name, text, wanted)


def test_the_runtime_parsers_call_rust_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No switch selects the references at run time: xqdecl.backends.liveness answers what the
    Rust parser answers (here a stand-in for it), as shared JobState instances."""
    from xqdecl.backends import liveness as lv
    from xqdecl.backends.base import Liveness

    monkeypatch.setenv("XQDECL_POLLER", "python")  # the old switch: gone
    asked: list[tuple[str, set[str]]] = []

    def fake(text: str, wanted: set[str]) -> dict[str, tuple[str, str]]:
        asked.append((text, wanted))
        return {"7": ("failed", "TIMEOUT")}

    monkeypatch.setattr(native, "parse_sacct", fake)
    got = lv.parse_sacct("whatever", ["7"])
    assert asked == [("whatever", {"7"})]
    assert got == {"7": lv.job_state(Liveness.FAILED, "TIMEOUT")}
    assert got["7"] is lv.job_state(Liveness.FAILED, "TIMEOUT")
    assert not [n for n in dir(lv) if n.startswith("py_parse")]
