"""Batched liveness: a scheduler's one-call status output -> job states.

Every parser takes the command's text output and the set of job ids the caller
wants, and returns ``{jid: JobState}`` holding only wanted jids found in the
output. The cost is proportional to the output's lines plus the wanted jids;
a collapsed array range (``123_[5-9%3]``, SGE ``1-100000:1``) is never expanded
beyond the wanted tasks it covers.

Job ids
  Slurm: ``"123"`` or ``"123_4"`` (array task). SGE: ``"123"`` or ``"123.4"``.
  ps: the pid as text.

Slurm states
  PENDING CONFIGURING REQUEUED REQUEUE_HOLD REQUEUE_FED RESV_DEL_HOLD -> pending;
  RUNNING COMPLETING STAGE_OUT SIGNALING RESIZING, and SUSPENDED/STOPPED (the job
  keeps its allocation and resumes) -> running; COMPLETED -> done; FAILED
  CANCELLED TIMEOUT OUT_OF_MEMORY NODE_FAIL PREEMPTED BOOT_FAIL DEADLINE REVOKED
  SPECIAL_EXIT -> failed with reason = the state word (``CANCELLED by 0`` ->
  ``CANCELLED``). Short codes (``%t``: PD, R, CG, CD, F, CA, TO, OOM, ...) are
  understood too. An unknown state word means the scheduler still knows the job:
  pending. When a jid appears on several lines, the last line wins.

The parsing is done by the Rust extension (``xqdecl._xqdecl.parse_*``); these
functions turn its answer into shared ``JobState`` instances. The Python
references the differential tests compare against are in
tests/oracles/liveness_ref.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from xqdecl import _xqdecl
from xqdecl.backends.base import JobState, Liveness

__all__ = [
    "States",
    "job_state",
    "parse_ps",
    "parse_qacct",
    "parse_qstat",
    "parse_qstat_xml",
    "parse_sacct",
    "parse_squeue",
]

States = dict[str, JobState]
#: a Rust parser: (text, wanted jids) -> {jid: (liveness value, reason)}
_Native = Callable[[str, set[str] | frozenset[str]], dict[str, tuple[str, str]]]

_STATES: dict[tuple[Liveness, str], JobState] = {}
_LIVENESS_OF = {lv.value: lv for lv in Liveness}


def job_state(liveness: Liveness, reason: str = "") -> JobState:
    """Shared JobState instances (they are frozen), so big answers stay cheap."""
    key = (liveness, reason)
    st = _STATES.get(key)
    if st is None:
        st = _STATES[key] = JobState(liveness, reason)
    return st


def _run(native: _Native, text: str, wanted: Collection[str]) -> States:
    raw = native(text, wanted if isinstance(wanted, set | frozenset) else set(wanted))
    return {jid: job_state(_LIVENESS_OF[lv], reason) for jid, (lv, reason) in raw.items()}


def parse_squeue(text: str, wanted: Collection[str]) -> States:
    """``squeue -h [-r] -o '%i|%T|%r'`` (collapsed pending arrays understood)."""
    return _run(_xqdecl.parse_squeue, text, wanted)


def parse_sacct(text: str, wanted: Collection[str]) -> States:
    """``sacct -n -P -X -o JobID,State,ExitCode`` or ``sacct -c -n -P -o ...``.

    Steps (``123.batch``) are skipped. Without ``-P`` the columns are split on white
    space. ``sacct -c`` (jobcomp/filetxt) prints array tasks under their *raw* job
    id (``JobIDRaw``, e.g. ``7`` for ``5_0``): pass raw ids in ``wanted`` to match them.
    """
    return _run(_xqdecl.parse_sacct, text, wanted)


def parse_qstat(text: str, wanted: Collection[str]) -> States:
    """Plain ``qstat`` table (header lines are skipped: the job id must be a number)."""
    return _run(_xqdecl.parse_qstat, text, wanted)


def parse_qstat_xml(text: str, wanted: Collection[str]) -> States:
    """``qstat -xml``: each ``<job_list>`` element's JB_job_number, state and tasks."""
    return _run(_xqdecl.parse_qstat_xml, text, wanted)


def parse_qacct(text: str, wanted: Collection[str]) -> States:
    """``qacct -j`` blocks: ``failed 0`` -> done, else failed with the failed text."""
    return _run(_xqdecl.parse_qacct, text, wanted)


def parse_ps(text: str, wanted: Collection[str]) -> States:
    """``ps -o pid=,stat=``: alive -> running, zombie or dead (Z, X) -> done."""
    return _run(_xqdecl.parse_ps, text, wanted)
