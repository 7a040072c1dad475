"""Containers: each job runs in its own docker or podman container, or apptainer.

The runner-side process of a job is the runtime's client (`podman run --rm
...`), started detached exactly like a local job (the local backend does the
spawning, the pidfd watch and the process-group bookkeeping; only the argv
differs). Inside, the job's wrapper runs with the run directory mounted where
the wrapper expects it (`mounted_workdir/<run>`, by default the same path), so
the status files land where the poller reads them. A cancel stops the
containers themselves (one `stop` for many), then the clients.

docker and podman start a tiny bash init as the container's PID 1: it forwards
TERM to the wrapper and leaves the wrapper an ordinary process (PID 1 ignores
signals it has no handler for, even KILL from inside the container).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from xqdecl.backends.base import BackendContext, JobState, Liveness, Submission, Submitted
from xqdecl.backends.local import ProcessBackend, _start_ticks
from xqdecl.errors import SchedulerError
from xqdecl.spec import ContainerOptions
from xqdecl.store.layout import tail

#: PID 1 of docker/podman containers: runs the wrapper ($0 = script, $1 = trial) as a
#: child, forwards TERM/INT/HUP to it, exits with its status
INIT = (
    "trap 'kill -TERM \"$c\" 2>/dev/null' TERM INT HUP; "
    '"${BASH:-bash}" "$0" "$1" & c=$!; '
    'while :; do wait "$c"; s=$?; kill -0 "$c" 2>/dev/null || exit "$s"; done'
)
#: runtime errors that only say the container is already gone
GONE = ("no such container", "no container with name", "is not running")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def command_line(
    options: ContainerOptions, *, rundir: str, mounted_rundir: str, index: int, trial: int,
    name: str, cwd: str | None = None,
) -> list[str]:
    """The argv that runs job `index` (trial `trial`) in a container: a pure function."""
    script = f"{mounted_rundir.rstrip('/')}/jobs/{index}/job.sh"
    mounts: list[tuple[str, str]] = [
        (v.split(":")[0], v.split(":")[1]) for v in options.volumes
    ]
    binds = []
    # the job's cwd, when nothing mounts it at its own path already (parents first)
    covered = any(h == c and _inside(cwd or "/", h) for h, c in mounts)
    covered = covered or (rundir == mounted_rundir and _inside(cwd or "/", rundir))
    if cwd and cwd != "/" and not covered:
        binds.append(f"{cwd}:{cwd}")
    binds.append(f"{rundir}:{mounted_rundir}")
    binds.extend(options.volumes)
    shell = shlex.split(options.entrypoint or "bash")
    if options.runtime == "apptainer":
        argv = ["apptainer", "exec"]
        for bind in binds:
            argv += ["--bind", bind]
        return [*argv, *options.runtime_args, options.image, *shell, script, str(trial)]
    argv = [options.runtime, "run", "--rm", "--name", name]
    for bind in binds:
        argv += ["-v", bind]
    if options.user:
        argv += ["--user", options.user]
    argv += ["--entrypoint", shell[0], *options.runtime_args, options.image, *shell[1:]]
    return [*argv, "-c", INIT, script, str(trial)]


def wrapper_cwd(script: Path) -> str | None:
    """The folder a rendered wrapper enters (its `cd -- DIR || ...` line), if any."""
    try:
        with open(script, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("cd -- "):
                    return shlex.split(line)[2]
    except (OSError, ValueError, IndexError):
        pass
    return None


class ContainerBackend(ProcessBackend[ContainerOptions]):
    arrays = False
    lost_grace = 5.0  # the client ends after the container: the rc file is already there

    def __init__(self, options: ContainerOptions, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        digest = hashlib.sha1(str(ctx.rundir).encode()).hexdigest()[:6]
        self._prefix = f"xq-{ctx.run}-{digest}"
        self._runtime: dict[str, str] = {}  # jid -> runtime (a group may pick another)
        self._logs: dict[str, Path] = {}  # jid -> the client's output
        self._final: dict[str, JobState] = {}  # jid -> how its client ended

    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        results = []
        for sub in batch:
            opts: ContainerOptions = sub.options
            name = f"{self._prefix}-{sub.index}-{sub.trial}"
            argv = command_line(
                opts, rundir=str(self.ctx.rundir), mounted_rundir=self.ctx.mounted_rundir,
                index=sub.index, trial=sub.trial, name=name, cwd=wrapper_cwd(sub.script),
            )
            log = self.ctx.rundir / "jobs" / str(sub.index) / f"runtime.{sub.trial}"
            try:  # the client's own output (pull errors, bad options) goes to `log`
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    actions = [(os.POSIX_SPAWN_DUP2, self._devnull, 0),
                               (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]
                    program = shutil.which(argv[0]) or argv[0]
                    pid = os.posix_spawn(program, argv, self._env, file_actions=actions,
                                         setsid=True)
                finally:
                    os.close(fd)
            except OSError as exc:
                results.append(Submitted(sub.index, None, f"cannot start {argv[0]}: {exc}"))
                continue
            jid = f"{pid}.{_start_ticks(pid)}:{name}"
            self._children[jid] = pid
            self._runtime[jid] = opts.runtime
            self._logs[jid] = log
            self._watch_exit(pid, self._on_exit, jid)
            results.append(Submitted(sub.index, jid))
        return results

    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        states = await super().query(jids)
        for jid, state in states.items():
            if state.liveness is Liveness.FAILED and jid in self._logs:
                said = tail(self._logs[jid], 1)
                if said:  # the runtime's own complaint names the cause
                    states[jid] = JobState(state.liveness, f"{state.reason}: {said[0][:300]}")
            if state.liveness in (Liveness.DONE, Liveness.FAILED):
                self._final[jid] = states[jid]  # said again until released (lost_grace > 0)
        for jid in jids:
            if jid not in states and jid in self._final:
                states[jid] = self._final[jid]
        return states

    @staticmethod
    def _alive(jid: str) -> bool:
        return ProcessBackend._alive(jid.partition(":")[0])

    @staticmethod
    def _from_start_info(info: str) -> str | None:
        return None  # the wrapper's pid is in the container's namespace, not ours

    # -- cancel -----------------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        grace = self.cancel_grace
        await self._containers(jids, ["stop", "-t", str(max(1, round(grace)))], grace)
        await super().cancel(jids)

    async def kill_now(self, jids: Sequence[str]) -> None:
        with contextlib.suppress(SchedulerError):
            await self._containers(jids, ["kill"], 0)
        await super().kill_now(jids)

    async def _containers(self, jids: Sequence[str], verb: list[str], grace: float) -> None:
        """One `<runtime> stop|kill NAME...` per runtime for the given jobs' containers."""
        default = self.options.runtime
        by_runtime: dict[str, list[str]] = {}
        for jid in jids:
            runtime = self._runtime.get(jid, default)
            name = jid.partition(":")[2]
            if name and runtime != "apptainer":
                by_runtime.setdefault(runtime, []).append(name)
        for runtime, names in by_runtime.items():
            done = await self._call([runtime, *verb, *names], grace + self.command_timeout)
            lines = [ln for ln in done.err.splitlines() if ln.strip()]
            if done.rc != 0 and not all(any(g in ln.lower() for g in GONE) for ln in lines):
                raise SchedulerError(f"{runtime} {verb[0]} failed: {done.said()}")

    def release(self, jid: str) -> None:
        super().release(jid)
        self._runtime.pop(jid, None)
        self._logs.pop(jid, None)
        self._final.pop(jid, None)

    def describe_group(self, count: int, options: ContainerOptions) -> str:
        return (f"one {options.runtime} container of {options.image} per job, "
                f"at most {self.ctx.forks} in flight")

