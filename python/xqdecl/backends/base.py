"""The interface every backend implements, and the values it exchanges with the runner.

A backend is generic over its options model (`class SlurmBackend(ArrayBackend[
SlurmOptions])`): the model names it (its `type` literal) and types `self.options`.
Its cadence (`Timing`) is read when it is built: environment variable, else the
spec's `[scheduler]` option, else the backend's class default.
"""

from __future__ import annotations

import enum
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args

from pydantic_core import PydanticCustomError

from xqdecl.errors import SpecError
from xqdecl.spec.schedulers import SchedulerBase
from xqdecl.spec.values import parse_duration

if TYPE_CHECKING:  # backends/command.py is imported by the first command (not by validate)
    from xqdecl.backends.command import Completed

O = TypeVar("O", bound=SchedulerBase)  # noqa: E741 - the options model of a backend

#: (index, trial, started, rc or None), as the poller gives a job's news
Change = tuple[int, int, bool, int | None]


class Liveness(enum.Enum):
    """What the scheduler says of a job (the rc file, when present, overrides it)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobState:
    """One job's liveness as reported by one batched query."""

    liveness: Liveness
    reason: str = ""  # scheduler's word for a failure: OUT_OF_MEMORY, TIMEOUT, ...


#: seconds between the TERM and the KILL of a command stopped by its timeout or a cancel
KILL_GRACE = 10


@dataclass(slots=True)
class DirectJob:
    """A job an executor can start without its wrapper: no prescript, postscript or
    plugin snippet, so the executor does the wrapper's part itself (its files, the
    timeout, the rc) and the command is the job's only process."""

    argv: list[str]  # a string command is `bash -c CMD`
    env: dict[str, str]  # XQDECL_* and the job's env, as the wrapper exports them
    cwd: str | None
    metadir: str  # as the execution host sees it
    events: str
    timeout_label: str = ""  # the timeout as the wrapper's message says it ("2s", "10m")
    #: the job's definition hash: the executor puts it on the start line (no job.sh is
    #: written for a direct job; recovery from disk reads it there)
    stamp: str = ""
    #: the equivalent wrapper, written only where the job must run through it after all
    script_text: str = ""


@dataclass(slots=True)
class Submission:
    """One job (one trial of it) to start."""

    index: int
    trial: int
    name: str
    script: Path  # the job's wrapper, jobs/<index>/job.sh
    group: int  # index of the spec's job group
    options: Any  # validated backend options of the group (the backend's options model)
    timeout: float | None = None
    #: given when the backend asked for it (`direct_jobs`) and the job needs no wrapper
    direct: DirectJob | None = None


@dataclass(slots=True)
class Submitted:
    """The outcome of submitting one job: a job id, or an error message."""

    index: int
    jid: str | None
    error: str = ""


@dataclass(slots=True)
class BackendContext:
    """What a backend may know of the run."""

    run: str
    rundir: Path  # as the runner sees it
    mounted_rundir: str  # as the execution host sees it
    forks: int
    wake: Callable[[], None] = field(default=lambda: None)  # ask the runner for a poll soon
    #: tell the user something (a warning): shown by the run's output layer
    message: Callable[[str], None] = field(default=lambda text: None)


@dataclass(frozen=True, slots=True)
class Timing:
    """A backend's cadence in seconds (the `[scheduler]` options of the same names)."""

    #: floor between two batched liveness queries (0: every cycle, for in-memory answers)
    query_interval: float
    #: between two safety-net sweeps of the jobs in flight
    sweep_interval: float
    #: how long a job may be unknown to the scheduler without an rc file before it is lost
    lost_grace: float
    #: how long one scheduler command may take
    command_timeout: float
    #: between the TERM and the KILL of a cancelled job
    cancel_grace: float

    @classmethod
    def resolve(cls, backend: type[Backend[Any]], options: SchedulerBase) -> Timing:
        """Each value from its environment variable, else `options`, else `backend`'s default."""
        values = {}
        for f in fields(cls):
            names = [f"XQDECL_{f.name.upper()}"]
            if f.name == "command_timeout":  # the older, per-backend spelling first
                names.insert(0, f"XQDECL_{backend.name.upper()}_TIMEOUT")
            found = next((env_seconds(n) for n in names if os.environ.get(n, "").strip()), None)
            spec = getattr(options, f.name)
            values[f.name] = (found if found is not None else
                              spec if spec is not None else float(getattr(backend, f.name)))
        return cls(**values)


def env_seconds(name: str) -> float:
    """The duration an environment variable holds (0 allowed); a clear error if unreadable."""
    text = os.environ[name].strip()
    if text in ("0", "0.0", "0s"):
        return 0.0
    try:
        seconds = parse_duration(text)
    except PydanticCustomError as exc:
        raise SpecError(f"environment variable {name}: {exc.message()}") from None
    assert seconds is not None
    return seconds


