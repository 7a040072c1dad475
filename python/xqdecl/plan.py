"""From a validated spec to planned jobs and their rendered wrappers.

Templates are compiled once per group; jobs are produced lazily, one at a
time, so a 100,000-job run never holds all rendered commands in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from xqdecl.layout import RunDir
from xqdecl.spec import RenderedJob, Spec, group_counts, render_all
from xqdecl.wrapper import WrapperInput, render


@dataclass(slots=True)
class GroupPlan:
    """One group of the spec with the effective settings the runner needs."""

    index: int
    first: int  # global index of its first job
    count: int
    timeout: float | None
    error_strategy: str
    num_retries: int
    options: BaseModel
    options_digest: str


def _options_digest(options: BaseModel) -> str:
    return json.dumps(options.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class Plan:
    """The jobs of a spec, their groups and where their files go."""

    def __init__(self, spec: Spec, rundir: Path | None = None, mounted_rundir: str | None = None):
        self.spec = spec
        self.rundir = RunDir(rundir if rundir is not None else Path(spec.workdir) / spec.name)
        self.mounted_rundir = mounted_rundir or str(self.rundir.root)
        self.groups: list[GroupPlan] = []
        first = 0
        for g, count in enumerate(group_counts(spec)):
            s = spec.group_settings(g)
            self.groups.append(
                GroupPlan(
                    index=g,
                    first=first,
                    count=count,
                    timeout=s.timeout,
                    error_strategy=s.error_strategy,
                    num_retries=s.num_retries,
                    options=s.scheduler,
                    options_digest=_options_digest(s.scheduler),
                )
            )
            first += count
        self.total = first

    def jobs(self) -> Iterator[RenderedJob]:
        """Every job, in index order, rendered lazily."""
        return render_all(self.spec)

    def wrapper_input(self, job: RenderedJob, directives: list[str]) -> WrapperInput:
        g = self.groups[job.group]
        return WrapperInput(
            index=job.index,
            name=job.name,
            run=self.spec.name,
            metadir=f"{self.mounted_rundir}/jobs/{job.index}",
            events_dir=f"{self.mounted_rundir}/events",
            cmd=job.cmd,
            env=job.env,
            cwd=job.cwd,
            prescript=job.prescript,
            postscript=job.postscript,
            timeout=g.timeout,
            directives=directives,
            options_digest=g.options_digest,
        )


def write_wrapper(path: Path, text: str) -> str:
    """Put the wrapper in place unless identical; returns its definition hash.

    The file is replaced by a rename, never rewritten in place, so a bash that
    is reading the old one (a job still running) keeps reading the old one.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return digest
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    tmp = path.with_name(f".job.sh.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return digest


def render_job(plan: Plan, job: RenderedJob, directives: list[str]) -> str:
    return render(plan.wrapper_input(job, directives))
