"""Scaffolding shared by the real-cluster tests of the Slurm and SGE backends.

A `Bed` is a rundir holding hand-written minimal job.sh wrappers (start file, rc
file, event files, as docs/internals.md describes), shim commands that log each
call and exec the real scheduler command (so a test can count calls), and the
backend built over them.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqdecl.backends.base import Backend, BackendContext, Liveness, Submission


@dataclass
class Bed:
    """A rundir with job wrappers, shim commands that count calls, and a backend."""

    rundir: Path
    bin: Path
    backend: Any  # the backend class under test
    subs: list[Submission]
    rc_wait: float = 60

    def calls(self, command: str) -> list[str]:
        log = self.bin / f"{command}.calls"
        return log.read_text().splitlines() if log.exists() else []

    def rc(self, sub: Submission) -> int | None:
        path = self.rundir / "jobs" / str(sub.index) / f"rc.{sub.trial}"
        text = path.read_text().strip() if path.exists() else ""
        return int(text.splitlines()[0]) if text else None

    def wait_rcs(self, subs: Sequence[Submission], limit: float | None = None
                 ) -> dict[int, int | None]:
        deadline = time.monotonic() + (self.rc_wait if limit is None else limit)
        while time.monotonic() < deadline:
            rcs = {s.index: self.rc(s) for s in subs}
            if all(rc is not None for rc in rcs.values()):
                return rcs
            time.sleep(0.2)
        return {s.index: self.rc(s) for s in subs}


def write_job(rundir: Path, index: int, body: str) -> Path:
    """A minimal wrapper: start file + event, the body, rc file (temp + rename) + event."""
    meta = rundir / "jobs" / str(index)
    meta.mkdir(parents=True, exist_ok=True)
    script = meta / "job.sh"
    script.write_text(
        f"""#!/usr/bin/env bash
t=${{1:-0}} m={meta} ev={rundir}/events
echo "$(uname -n) $$ $$ $(date +%s)" >"$m/start.$t"
: >"$ev/{index}.$t.s"
( {body} ) >"$m/stdout.$t" 2>"$m/stderr.$t"
rc=$?
echo "$rc" >"$m/rc.$t.tmp" && mv -f "$m/rc.$t.tmp" "$m/rc.$t"
: >"$ev/{index}.$t.e"
exit "$rc"
"""
    )
    return script


def write_shims(bindir: Path, commands: Sequence[str],
                overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Shim commands that log each call and exec the real command (or run an override)."""
    bindir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for cmd in commands:
        real = shutil.which(cmd) or f"/usr/bin/{cmd}"
        action = (overrides or {}).get(cmd, f'exec {real} "$@"')
        shim = bindir / cmd
        shim.write_text(f'#!/bin/sh\necho "$*" >>{bindir}/{cmd}.calls\n{action}\n')
        shim.chmod(0o755)
        paths[cmd] = str(shim)
    return paths


def make_bed(tmp_path: Path, n: int, *, backend: type[Backend], options: type[Any],
             commands: Sequence[str], run_name: str, body: str | Callable[[int], str],
             forks: int, overrides: dict[str, str] | None, rc_wait: float,
             **values: Any) -> Bed:
    """n jobs (index 0..n-1, trial 0) of one group, with `values` as backend options."""
    rundir = tmp_path / "run"
    (rundir / "events").mkdir(parents=True, exist_ok=True)
    shims = write_shims(tmp_path / "bin", commands, overrides)
    opts = options(**{**shims, **values})
    subs = [
        Submission(
            index=i, trial=0, name=f"job{i}", group=0, options=opts,
            script=write_job(rundir, i, body(i) if callable(body) else body),
        )
        for i in range(n)
    ]  # fmt: skip
    ctx = BackendContext(run=run_name, rundir=rundir, mounted_rundir=str(rundir), forks=forks)
    return Bed(rundir, tmp_path / "bin", backend(opts, ctx), subs, rc_wait)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def poll(bed: Bed, jids: list[str], until: Callable[[dict], bool], limit: float = 60) -> dict:
    """Query the backend until `until(states)` holds (or `limit` seconds pass)."""
    deadline = time.monotonic() + limit
    states: dict = {}
    while time.monotonic() < deadline:
        states = run(bed.backend.query(jids))
        if until(states):
            return states
        time.sleep(0.3)
    return states


def every(n: int, *wanted: Liveness) -> Callable[[dict], bool]:
    """A poll condition: n jobs answered, each in one of the `wanted` states."""
    return lambda states: len(states) == n and all(st.liveness in wanted for st in states.values())


def ctx_for(tmp_path: Path) -> BackendContext:
    return BackendContext(run="r1", rundir=tmp_path, mounted_rundir="/mnt/wd/r1", forks=8)


@dataclass(frozen=True)
class Cluster:
    """What a test shared by Slurm and SGE needs to know of each."""

    name: str  # the marker and the service fixture
    backend: type[Backend[Any]]
    options: type[Any]
    commands: tuple[str, str, str, str]  # submit, status, accounting, cancel
    rc_wait: float
    first_task: int  # the task number of an array's first job
    sep: str  # between the array id and the task number in a jid

    @property
    def submit(self) -> str:
        return self.commands[0]

    @property
    def cancel(self) -> str:
        return self.commands[3]

    def bed(self, tmp_path: Path, n: int, body: str | Callable[[int], str] = "echo job",
            forks: int = 64, overrides: dict[str, str] | None = None, **options: Any) -> Bed:
        return make_bed(tmp_path, n, backend=self.backend, options=self.options,
                        commands=self.commands, run_name=f"{self.name}test", body=body,
                        forks=forks, overrides=overrides, rc_wait=self.rc_wait, **options)

    def array_arg(self, n: int, throttle: int) -> str:
        """How the submit call's arguments say: an array of n tasks, `throttle` at once."""
        if self.name == "slurm":
            return f"--array=0-{n - 1}%{throttle} "
        return f" -t 1-{n} -tc {throttle} "

    @property
    def array_word(self) -> str:
        """What only an array submission's arguments hold."""
        return "--array" if self.name == "slurm" else " -t "

    def throttled(self, most: int) -> dict[str, Any]:
        """`bed` arguments for at most `most` tasks running at once."""
        return {"array_throttle": most} if self.name == "slurm" else {"forks": most}

    def placed(self, service: Any) -> tuple[dict[str, Any], str]:
        """Options putting jobs on the test queue, and the argument they make."""
        if self.name == "slurm":
            return {"partition": service.partition}, f"--partition={service.partition}"
        return {"queue": service.queue}, f"-q {service.queue}"


def clusters() -> list[Any]:
    """The parameters of a test every array scheduler passes (each with its marker)."""
    import pytest

    from xqdecl.backends.sge import SgeBackend
    from xqdecl.backends.slurm import SlurmBackend
    from xqdecl.spec import SgeOptions, SlurmOptions

    slurm = Cluster("slurm", SlurmBackend, SlurmOptions, ("sbatch", "squeue", "sacct", "scancel"),
                    rc_wait=60, first_task=0, sep="_")
    sge = Cluster("sge", SgeBackend, SgeOptions, ("qsub", "qstat", "qacct", "qdel"),
                  rc_wait=90, first_task=1, sep=".")
    return [pytest.param(c, marks=getattr(pytest.mark, c.name), id=c.name) for c in (slurm, sge)]
