"""Whole-spec checks, run once every field is valid; they build the group plans.

For each group: its parameter axes (`params`), its effective settings (run
settings updated by the group's, with the group's partial scheduler options
validated against the run's backend model), and its templates, each parsed
once and checked against the group's parameter names, then against what a
job can receive (`xqdecl.spec.guards`: characters, local working folders).
Then every job name is rendered once to prove the names unique. Problems are collected with
their paths and raised together as `SpecIssues`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from xqdecl.spec.guards import HOST_CHECKS, check_cwd, check_text
from xqdecl.spec.issues import Issue, SpecIssues, pydantic_issues
from xqdecl.spec.models import GroupSettings
from xqdecl.spec.params import GroupParams, group_params
from xqdecl.spec.schedulers import merge_options
from xqdecl.spec.template import Loc, Template, TemplateError
from xqdecl.spec.values import MAX_JOBS

__all__ = ["MAX_JOBS", "GroupPlan", "finish"]

if TYPE_CHECKING:
    from xqdecl.spec.models import Spec

#: How many duplicate job names an error lists.
SHOWN_DUPLICATES = 3


@dataclass(slots=True)
class GroupPlan:
    """Everything needed to expand and render the jobs of one group."""

    settings: GroupSettings
    params: GroupParams
    offset: int  # global index of the group's first job
    count: int
    name: Template
    cmd: Template | tuple[Template, ...]  # a string is run by bash; a tuple is an argv
    env: dict[str, Template]
    cwd: Template
    prescript: Template
    postscript: Template
    job_renderer: Any = None  # made by xqdecl.spec.expand on first use


class _Collector:
    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.reported: set[Loc] = set()  # run-level templates with unknown placeholders
        self.guarded: set[Loc] = set()  # run-level templates with bad text or folder

    def template(self, text: str, loc: Loc) -> Template:
        try:
            return Template(text, loc)
        except TemplateError as exc:
            self.issues.append((loc, exc.message))
            return Template("")

    def path_template(self, text: str, loc: Loc, base: str) -> Template:
        """A resolved path: the spec folder's own braces are not placeholders."""
        if not text.startswith(base):
            return self.template(text, loc)
        escaped = base.replace("{", "{{").replace("}", "}}")
        template = self.template(escaped + text[len(base) :], loc)
        template.text = text
        return template


def finish(spec: Spec, context: dict[str, Any]) -> list[GroupPlan]:
    """Check what spans fields and build one plan per group (or raise SpecIssues)."""
    found = _Collector()
    base = str(spec.base_dir)
    run_env = {k: found.template(v, ("env", k)) for k, v in spec.env.items()}
    run_cwd = found.path_template(spec.cwd, ("cwd",), base)
    run_pre = found.template(spec.prescript, ("prescript",))
    run_post = found.template(spec.postscript, ("postscript",))
    plans: list[GroupPlan] = []
    offset = 0
    for g, group in enumerate(spec.jobs):
        where: Loc = ("jobs", g)
        params, problems, names_known = group_params(group, where)
        found.issues.extend(problems)
        settings = _settings(spec, g, context, found)
        env = dict(run_env)
        env.update({k: found.template(v, (*where, "env", k)) for k, v in group.env.items()})
        cmd: Template | tuple[Template, ...]
        if isinstance(group.cmd, str):
            cmd = found.template(group.cmd, (*where, "cmd"))
        else:
            cmd = tuple(found.template(a, (*where, "cmd", i)) for i, a in enumerate(group.cmd))
        plan = GroupPlan(
            settings=settings,
            params=params,
            offset=offset,
            count=params.count,
            name=found.template(group.name, (*where, "name")),
            cmd=cmd,
            env=env,
            cwd=(found.path_template(group.cwd, (*where, "cwd"), base)
                 if group.cwd is not None else run_cwd),
            prescript=(found.template(group.prescript, (*where, "prescript"))
                       if group.prescript is not None else run_pre),
            postscript=(found.template(group.postscript, (*where, "postscript"))
                        if group.postscript is not None else run_post),
        )
        if names_known and _check_placeholders(plan, g, found):
            _check_values(spec, plan, g, found)
        plans.append(plan)
        offset += plan.count
    if offset > MAX_JOBS:
        biggest = max(range(len(plans)), key=lambda g: plans[g].count)
        found.issues.append((("jobs", biggest), f"the run would have {offset:,} jobs;"
                             f" at most {MAX_JOBS:,} are supported"))
    if not found.issues:
        found.issues.extend(_duplicate_names(plans))
    if found.issues:
        raise SpecIssues(found.issues, spec.source)
    return plans


