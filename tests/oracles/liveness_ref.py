"""The Python references of the Rust liveness parsers (`xqdecl._xqdecl.parse_*`).

Not used at run time: `xqdecl.backends.liveness` calls the Rust parsers only, and its
docstring has the rules both follow. tests/test_liveness.py and
tests/test_liveness_differential.py check that Rust and these agree
(`REFERENCE` maps each parser's name to its reference). Only ASCII rules are
used, so the Rust twin can match them exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator

from xqdecl.backends.base import JobState, Liveness
from xqdecl.backends.liveness import States, job_state

PENDING, RUNNING, DONE, FAILED = Liveness.PENDING, Liveness.RUNNING, Liveness.DONE, Liveness.FAILED

# -- shared helpers -------------------------------------------------------------------

_WS = " \t\r\n\x0b\x0c"
_WS_RUN = re.compile(r"[ \t\r\n\x0b\x0c]+")
_DIGITS = re.compile(r"[0-9]{1,18}")
_state = job_state  # the runtime's shared JobState instances


def _lines(text: str) -> Iterator[str]:
    for line in text.split("\n"):
        line = line.strip(_WS)
        if line:
            yield line


def _tokens(text: str) -> list[str]:
    return [t for t in _WS_RUN.split(text) if t]


def _int(text: str) -> int | None:
    """A plain decimal number of at most 18 digits, or None."""
    return int(text) if _DIGITS.fullmatch(text) else None


def parse_ranges(spec: str) -> list[tuple[int, int, int]] | None:
    """``"1,3-5,7-15:2"`` -> [(1,1,1), (3,5,1), (7,15,2)]; None when malformed.

    A Slurm throttle suffix (``%3``) is dropped. Each piece is ``a``, ``a-b`` or
    ``a-b:step``, with a <= b and step >= 1.
    """
    spec = spec.split("%", 1)[0]
    out: list[tuple[int, int, int]] = []
    for piece in spec.split(","):
        rng, _, step_s = piece.partition(":")
        lo_s, dash, hi_s = rng.partition("-")
        lo = _int(lo_s)
        hi = _int(hi_s) if dash else lo
        step = _int(step_s) if step_s or ":" in piece else 1
        if lo is None or hi is None or step is None or step < 1 or hi < lo:
            return None
        out.append((lo, hi, step))
    return out


class _Wanted:
    """The caller's jids, plus an index of array tasks by parent id (built lazily)."""

    def __init__(self, wanted: Collection[str], sep: str) -> None:
        self.jids = wanted if isinstance(wanted, set | frozenset | dict) else set(wanted)
        self.sep = sep
        self._tasks: dict[str, dict[int, list[str]]] | None = None

    def tasks_of(self, base: str) -> dict[int, list[str]]:
        if self._tasks is None:
            self._tasks = {}
            for jid in self.jids:
                b, sep, t = jid.partition(self.sep)
                task = _int(t) if sep else None
                if task is not None and _int(b) is not None:
                    self._tasks.setdefault(b, {}).setdefault(task, []).append(jid)
        return self._tasks.get(base, {})

    def in_ranges(self, base: str, ranges: list[tuple[int, int, int]]) -> Iterator[str]:
        """Wanted jids ``base<sep>task`` with task in ranges; cost min(range, wanted)."""
        tasks = self.tasks_of(base)
        if not tasks:
            return
        for lo, hi, step in ranges:
            count = (hi - lo) // step + 1
            if count <= len(tasks):
                for t in range(lo, hi + 1, step):
                    yield from tasks.get(t, ())
            else:
                for t, jids in tasks.items():
                    if lo <= t <= hi and (t - lo) % step == 0:
                        yield from jids


# -- Slurm -----------------------------------------------------------------------------

