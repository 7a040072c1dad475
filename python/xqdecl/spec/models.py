"""The spec models: a run (`Spec`) made of job groups (`JobGroup`).

Field validation is pydantic's; what needs the whole spec (parameter names,
placeholders, per-group scheduler options, unique job names) is checked by
`xqdecl.spec.checks` once the fields are valid, from `Spec`'s after-validator.
Models are frozen: derive a changed spec with `Spec.with_overrides`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from xqdecl.spec.schedulers import LocalOptions, SchedulerBase, SchedulerOptions
from xqdecl.spec.values import (
    MAX_JOBS,
    RANGE_BOUND,
    Duration,
    EnvMap,
    NonNegativeInt,
    NoNulStr,
    PositiveInt,
    RunName,
    Scalar,
    base_dir,
    check_workdir,
    join_path,
)

_NAME_HELP = "run name; default: the spec file's stem"
ErrorStrategy = Literal["ignore", "retry", "halt"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeSpec(_Model):
    """`{range = [start, stop]}` or `[start, stop, step]`: integers, stop excluded."""

    range: Annotated[list[StrictInt], Field(min_length=2, max_length=3)]

    @field_validator("range")
    @classmethod
    def _check_range(cls, value: list[int]) -> list[int]:
        for bound in value:
            if not -RANGE_BOUND <= bound < RANGE_BOUND:
                raise PydanticCustomError(
                    "range_bound", "range values must be 64-bit integers (from -2**63 to"
                    " 2**63-1), got {bound}", {"bound": bound})
        start, stop, step = (*value, 1)[:3]
        if step == 0:
            raise PydanticCustomError("range_step", "the step of a range cannot be 0")
        count = max(0, (stop - start + step - (1 if step > 0 else -1)) // step)
        if count > MAX_JOBS:
            raise PydanticCustomError(
                "range_size", "the range has {count} values; a run has at most {most} jobs",
                {"count": f"{count:,}", "most": f"{MAX_JOBS:,}"})
        return value

    @property
    def values(self) -> range:
        return range(*self.range)


def _axis_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict | RangeSpec):
        return "range"
    return None


def _cmd_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "argv"
    return None


Axis = Annotated[
    Annotated[list[Scalar], Tag("list")] | Annotated[RangeSpec, Tag("range")],
    Discriminator(
        _axis_kind,
        custom_error_type="axis_type",
        custom_error_message="expected a list of values or {range = [start, stop]}",
    ),
]

Command = Annotated[
    Annotated[str, Tag("string")] | Annotated[list[Scalar], Tag("argv")],
    Discriminator(
        _cmd_kind,
        custom_error_type="cmd_type",
        custom_error_message="expected a command string or a list of arguments",
    ),
]


class JobGroup(_Model):
    """A group of jobs: one command, expanded over its parameters.

    Settings left at None inherit the run's; `scheduler` holds partial backend
    options (no `type`) merged over the run's `[scheduler]`.
    """

    name: str = "job-{index}"
    cmd: Command
    matrix: dict[str, Axis] = {}
    zip: dict[str, list[Scalar]] = {}
    params_file: str | None = None
    env: EnvMap = {}
    timeout: Duration = None
    prescript: str | None = None
    postscript: str | None = None
    cwd: str | None = None
    error_strategy: ErrorStrategy | None = None
    num_retries: NonNegativeInt | None = None
    scheduler: dict[str, Any] | None = None

    @field_validator("cmd")
    @classmethod
    def _check_cmd(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("cmd_empty", "the command is empty")
        if isinstance(value, list) and not value:
            raise PydanticCustomError("cmd_empty", "the command is empty (an empty list)")
        return value

    @field_validator("cwd", "params_file")
    @classmethod
    def _resolve(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else join_path(base_dir(info), value)


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """The effective settings of one group: the run's, updated by the group's."""

    env: dict[str, str]
    timeout: float | None
    prescript: str
    postscript: str
    cwd: str
    error_strategy: ErrorStrategy
    num_retries: int
    scheduler: SchedulerBase


class Spec(_Model):
    """A validated run: its settings and its job groups.

    Build one with `load_spec(path)` or `spec_from_dict(data)`. After
    validation `source` names where it came from, `base_dir` is the folder
    relative paths were resolved against, `group_settings(g)` gives the
    merged settings of group `g`, and `count_jobs` / `expand` (in
    `xqdecl.spec.expand`) enumerate its jobs.
    """

    name: Annotated[RunName, Field(description=_NAME_HELP)] = "run"
    workdir: str = Field(".xqdecl", validate_default=True)
    forks: PositiveInt | None = None
    submission_batch: PositiveInt = 8
    error_strategy: ErrorStrategy = "ignore"
    num_retries: NonNegativeInt = 3
    timeout: Duration = None
    prescript: str = ""
    postscript: str = ""
    cwd: str = Field(".", validate_default=True)
    plugins: list[NoNulStr] = []
    env: EnvMap = {}
    scheduler: SchedulerOptions = Field(default_factory=LocalOptions)
    jobs: Annotated[list[JobGroup], Field(min_length=1)]

    _source: str = PrivateAttr(default="<dict>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _plans: list[Any] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "name" not in data:
            context = info.context or {}
            return {"name": context.get("default_name", "run"), **data}
        return data

    @field_validator("workdir")
    @classmethod
    def _resolve_workdir(cls, value: str, info: ValidationInfo) -> str:
        return check_workdir(value, base_dir(info))

    @field_validator("cwd")
    @classmethod
    def _resolve_cwd(cls, value: str, info: ValidationInfo) -> str:
        return join_path(base_dir(info), value)

    @model_validator(mode="after")
    def _finish(self, info: ValidationInfo) -> Spec:
        from xqdecl.spec.checks import finish

        context = info.context or {}
        self._source = str(context.get("source", "<dict>"))
        self._base_dir = base_dir(info).absolute()
        self._plans = finish(self, context)
        return self

    @property
    def source(self) -> str:
        """The spec file as the user named it, or `<dict>`."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The absolute folder relative paths of the spec resolve against."""
        return self._base_dir

    def group_settings(self, group: int) -> GroupSettings:
        """Effective settings of group `group` (run settings updated by the group's)."""
        return self._plans[group].settings

    def group_counts(self) -> list[int]:
        """Number of jobs of each group, in spec order (no expansion)."""
        return [plan.count for plan in self._plans]

    def total_jobs(self) -> int:
        """Number of jobs of the whole run (no expansion)."""
        return sum(plan.count for plan in self._plans)

    def with_overrides(self, **changes: Any) -> Spec:
        """A new spec with some run-level keys replaced, validated again."""
        from xqdecl.spec.loader import spec_from_dict

        data = self.model_dump(exclude_unset=True)
        data.update(changes)
        return spec_from_dict(data, base_dir=self._base_dir, source=self._source)

