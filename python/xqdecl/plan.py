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
from typing import Any

from pydantic import BaseModel

from xqdecl.layout import RunDir
from xqdecl.spec import Spec, Template, expand
from xqdecl.wrapper import WrapperInput, render


@dataclass(slots=True)
class GroupPlan:
    """One group of the spec with its effective settings and compiled templates."""

    index: int
    first: int  # global index of its first job
    count: int
    name: Template
    cmd: Template | list[Template]
    env: dict[str, Template]
    cwd: Template | None
    prescript: Template
    postscript: Template
    timeout: float | None
    error_strategy: str
    num_retries: int
    options: BaseModel
    options_digest: str


@dataclass(slots=True)
class PlannedJob:
    """One job with its values rendered (placeholders done)."""

    index: int
    group: int
    name: str
    cmd: str | list[str]
    env: dict[str, str]
    cwd: str | None
    prescript: str
    postscript: str
    timeout: float | None


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
        counts = spec.group_counts()
        for g, group in enumerate(spec.jobs):
            s = spec.group_settings(g)
            where = f"jobs[{g}]"
            cmd: Template | list[Template]
            if isinstance(group.cmd, str):
                cmd = Template(group.cmd, f"{where}.cmd")
            else:
                cmd = [Template(a, f"{where}.cmd[{i}]") for i, a in enumerate(group.cmd)]
            self.groups.append(
                GroupPlan(
                    index=g,
                    first=first,
                    count=counts[g],
                    name=Template(group.name, f"{where}.name"),
                    cmd=cmd,
                    env={k: Template(v, f"{where}.env.{k}") for k, v in s.env.items()},
                    cwd=Template(s.cwd, f"{where}.cwd") if s.cwd else None,
                    prescript=Template(s.prescript or "", f"{where}.prescript"),
                    postscript=Template(s.postscript or "", f"{where}.postscript"),
                    timeout=s.timeout,
                    error_strategy=s.error_strategy,
                    num_retries=s.num_retries,
                    options=s.scheduler,
                    options_digest=_options_digest(s.scheduler),
                )
            )
            first += counts[g]
        self.total = first

    def group_of(self, index: int) -> GroupPlan:
        for group in self.groups:
            if group.first <= index < group.first + group.count:
                return group
        raise IndexError(index)

    def jobs(self) -> Iterator[PlannedJob]:
        """Every job, in index order, rendered lazily."""
        for ex in expand(self.spec):
            yield self._render(ex.index, self.groups[ex.group], ex.params)

    def _render(self, index: int, g: GroupPlan, params: dict[str, Any]) -> PlannedJob:
        values = dict(params)
        values["index"] = str(index)
        if isinstance(g.cmd, list):
            cmd: str | list[str] = [t.render(values) for t in g.cmd]
        else:
            cmd = g.cmd.render(values, quote=True)
        return PlannedJob(
            index=index,
            group=g.index,
            name=g.name.render(values),
            cmd=cmd,
            env={k: t.render(values) for k, t in g.env.items()},
            cwd=g.cwd.render(values) if g.cwd else None,
            prescript=g.prescript.render(values, quote=True),
            postscript=g.postscript.render(values, quote=True),
            timeout=g.timeout,
        )

    def wrapper_input(self, job: PlannedJob, directives: list[str]) -> WrapperInput:
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
            timeout=job.timeout,
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


def render_job(plan: Plan, job: PlannedJob, directives: list[str]) -> str:
    return render(plan.wrapper_input(job, directives))
