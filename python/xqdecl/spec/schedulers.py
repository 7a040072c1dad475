"""Backend options: one pydantic model per `scheduler.type`, and the list of backends.

`BACKENDS` is the one place a backend is registered: its options model (whose
`type` literal is the backend's name) and where its class lives, imported only
when used. `SchedulerOptions` (the discriminated union the spec validates
`[scheduler]` against), `SCHEDULER_MODELS` and the backend registry are all
derived from it. A group's partial `scheduler = {...}` is merged over the run's
options by `merge_options`; the cadence options (`RUN_LEVEL`) are the run's only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from xqdecl.spec.values import Duration, Flag, PositiveInt, base_dir, join_path


class SchedulerBase(BaseModel):
    """Options every backend accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    #: The workdir as seen where the jobs run (another host, a container).
    mounted_workdir: str | None = None
    # The cadence of the run's scheduler calls; None: the backend's default. Each may
    # also be overridden by an environment variable (see `backends.base.Timing`).
    #: floor between two batched status queries
    query_interval: Duration = None
    #: between two safety-net sweeps of the jobs in flight
    sweep_interval: Duration = None
    #: how long a job may be unknown to the scheduler, without its rc file, before it is lost
    lost_grace: Duration = None
    #: how long one scheduler command (sbatch, squeue, ssh, gcloud ...) may take
    command_timeout: Duration = None
    #: between the TERM and the KILL of a cancelled job
    cancel_grace: Duration = None


#: options set once for the run (a group's `scheduler = {...}` may not change them)
RUN_LEVEL = ("query_interval", "sweep_interval", "lost_grace", "command_timeout", "cancel_grace")


class LocalOptions(SchedulerBase):
    """Jobs run as process groups on this machine."""

    type: Literal["local"] = "local"


def _one_word(value: str | None, kind: str, dash_ok: bool = True) -> str | None:
    """A value that becomes one word of a `#SBATCH`/`#$` line."""
    if value is None:
        return value
    if not value or any(c.isspace() for c in value) or (
        not dash_ok and value.startswith(("-", "#"))
    ):
        raise ValueError(f"{value!r} cannot be {kind} option value (one word, no spaces)")
    return value


def _one_line_each(lines: list[str]) -> list[str]:
    for raw in lines:
        if "\n" in raw or "\r" in raw or not raw.strip():
            raise ValueError(f"one non-empty line per directive, got {raw!r}")
    return lines


#: SGE's `-pe <name> <slots>`: slots is n, n-m, n- or -m
PE_SLOTS = re.compile(r"\d+(?:-\d*)?|-\d+")


class ClusterOptions(SchedulerBase):
    """What the batch schedulers with job arrays (Slurm, SGE) share."""

    array: Flag = True
    directives: list[str] = []

    @field_validator("directives")
    @classmethod
    def _check_directives(cls, value: list[str]) -> list[str]:
        return _one_line_each(value)


class SlurmOptions(ClusterOptions):
    """Slurm: groups are submitted as native job arrays unless `array = false`."""

    type: Literal["slurm"] = "slurm"
    partition: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: PositiveInt | None = None
    gres: str | None = None
    account: str | None = None
    qos: str | None = None
    array_throttle: PositiveInt | None = None
    max_array_size: PositiveInt | None = None
    sbatch: str = "sbatch"
    squeue: str = "squeue"
    sacct: str = "sacct"
    scancel: str = "scancel"

    @field_validator("partition", "time", "mem", "gres", "account", "qos")
    @classmethod
    def _check_word(cls, value: str | None) -> str | None:
        return _one_word(value, "a Slurm")


