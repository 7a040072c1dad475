"""The poller: notices job starts and ends from the files wrappers leave in a rundir.

The work is done by the Rust extension (`xqdecl._xqdecl.Poller`, see
docs/internals.md, "The poller"): two passes, both returning *changes only* as
``(index, trial, started, rc)``:

* ``poll_events()`` -- one ``stat`` of ``events/`` per pass; the folder is listed
  only when it changed. The entries' names carry their news: ``<i>.<t>.s``
  (started) and ``<i>.<t>.e<rc>`` (ended, once the rc file is in place); only a
  bare ``<i>.<t>.e`` has the job's rc file read.
* ``sweep()`` -- the safety net: one ``stat`` of every watched job's rc file (and
  of its start file while not yet started).

This module is what the rest of xqdecl imports: the poller's interface, the rc
parser (Rust too) and the event-name parser the cloud poller shares. The
Python reference the differential tests compare against lives in
tests/oracles/poller_ref.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Protocol

from xqdecl._xqdecl import Poller as RustPoller
from xqdecl._xqdecl import parse_rc

__all__ = ["RC_READ_LIMIT", "Change", "Poller", "make_poller", "parse_event_name", "parse_rc"]

#: ``(index, trial, started, rc)``; ``rc`` is None until the job has ended.
Change = tuple[int, int, bool, int | None]

#: Only this many leading bytes of an rc file are read; the first line must end within
#: them (the Rust parser applies the same limit to what it is given).
RC_READ_LIMIT = 256

_EVENT = re.compile(r"([0-9]+)\.([0-9]+)\.(s|e(-?[0-9]+)?)", re.ASCII)
_I32 = (-(2**31), 2**31 - 1)
_U64_MAX = 2**64 - 1


def parse_event_name(name: str) -> tuple[int, int, bool, int | None] | None:
    """``"<index>.<trial>.<s|e|e<rc>>"`` -> (index, trial, ended, rc carried by the name).

    None when the name does not parse (an rc must fit in 32 bits).
    """
    m = _EVENT.fullmatch(name)
    if m is None:
        return None
    index, trial = int(m[1]), int(m[2])
    if index > _U64_MAX or trial > _U64_MAX:
        return None
    rc = None if m[4] is None else int(m[4])
    if rc is not None and not _I32[0] <= rc <= _I32[1]:
        return None
    return index, trial, m[3] != "s", rc


class Poller(Protocol):
    """What the runner uses of a poller (the Rust one, or the cloud one)."""

    def watch(self, jobs: Sequence[tuple[int, int]]) -> None: ...
    def unwatch(self, indexes: Sequence[int]) -> None: ...
    def poll_events(self) -> list[Change]: ...
    def sweep(self) -> list[Change]: ...
    def __len__(self) -> int: ...


def make_poller(rundir: str | os.PathLike[str], threads: int = 2) -> RustPoller:
    """The poller of a local run directory (which must exist)."""
    return RustPoller(os.fspath(rundir), threads)