_SLURM: dict[str, Liveness] = {
    **dict.fromkeys(
        ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"),
        PENDING,
    ),
    **dict.fromkeys(
        ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "SUSPENDED", "STOPPED"),
        RUNNING,
    ),
    "COMPLETED": DONE,
    **dict.fromkeys(
        ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"),
        FAILED,
    ),
    **dict.fromkeys(("BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"), FAILED),
}
_SLURM_SHORT = {
    "PD": "PENDING", "CF": "CONFIGURING", "RQ": "REQUEUED", "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED", "RD": "RESV_DEL_HOLD", "R": "RUNNING", "CG": "COMPLETING",
    "SO": "STAGE_OUT", "SI": "SIGNALING", "RS": "RESIZING", "S": "SUSPENDED",
    "ST": "STOPPED", "CD": "COMPLETED", "F": "FAILED", "CA": "CANCELLED",
    "TO": "TIMEOUT", "OOM": "OUT_OF_MEMORY", "NF": "NODE_FAIL", "PR": "PREEMPTED",
    "BF": "BOOT_FAIL", "DL": "DEADLINE", "RV": "REVOKED", "SE": "SPECIAL_EXIT",
}  # fmt: skip
_SLURM_RANGE = re.compile(r"([0-9]{1,18})_\[([^\]]*)\]")


def slurm_state(field: str) -> JobState | None:
    """``"CANCELLED by 0"``, ``"CANCELLED+"``, ``"CA"`` -> JobState; None when empty."""
    toks = _tokens(field)
    if not toks:
        return None
    word = toks[0].rstrip("+")
    if not word.isascii():
        return _state(PENDING)
    word = word.upper()
    word = _SLURM_SHORT.get(word, word)
    liveness = _SLURM.get(word)
    if liveness is None:
        return _state(PENDING)
    return _state(liveness, word if liveness is FAILED else "")


def _slurm_rows(text: str, wanted: Collection[str], split: Callable[[str], list[str]]) -> States:
    want = _Wanted(wanted, "_")
    out: States = {}
    for line in _lines(text):
        fields = split(line)
        if len(fields) < 2:
            continue
        jid = fields[0].strip(_WS)
        if not jid or "." in jid:  # job steps: 123.batch, 123.extern, 123_4.0
            continue
        state = slurm_state(fields[1])
        if state is None:
            continue
        if jid in want.jids:
            out[jid] = state
            continue
        m = _SLURM_RANGE.fullmatch(jid)
        if m is not None:
            ranges = parse_ranges(m[2])
            if ranges is not None:
                for hit in want.in_ranges(m[1], ranges):
                    out[hit] = state
    return out


def _pipe_or_ws(line: str) -> list[str]:
    return line.split("|") if "|" in line else _tokens(line)


def parse_squeue(text: str, wanted: Collection[str]) -> States:
    """``squeue -h [-r] -o '%i|%T|%r'`` (collapsed pending arrays understood)."""
    return _slurm_rows(text, wanted, _pipe_or_ws)


def parse_sacct(text: str, wanted: Collection[str]) -> States:
    """``sacct -n -P -X -o JobID,State,ExitCode`` or ``sacct -c -n -P -o ...``.

    Steps (``123.batch``) are skipped. Without ``-P`` the columns are split on white
    space. ``sacct -c`` (jobcomp/filetxt) prints array tasks under their *raw* job
    id (``JobIDRaw``, e.g. ``7`` for ``5_0``): pass raw ids in ``wanted`` to match them.
    """
    return _slurm_rows(text, wanted, _pipe_or_ws)


# -- SGE -------------------------------------------------------------------------------


def sge_state(word: str) -> JobState:
    """qstat state letters -> JobState: E* failed, r/t/s/S/T running, else pending."""
    if "E" in word:
        return _state(FAILED, word)
    if any(c in word for c in "rtsST"):
        return _state(RUNNING)
    if any(c in word for c in "qwh"):
        return _state(PENDING)
    return _state(RUNNING) if "d" in word else _state(PENDING)


