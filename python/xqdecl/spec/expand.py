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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from xqdecl.spec.checks import GroupPlan
    from xqdecl.spec.models import Spec


class ExpandedJob(NamedTuple):
    """One job: its global index, its group and its parameter values
    (`index` itself is not in `params`)."""

    index: int
    group: int
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
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
    return spec._plans


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
        keys = plan.params.keys
        index = plan.offset
        for values in plan.params.combos():
            yield ExpandedJob(index, g, dict(zip(keys, values, strict=True)))
            index += 1


def job_at(spec: Spec, index: int) -> ExpandedJob:
    """The job with global index `index` (IndexError if there is none)."""
    plans = _plans(spec)
    total = sum(plan.count for plan in plans)
    if not 0 <= index < total:
        raise IndexError(f"job index {index} out of range (the run has {total} jobs)")
    offsets = [plan.offset for plan in plans]
    g = bisect.bisect_right(offsets, index) - 1
    while plans[g].count == 0:  # pragma: no cover - groups are never empty once valid
        g -= 1
    plan = plans[g]
    values = plan.params.at(index - plan.offset)
    return ExpandedJob(index, g, dict(zip(plan.params.keys, values, strict=True)))


def render_job(spec: Spec, job: ExpandedJob) -> RenderedJob:
    """Fill in every template of `job`'s group with the job's values."""
    plan = _plans(spec)[job.group]
    values = dict(job.params)
    values["index"] = str(job.index)
    if isinstance(plan.cmd, tuple):
        cmd: str | list[str] = [part.render(values) for part in plan.cmd]
    else:
        cmd = plan.cmd.render(values, quote=True)
    return RenderedJob(
        index=job.index,
        group=job.group,
        name=plan.name.render(values),
        cmd=cmd,
        env={key: value.render(values) for key, value in plan.env.items()},
        cwd=plan.cwd.render(values),
        prescript=plan.prescript.render(values, quote=True),
        postscript=plan.postscript.render(values, quote=True),
        params=job.params,
    )


def render_all(spec: Spec, group: int | None = None) -> Iterator[RenderedJob]:
    """`render_job` over `expand(spec, group)`."""
    for job in expand(spec, group):
        yield render_job(spec, job)
