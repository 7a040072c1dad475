"""From a validated spec to planned jobs and their rendered wrappers.

Templates are compiled once per group; jobs are produced lazily, one at a
time, so a 100,000-job run never holds all rendered commands in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType

from pydantic import BaseModel

from xqdecl.plan.wrapper import WrapperInput, render
from xqdecl.plugin.hooks import JOBCMD_HOOKS, NO_HOOKS, Hooks, JobView
from xqdecl.spec import RenderedJob, Spec, group_counts, job_at, render_all
from xqdecl.spec import render_job as render_spec_job
from xqdecl.store.cloud import upload_functions
from xqdecl.store.journal import JobRow
from xqdecl.store.layout import RunDir, locate, read_or_none, wrapper_hash, write_atomic


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

    def __init__(self, spec: Spec, hooks: Hooks = NO_HOOKS):
        self.spec = spec
        self.hooks = hooks
        self.location = locate(spec)
        self.rundir = RunDir(self.location.local)
        self.mounted_rundir = self.location.mounted
        self.upload = upload_functions(self.location.url) if self.location.upload else ""
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

    def view(self, row: JobRow, status: str, trial: int | None = None) -> JobView:
        """What a plugin hook sees of a job (command and metadir worked out on first use)."""
        return JobView(index=row.idx, name=row.name, status=status, rc=row.rc,
                       trial=row.trial if trial is None else trial, jid=row.jid, group=row.grp,
                       detail=self._view_detail)

    def job(self, index: int) -> RenderedJob:
        """Job `index`, rendered (on its own, without walking the jobs before it)."""
        return render_spec_job(self.spec, job_at(self.spec, index))

    def _view_detail(self, index: int) -> tuple[str | list[str], Path]:
        return self.job(index).cmd, self.rundir.metadir(index)

    def _snippets(self, name: str, job: RenderedJob) -> list[str]:
        if name not in self.hooks.active:
            return []
        view = JobView(index=job.index, name=job.name, cmd=job.cmd,
                       metadir=self.rundir.metadir(job.index), status="queued", rc=None,
                       trial=0, jid=None, group=job.group)
        return self.hooks.snippets(name, view)

    def wrapper_input(self, job: RenderedJob, directives: list[str]) -> WrapperInput:
        g = self.groups[job.group]
        snippets: dict[str, list[str]] = {}
        if self.hooks.active & JOBCMD_HOOKS:
            for name in JOBCMD_HOOKS:
                snippets[name] = self._snippets(name, job)
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
            init_snippets=snippets.get("on_jobcmd_init", ()),
            prep_snippets=snippets.get("on_jobcmd_prep", ()),
            end_snippets=snippets.get("on_jobcmd_end", ()),
            upload=self.upload,
        )


def write_wrapper(path: Path | str, text: str,
                  on_disk: bytes | EllipsisType | None = ...) -> str:
    """Put the wrapper in place unless identical; returns its definition hash.

    An existing file is replaced by a rename, never rewritten in place, so a
    bash that is reading the old one (a job still running) keeps reading it.
    A new file is written directly: nothing can be reading it yet.
    `on_disk` is the file's content as the caller just read it (None: there
    is no file), so it is not read twice.
    """
    data = text.encode()
    digest = wrapper_hash(data)
    path = os.fspath(path)
    if on_disk is ...:
        on_disk = read_or_none(path)
    if on_disk == data:
        return digest
    if on_disk is None:
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(os.path.dirname(path))
            with open(path, "xb") as fh:
                fh.write(data)
            return digest
        except FileExistsError:
            pass
    write_atomic(path, data)
    return digest


def render_job(plan: Plan, job: RenderedJob, directives: list[str]) -> str:
    return render(plan.wrapper_input(job, directives))