def _sge_emit(out: States, want: _Wanted, job: str, tasks: str, state: JobState) -> None:
    if not tasks:
        if job in want.jids:
            out[job] = state
        return
    exact = f"{job}.{tasks}"
    if exact in want.jids:
        out[exact] = state
        return
    ranges = parse_ranges(tasks)
    if ranges is not None:
        for hit in want.in_ranges(job, ranges):
            out[hit] = state


def parse_qstat(text: str, wanted: Collection[str]) -> States:
    """Plain ``qstat`` table (header lines are skipped: the job id must be a number)."""
    want = _Wanted(wanted, ".")
    out: States = {}
    for line in _lines(text):
        toks = _tokens(line)
        if len(toks) < 8 or _int(toks[0]) is None:
            continue
        rest = toks[7:]  # after id prior name user state date time: [queue] slots [tasks]
        if len(rest) >= 3:
            tasks = rest[2]
        elif len(rest) == 2 and _int(rest[0]) is not None:
            tasks = rest[1]
        else:
            tasks = ""
        _sge_emit(out, want, toks[0], tasks, sge_state(toks[4]))
    return out


def _tag(block: str, tag: str) -> str:
    start = block.find(f"<{tag}>")
    if start < 0:
        return ""
    start += len(tag) + 2
    end = block.find(f"</{tag}>", start)
    return block[start:end].strip(_WS) if end >= 0 else ""


def parse_qstat_xml(text: str, wanted: Collection[str]) -> States:
    """``qstat -xml``: each ``<job_list>`` element's JB_job_number, state and tasks."""
    want = _Wanted(wanted, ".")
    out: States = {}
    for block in text.split("<job_list")[1:]:
        block = block.split("</job_list>", 1)[0]
        job, word = _tag(block, "JB_job_number"), _tag(block, "state")
        if _int(job) is None or not word:
            continue
        _sge_emit(out, want, job, _tag(block, "tasks"), sge_state(word))
    return out


def parse_qacct(text: str, wanted: Collection[str]) -> States:
    """``qacct -j`` blocks: ``failed 0`` -> done, else failed with the failed text."""
    wanted = wanted if isinstance(wanted, set | frozenset | dict) else set(wanted)
    out: States = {}
    for block in _qacct_blocks(text):
        job = block.get("jobnumber", "")
        if _int(job) is None or "failed" not in block:
            continue
        task = block.get("taskid", "undefined")
        jid = job if task in ("", "undefined") else f"{job}.{task}"
        if jid not in wanted:
            continue
        failed = block["failed"]
        if failed == "0":
            out[jid] = _state(DONE)
        else:
            out[jid] = _state(FAILED, failed)
    return out


def _qacct_blocks(text: str) -> Iterable[dict[str, str]]:
    block: dict[str, str] = {}
    for line in _lines(text):
        if line.startswith("====="):
            if block:
                yield block
            block = {}
            continue
        toks = _WS_RUN.split(line, maxsplit=1)
        if len(toks) == 2 and toks[0] in ("jobnumber", "taskid", "failed"):
            block[toks[0]] = " ".join(_tokens(toks[1]))
    if block:
        yield block


# -- local processes -------------------------------------------------------------------


def parse_ps(text: str, wanted: Collection[str]) -> States:
    """``ps -o pid=,stat=``: alive -> running, zombie or dead (Z, X) -> done."""
    wanted = wanted if isinstance(wanted, set | frozenset | dict) else set(wanted)
    out: States = {}
    for line in _lines(text):
        toks = _tokens(line)
        if len(toks) < 2 or toks[0] not in wanted:
            continue
        stat = toks[1]
        out[toks[0]] = _state(DONE) if stat[0] in "ZX" else _state(RUNNING)
    return out


#: each parser's reference, by the name of the Rust function (`parse_<name>`)
REFERENCE: dict[str, Callable[[str, Collection[str]], States]] = {
    "squeue": parse_squeue,
    "sacct": parse_sacct,
    "qstat": parse_qstat,
    "qstat_xml": parse_qstat_xml,
    "qacct": parse_qacct,
    "ps": parse_ps,
}