class Backend(ABC, Generic[O]):
    """A scheduler the runner can submit to, query and cancel on.

    Every call that talks to a scheduler handles many jobs at once: the runner
    never asks one job at a time.
    """

    #: the spec's `scheduler.type` (set from the options model)
    name: ClassVar[str]
    #: the options model the backend is generic over
    options_type: ClassVar[type[SchedulerBase]]
    #: True: the runner hands over every queued job of a group at once and the
    #: backend submits arrays; `forks` becomes the array throttle.
    arrays: ClassVar[bool] = False
    #: True: one `submit` call gets the whole fill (the backend spreads it itself);
    #: False: the runner splits it into `submission_batch` parallel calls
    whole_fill: ClassVar[bool] = False
    #: True: the backend starts jobs that need no wrapper directly (`Submission.direct`)
    direct_jobs: ClassVar[bool] = False
    #: seconds between two event-folder polls when nothing wakes the runner
    poll_interval: ClassVar[float] = 1.0
    # defaults of the cadence (`Timing`); an instance holds the resolved values
    query_interval: float = 10.0
    sweep_interval: float = 30.0
    lost_grace: float = 60.0
    command_timeout: float = 60.0
    cancel_grace: float = 12.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, SchedulerBase):
                    cls.options_type = arg
                    literal = arg.model_fields["type"].default
                    if isinstance(literal, str):
                        cls.name = literal

    @classmethod
    def default_forks(cls) -> int:
        """Jobs in flight when the spec does not say (`forks`)."""
        return 64

    def __init__(self, options: O, ctx: BackendContext) -> None:
        if not isinstance(options, self.options_type):
            raise TypeError(f"{type(self).__name__} takes {self.options_type.__name__}, "
                            f"not {type(options).__name__}")
        self.options: O = options
        self.ctx = ctx
        timing = Timing.resolve(type(self), options)
        for f in fields(timing):
            setattr(self, f.name, getattr(timing, f.name))

    async def _call(self, argv: Sequence[str], timeout: float | None = None, *,
                    stdin: bytes | None = None, check: bool = False) -> Completed:
        """Run one scheduler command (within `command_timeout` unless told otherwise)."""
        from xqdecl.backends.command import run_command

        return await run_command(argv, self.command_timeout if timeout is None else timeout,
                                 stdin=stdin, check=check)

    def directives(self, options: O) -> list[str]:
        """Header lines put at the top of each wrapper (e.g. `#SBATCH --mem=4G`)."""
        return []

    @abstractmethod
    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        """Start the jobs of `batch`; one result per job, in any order."""

    @abstractmethod
    async def cancel(self, jids: Sequence[str]) -> None:
        """Cancel the given jobs (unknown or finished ones are ignored)."""

    @abstractmethod
    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        """One batched liveness query. A jid missing from the answer is unknown
        to the scheduler. Raise BackendError when the query itself failed."""

    async def reattach(self, jid: str | None, start_info: str) -> str | None:
        """An earlier runner's job: its jid when it is still alive, else None.

        `jid` is None when that runner died between submitting and recording
        the id; `start_info` is what the job's wrapper wrote when it started
        ('' if it has not), which may be enough to find it.
        """
        return (await self._still_queued([jid]))[0]

    async def reattach_many(
        self, items: Sequence[tuple[str | None, str]]
    ) -> list[str | None]:
        """`reattach` for many jobs: one batched query, unless the backend finds
        jobs its own way (overrides `reattach`), then one call each."""
        if type(self).reattach is not Backend.reattach:
            return [await self.reattach(jid, info) for jid, info in items]
        return await self._still_queued([jid for jid, _ in items])

    async def _still_queued(self, jids: Sequence[str | None]) -> list[str | None]:
        """Each jid the scheduler still shows pending or running, else None."""
        known = [jid for jid in jids if jid]
        states = await self.query(known) if known else {}
        live = (Liveness.PENDING, Liveness.RUNNING)
        return [jid if jid and jid in states and states[jid].liveness in live else None
                for jid in jids]

    async def kill_now(self, jids: Sequence[str]) -> None:
        """Stop the jobs without a grace (a second Ctrl-C). Defaults to `cancel`."""
        await self.cancel(jids)

    def take_news(self) -> list[Change]:
        """Starts and ends the backend was told directly since the last call (the
        local executor's lines); most backends have none: the job files tell."""
        return []

    def release(self, jid: str) -> None:
        """The runner is done with this job: forget anything kept about it."""

    async def close(self) -> None:
        """Release connections and helper processes."""

    def describe_group(self, count: int, options: O) -> str:
        """A few words on how a group of `count` jobs is submitted (for `plan`)."""
        return f"one submission per job, at most {self.ctx.forks} in flight"
