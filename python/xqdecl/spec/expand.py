"""Jobs of a validated spec: counting, lazy expansion and rendering.

Jobs are numbered 0..N-1 across the whole spec, group 0's first. Within a
group they follow the product of its axes (`xqdecl.spec.params`): matrix keys
in order, then the zip axis, then the params-file rows, the last varying
fastest. Nothing here builds the list of all jobs: `expand` is a generator,
`count_jobs` multiplies axis lengths and `job_at` finds one job by
mixed-radix arithmetic.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from xqdecl.spec.checks import GroupPlan
    from xqdecl.spec.models import Spec


class ExpandedJob(NamedTuple):
    """One job: its global index, its group and its parameter values
    (`index` itself is not in `params`)."""

    index: int
    group: int
    params: dict[str, str]


@dataclass(slots=True)
class RenderedJob:
    """A job with every template filled in.

    `cmd` is a string (to run with bash; substituted values shell-quoted) or an
    argv list (values as they are). `prescript`/`postscript` are shell text
    with quoted values; `env` is the group's effective environment.
    """

    index: int
    group: int
    name: str
    cmd: str | list[str]
    env: dict[str, str]
    cwd: str
    prescript: str
    postscript: str
    params: dict[str, str]


def _plans(spec: Spec) -> list[GroupPlan]:
    # straight from pydantic's private dict: `spec._plans` costs ~50x more per call
    plans: list[GroupPlan] = spec.__pydantic_private__["_plans"]  # type: ignore[index]
    return plans


def count_jobs(spec: Spec, group: int | None = None) -> int:
    """Number of jobs of the spec, or of one group."""
    plans = _plans(spec)
    if group is not None:
        return plans[group].count
    return sum(plan.count for plan in plans)


def group_counts(spec: Spec) -> list[int]:
    """Number of jobs of each group, in spec order."""
    return [plan.count for plan in _plans(spec)]


def expand(spec: Spec, group: int | None = None) -> Iterator[ExpandedJob]:
    """Every job of the spec (or of one group) in index order, made lazily."""
    plans = _plans(spec)
    chosen = range(len(plans)) if group is None else [group]
    for g in chosen:
        plan = plans[g]
        indexes = itertools.count(plan.offset)
        yield from map(ExpandedJob._make, zip(indexes, itertools.repeat(g), plan.params.dicts()))


def job_at(spec: Spec, index: int) -> ExpandedJob:
    """The job with global index `index` (IndexError if there is none)."""
    plans = _plans(spec)
    total = sum(plan.count for plan in plans)
    if not 0 <= index < total:
        raise IndexError(f"job index {index} out of range (the run has {total} jobs)")
    g = bisect.bisect_right([plan.offset for plan in plans], index) - 1
    plan = plans[g]
    return ExpandedJob(index, g, plan.params.at(index - plan.offset))


def render_job(spec: Spec, job: ExpandedJob) -> RenderedJob:
    """Fill in every template of `job`'s group with the job's values."""
    plan = _plans(spec)[job.group]
    if plan.job_renderer is None:
        plan.job_renderer = _JobRenderer(plan)
    renderer: _JobRenderer = plan.job_renderer
    return renderer(job)


class _JobRenderer:
    """The render functions of one group's templates, fetched once."""

    __slots__ = ("argv", "cwd", "env", "name", "post", "pre", "shell")

    def __init__(self, plan: GroupPlan):
        self.name = plan.name.renderer()
        if isinstance(plan.cmd, tuple):
            self.argv: tuple[Any, ...] | None = tuple(part.renderer() for part in plan.cmd)
            self.shell = None
        else:
            self.argv = None
            self.shell = plan.cmd.renderer(quote=True)
        self.env = tuple((key, value.renderer()) for key, value in plan.env.items())
        self.cwd = plan.cwd.renderer()
        self.pre = plan.prescript.renderer(quote=True)
        self.post = plan.postscript.renderer(quote=True)

    def __call__(self, job: ExpandedJob) -> RenderedJob:
        values = job.params.copy()
        values["index"] = str(job.index)
        if self.argv is not None:
            cmd: str | list[str] = [render(values) for render in self.argv]
        else:
            cmd = self.shell(values)  # type: ignore[misc]
        return RenderedJob(
            job.index,
            job.group,
            self.name(values),
            cmd,
            {key: render(values) for key, render in self.env},
            self.cwd(values),
            self.pre(values),
            self.post(values),
            job.params,
        )


def render_all(spec: Spec, group: int | None = None) -> Iterator[RenderedJob]:
    """`render_job` over `expand(spec, group)`."""
    for job in expand(spec, group):
        yield render_job(spec, job)