class SgeOptions(ClusterOptions):
    """Son of / Univa Grid Engine: array jobs unless `array = false`."""

    type: Literal["sge"] = "sge"
    queue: str | None = None
    resources: list[str] = []
    pe: str | None = None
    qsub: str = "qsub"
    qstat: str = "qstat"
    qacct: str = "qacct"
    qdel: str = "qdel"

    @field_validator("queue")
    @classmethod
    def _check_queue(cls, value: str | None) -> str | None:
        return _one_word(value, "an SGE", dash_ok=False)

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, value: list[str]) -> list[str]:
        for item in value:
            _one_word(item, "an SGE", dash_ok=False)
        return value

    @field_validator("pe")
    @classmethod
    def _check_pe(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.split()
        if len(parts) != 2 or not PE_SLOTS.fullmatch(parts[1]):
            raise ValueError(f'write "<name> <slots>" (e.g. "smp 4"), got {value!r}')
        _one_word(parts[0], "an SGE", dash_ok=False)
        return value


_SERVER = re.compile(r"(?:(?P<user>[^@\s]+)@)?(?P<host>[^@:\s]+)(?::(?P<port>\d+))?")


class SshServer(BaseModel):
    """One host of the ssh backend (also written `"user@host:port"`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(strict=True, ge=1, le=65535)] = 22
    user: str | None = None
    keyfile: str | None = None

    @field_validator("keyfile")
    @classmethod
    def _resolve_keyfile(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else join_path(base_dir(info), value)


def _server_from_text(value: Any) -> Any:
    if isinstance(value, str):
        match = _SERVER.fullmatch(value.strip())
        if not match:
            raise ValueError(f"cannot read server {value!r}: write host, user@host or host:port")
        parts = {k: v for k, v in match.groupdict().items() if v is not None}
        if "port" in parts:
            parts["port"] = int(parts["port"])
        return parts
    return value


class SshOptions(SchedulerBase):
    """Jobs spread over ssh servers sharing the workdir's filesystem."""

    type: Literal["ssh"] = "ssh"
    servers: Annotated[list[Annotated[SshServer, BeforeValidator(_server_from_text)]],
                       Field(min_length=1)]
    ssh_options: list[str] = []


class ContainerOptions(SchedulerBase):
    """Each job runs in its own container."""

    type: Literal["container"] = "container"
    runtime: Literal["docker", "podman", "apptainer"]
    image: Annotated[str, Field(min_length=1)]
    volumes: list[str] = []
    entrypoint: str | None = None
    user: str | None = None
    runtime_args: list[str] = []

    @field_validator("volumes")
    @classmethod
    def _check_volumes(cls, value: list[str]) -> list[str]:
        for volume in value:
            host, sep, inside = volume.partition(":")
            if not (host and sep and inside):
                raise ValueError(f"a volume is written host:container, got {volume!r}")
        return value

    @model_validator(mode="after")
    def _check_user(self) -> ContainerOptions:
        if self.user is not None and self.runtime == "apptainer":
            raise ValueError("apptainer runs jobs as the submitting user: drop `user`")
        return self


class GbatchOptions(SchedulerBase):
    """Google Cloud Batch; `job_config` is passed through to the job definition."""

    type: Literal["gbatch"] = "gbatch"
    project: str | None = None
    location: str | None = None
    machine_type: str | None = None
    image: str | None = None
    job_config: dict[str, Any] = {}
    #: gs://BUCKET[/FOLDER] holding the workdir: mounted on the VMs where they see the
    #: workdir (`mounted_workdir`, else the workdir's own path)
    bucket: Annotated[str, Field(pattern=r"^gs://[^/\s]+(/\S*)?$")] | None = None
    cpus: PositiveInt | None = None  # computeResource.cpuMilli = 1000 * cpus
    mem: Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*([KMGTkmgt]i?[Bb]?)?\s*$")] | None = None
    gcloud: str = "gcloud"


#: Every backend: its options model and its class ("module:Class", generic over that
#: model), in the order messages list them. Adding a backend: one line here.
BACKENDS: tuple[tuple[type[SchedulerBase], str], ...] = (
    (LocalOptions, "xqdecl.backends.local:LocalBackend"),
    (SlurmOptions, "xqdecl.backends.slurm:SlurmBackend"),
    (SgeOptions, "xqdecl.backends.sge:SgeBackend"),
    (SshOptions, "xqdecl.backends.ssh:SshBackend"),
    (ContainerOptions, "xqdecl.backends.container:ContainerBackend"),
    (GbatchOptions, "xqdecl.backends.gbatch:GbatchBackend"),
)


def type_name(model: type[SchedulerBase]) -> str:
    """The `type` an options model stands for (its literal's one value)."""
    name = model.model_fields["type"].default
    assert isinstance(name, str), model
    return name


SCHEDULER_MODELS: dict[str, type[SchedulerBase]] = {type_name(m): m for m, _ in BACKENDS}


def _default_type(value: Any) -> Any:
    if isinstance(value, dict) and "type" not in value:
        return {"type": "local", **value}
    return value


if TYPE_CHECKING:
    SchedulerOptions = SchedulerBase
else:
    SchedulerOptions = Annotated[
        Union[tuple(SCHEDULER_MODELS.values())],  # noqa: UP007 - built from BACKENDS
        Field(discriminator="type"),
        BeforeValidator(_default_type),
    ]


def merge_options(
    run_options: SchedulerBase, group_options: dict[str, Any], context: dict[str, Any]
) -> SchedulerBase:
    """The run's options updated by a group's partial options, validated again
    with the run's model (raises `pydantic.ValidationError`)."""
    model = type(run_options)
    fixed = [InitErrorDetails(type=PydanticCustomError(
        "run_level", "set once for the run in [scheduler], not per group"),
        loc=(key,), input=group_options[key]) for key in RUN_LEVEL if key in group_options]
    if fixed:
        raise ValidationError.from_exception_data(model.__name__, fixed)
    merged = run_options.model_dump(exclude_unset=True)
    merged.update(group_options)
    merged["type"] = run_options.type
    return model.model_validate(merged, context=context)
