"""The interface every backend implements, and the values it exchanges with the runner."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel


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


@dataclass(slots=True)
class Submission:
    """One job (one trial of it) to start."""

    index: int
    trial: int
    name: str
    script: Path  # the job's wrapper, jobs/<index>/job.sh
    group: int  # index of the spec's job group
    options: BaseModel  # validated backend options of the group
    timeout: float | None = None


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


class Backend(ABC):
    """A scheduler the runner can submit to, query and cancel on.

    Every call that talks to a scheduler handles many jobs at once: the runner
    never asks one job at a time.
    """

    name: ClassVar[str]
    #: True: the runner hands over every queued job of a group at once and the
    #: backend submits arrays; `forks` becomes the array throttle.
    arrays: ClassVar[bool] = False
    options_model: ClassVar[type[BaseModel]]
    #: True: one `submit` call gets the whole fill (the backend spreads it itself);
    #: False: the runner splits it into `submission_batch` parallel calls
    whole_fill: ClassVar[bool] = False
    #: seconds between two event-folder polls when nothing wakes the runner
    poll_interval: ClassVar[float] = 1.0
    #: seconds between two batched liveness queries (0: every cycle, for in-memory answers)
    query_interval: ClassVar[float] = 10.0
    #: seconds between two safety-net sweeps of the jobs in flight
    sweep_interval: ClassVar[float] = 30.0
    #: seconds a job may be unknown to the scheduler without an rc file before it is lost
    lost_grace: ClassVar[float] = 60.0

    @classmethod
    def default_forks(cls) -> int:
        """Jobs in flight when the spec does not say (`forks`)."""
        return 64

    def __init__(self, options: BaseModel, ctx: BackendContext) -> None:
        self.options = options
        self.ctx = ctx

    def directives(self, options: BaseModel) -> list[str]:
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

    def release(self, jid: str) -> None:  # noqa: B027 - optional hook
        """The runner is done with this job: forget anything kept about it."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and helper processes."""

    def describe_group(self, count: int, options: BaseModel) -> str:
        """A few words on how a group of `count` jobs is submitted (for `plan`)."""
        if self.arrays and getattr(options, "array", True):
            throttle = getattr(options, "array_throttle", None) or self.ctx.forks
            return (f"native array job(s) of {count} tasks in all (split at the cluster's "
                    f"array size limit), at most {throttle} running at once")
        return f"one submission per job, at most {self.ctx.forks} in flight"
