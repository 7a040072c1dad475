"""What reaches a job, checked without expanding the jobs.

A job's name, argv, environment, folder and scripts are its group's
templates with parameter values put in. A NUL cannot be passed to a process
(argv, environment, paths, bash text) and a job name must stay one line
without '/'. A value free of a character, put into a text free of it, cannot
make one: so each template's own text is checked once and each parameter's
values once, at the cost of the values, never of the jobs. On the local
backend the distinct working folders of a group (up to `MAX_CWD_CHECKS`,
found over only the axes the `cwd` uses) must exist.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from xqdecl.spec.files import folder_problem
from xqdecl.spec.params import Axis, GroupParams, RangeAxis, Step
from xqdecl.spec.template import Loc, Template

if TYPE_CHECKING:
    from xqdecl.spec.checks import GroupPlan

Issue = tuple[Loc, str]
#: False while loading a spec only to read its run's state (status, logs, kill,
#: report): a working folder deleted since the run must not hide the run's results.
HOST_CHECKS: ContextVar[bool] = ContextVar("xqdecl_host_checks", default=True)

#: Distinct `cwd` values of one group checked to exist; the rest are not looked at.
MAX_CWD_CHECKS = 10_000

NUL = re.compile("\x00")
#: What a job name cannot hold: control characters (NUL, newlines, ...) and '/'.
NAME_UNSAFE = re.compile("[\x00-\x1f\x7f/]")
_WHY = {
    NUL: "a NUL cannot be passed to a job",
    NAME_UNSAFE: "a job name must be one line of printable text without '/'",
}


def describe_char(char: str) -> str:
    if char == "\0":
        return "a NUL character"
    if char == "\n" or char == "\r":
        return "a line break"
    if char == "/":
        return "'/'"
    return f"a control character ({char!r})"


class ValueScan:
    """Where each parameter of a group comes from; each column scanned once per pattern."""

    def __init__(self, params: GroupParams):
        self.params = params
        self.columns: dict[str, tuple[int, int]] = {}
        keys = iter(params.keys)
        for a, axis in enumerate(params.axes):
            for j in range(axis.width):
                self.columns[next(keys)] = (a, j)
        self._found: dict[tuple[str, re.Pattern[str]], tuple[int, str, str] | None] = {}

    def first_bad(self, name: str, pattern: re.Pattern[str]) -> tuple[int, str, str] | None:
        """(position on its axis, value, character) of the first value of `name`
        matching `pattern`; None if none does (range values never do)."""
        key = (name, pattern)
        if key not in self._found:
            self._found[key] = self._scan(name, pattern)
        return self._found[key]

    def _scan(self, name: str, pattern: re.Pattern[str]) -> tuple[int, str, str] | None:
        if name not in self.columns:
            return None
        a, j = self.columns[name]
        axis = self.params.axes[a]
        if isinstance(axis, RangeAxis):
            return None
        values = list(axis) if axis.width == 1 else [step[j] for step in axis]
        if not pattern.search("".join(values)):  # one C-level pass; single-character pattern
            return None
        for position, value in enumerate(values):
            match = pattern.search(value)
            if match:
                return position, value, match.group(0)
        return None

    def value_loc(self, name: str, position: int) -> tuple[Loc, str]:
        """The spec path of a value, and how to name it in a message."""
        a, _ = self.columns[name]
        source = self.params.sources[a] if self.params.sources else ()
        if source[-1:] == ("params_file",):
            return source, f"row {position + 2}, column {name!r}: "
        if source[-1:] == ("zip",):
            return (*source, name, position), ""
        if source:
            return (*source, position), ""
        return (), f"parameter {name!r}: "


def _templates(plan: GroupPlan) -> Iterator[tuple[Template, re.Pattern[str]]]:
    yield plan.name, NAME_UNSAFE
    for template in (plan.cmd,) if isinstance(plan.cmd, Template) else plan.cmd:
        yield template, NUL
    for template in plan.env.values():
        yield template, NUL
    for template in (plan.cwd, plan.prescript, plan.postscript):
        yield template, NUL


def check_text(plan: GroupPlan, reported: set[Loc]) -> list[Issue]:
    """Issues for forbidden characters in a group's templates or in the values
    put into them. Run-level templates are reported once (`reported`)."""
    from xqdecl.spec.issues import format_path

    issues: list[Issue] = []
    scan = ValueScan(plan.params)
    named: set[str] = set()
    for template, pattern in _templates(plan):
        found = pattern.search(template.text)
        if found and template.loc not in reported:
            reported.add(template.loc)
            issues.append((template.loc, f"holds {describe_char(found.group(0))};"
                                         f" {_WHY[pattern]}"))
        for name in template.names:
            hit = None if name in named else scan.first_bad(name, pattern)
            if hit is None:
                continue
            named.add(name)
            position, value, char = hit
            loc, label = scan.value_loc(name, position)
            issues.append((loc, f"{label}value {value!r} holds {describe_char(char)};"
                                f" it is put into {format_path(template.loc)}, and"
                                f" {_WHY[pattern]}"))
    return issues


def check_cwd(plan: GroupPlan, g: int, reported: set[Loc]) -> list[Issue]:
    """An issue if a working folder of the group does not exist (local backend)."""
    template = plan.cwd
    if template.loc in reported or NUL.search(template.text):
        return []
    inherited = template.loc[:1] != ("jobs",)
    for path, values in distinct_renders(template, plan.params, plan.offset):
        problem = folder_problem(path)
        if problem is None:
            continue
        if template.is_constant:
            reported.add(template.loc)  # the same for every group that inherits it
        elif values:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            problem += f" (for {shown}" + (f" in jobs[{g}])" if inherited else ")")
        return [(template.loc, problem)]
    return []


def distinct_renders(template: Template, params: GroupParams, offset: int,
                     limit: int = MAX_CWD_CHECKS) -> Iterator[tuple[str, dict[str, str]]]:
    """Up to `limit` distinct renderings of `template` over a group's jobs, each
    with the values that made it. Only the axes the template uses are walked,
    each reduced to its distinct values first."""
    render = template.renderer()
    if template.is_constant:
        yield render({}), {}
        return
    if "index" in template.names:  # every job differs: look at the first `limit`
        for values in itertools.islice(params.indexed_dicts(offset), limit):
            shown = {k: v for k, v in values.items() if k in template.names}
            yield render(values), shown
        return
    choices: list[list[dict[str, str]]] = []
    for columns, axis in _axes_used(template, params):
        steps: Iterator[Step] = itertools.islice(axis, limit) if isinstance(
            axis, RangeAxis) else iter(dict.fromkeys(axis))
        distinct = dict.fromkeys(tuple(_pick(step, columns)) for step in steps)
        names = [name for name, _ in columns]
        choices.append([dict(zip(names, key, strict=True)) for key in distinct])
    seen: set[str] = set()
    for combo in itertools.product(*choices):
        values = {k: v for part in combo for k, v in part.items()}
        text = render(values)
        if text not in seen:
            seen.add(text)
            yield text, values
            if len(seen) >= limit:
                return


def _axes_used(template: Template, params: GroupParams) -> Iterator[
        tuple[list[tuple[str, int]], Axis]]:
    """(the names the template uses with their column, their axis), axis by axis."""
    keys = iter(params.keys)
    for axis in params.axes:
        columns = [(next(keys), j) for j in range(axis.width)]
        used = [(name, j) for name, j in columns if name in template.names]
        if used:
            yield used, axis


def _pick(step: Step, columns: list[tuple[str, int]]) -> Iterator[str]:
    for _, j in columns:
        yield step if isinstance(step, str) else step[j]