def _settings(spec: Spec, g: int, context: dict[str, Any], found: _Collector) -> GroupSettings:
    group = spec.jobs[g]
    where: Loc = ("jobs", g)
    scheduler = spec.scheduler
    if group.scheduler:
        options = dict(group.scheduler)
        kind = options.pop("type", scheduler.type)
        if kind != scheduler.type:
            found.issues.append((
                (*where, "scheduler", "type"),
                f"the scheduler type is set once for the run (it is {scheduler.type!r});"
                " a group may only change its options",
            ))
        try:
            scheduler = merge_options(scheduler, options, context)
        except ValidationError as exc:
            shape = {"scheduler": {"type": scheduler.type},
                     "jobs": [{}] * g + [{"scheduler": group.scheduler}]}
            found.issues.extend(pydantic_issues(exc, shape, (*where, "scheduler")))
    env = dict(spec.env)
    env.update(group.env)
    return GroupSettings(
        env=env,
        timeout=group.timeout if group.timeout is not None else spec.timeout,
        prescript=group.prescript if group.prescript is not None else spec.prescript,
        postscript=group.postscript if group.postscript is not None else spec.postscript,
        cwd=group.cwd if group.cwd is not None else spec.cwd,
        error_strategy=group.error_strategy or spec.error_strategy,
        num_retries=group.num_retries if group.num_retries is not None else spec.num_retries,
        scheduler=scheduler,
    )


def _check_values(spec: Spec, plan: GroupPlan, g: int, found: _Collector) -> None:
    """What the group's jobs would receive: no NUL, names one line without '/',
    and on the local backend working folders that exist."""
    problems = check_text(plan, found.guarded)
    found.issues.extend(problems)
    if not problems and spec.scheduler.type == "local" and HOST_CHECKS.get():
        found.issues.extend(check_cwd(plan, g, found.guarded))


def _check_placeholders(plan: GroupPlan, g: int, found: _Collector) -> bool:
    """Issues for unknown placeholders; True if every one of the group is known."""
    ok = True
    known = {*plan.params.keys, "index"}
    templates = [plan.name, plan.cwd, plan.prescript, plan.postscript, *plan.env.values()]
    templates += [plan.cmd] if isinstance(plan.cmd, Template) else list(plan.cmd)
    for template in templates:
        inherited = template.loc[:1] != ("jobs",)
        if inherited and template.loc in found.reported:
            ok = ok and not template.unknown(known)
            continue  # a run-level setting: said once, for the first group it fails in
        try:
            template.check(known, f"used by jobs[{g}]" if inherited else "")
        except TemplateError as exc:
            found.issues.append((template.loc, exc.message))
            found.reported.add(template.loc)
            ok = False
    return ok


def _duplicate_names(plans: list[GroupPlan]) -> list[Issue]:
    """Issues naming clashing job names; a fast set-only pass when there are none."""
    seen: set[str] = set()
    for plan in plans:
        before = len(seen)
        seen.update(map(plan.name.renderer(), plan.params.indexed_dicts(plan.offset)))
        if len(seen) - before != plan.count:
            return _describe_duplicates(plans)
    return []


def _describe_duplicates(plans: list[GroupPlan]) -> list[Issue]:
    first: dict[str, int] = {}
    issues: list[Issue] = []
    for g, plan in enumerate(plans):
        shown: dict[str, list[int]] = {}  # a few clashing names -> a few of their jobs
        totals: dict[str, int] = {}
        others: set[str] = set()
        for index, name in _names(plan):
            earlier = first.setdefault(name, index)
            if earlier == index:
                continue
            if name in shown:
                totals[name] += 1
                if len(shown[name]) < 3:
                    shown[name].append(index)
            elif len(shown) < SHOWN_DUPLICATES:
                shown[name] = [earlier, index]
                totals[name] = 2
            else:
                others.add(name)
        if shown:
            parts = [_clash(name, shown[name], totals[name]) for name in shown]
            text = "job names must be unique after expansion: " + "; ".join(parts)
            if others:
                text += f"; and {len(others)} more name(s)"
            issues.append((plan.name.loc or ("jobs", g, "name"), text))
    return issues


def _clash(name: str, indexes: list[int], total: int) -> str:
    if total == 2:
        return f"{name!r} is used by jobs {indexes[0]} and {indexes[1]}"
    listed = ", ".join(map(str, indexes))
    return f"{name!r} is used by {total} jobs ({listed}, ...)"


def _names(plan: GroupPlan) -> Iterator[tuple[int, str]]:
    """(index, rendered name) of every job of the group."""
    render = plan.name.renderer()
    names = map(render, plan.params.indexed_dicts(plan.offset))
    return zip(itertools.count(plan.offset), names)
