"""Google Cloud Batch: each chunk of a group becomes one Batch job of `taskCount` tasks.

Like Slurm arrays: a chunk is written as `arrays/<id>.tasks` (line k = "<index>
<trial>" of task k) and `arrays/<id>.sh`, whose task k (`BATCH_TASK_INDEX`)
execs the job's own wrapper; `arrays/<id>.json` is the job definition given
to `gcloud batch jobs submit NAME --config FILE`. The tasks read these files and
write their status files under `mounted_workdir` on the VMs, so the run
directory must be on storage both sides see: a bucket mounted with Cloud
Storage FUSE on the runner's host (the workdir) and on the VMs (`bucket`,
mounted at `mounted_workdir`). Job ids are `<batch job name>.<task>`; liveness
is one `gcloud batch jobs list` per project and location for every job of the
run (found by its label), and a cancel deletes whole Batch jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import shlex
import time
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from xqdecl.backends.arrays import ArrayIds, by_group
from xqdecl.backends.base import Backend, BackendContext, JobState, Liveness, Submission, Submitted
from xqdecl.errors import SchedulerError, SpecError
from xqdecl.spec import GbatchOptions
from xqdecl.store.layout import write_atomic

#: Batch limits: tasks per task group, parallel tasks per job
MAX_TASKS = 100_000
MAX_PARALLELISM = 5_000
#: job state -> liveness of every task of the job (a task's rc file still decides)
STATES = {
    "STATE_UNSPECIFIED": Liveness.PENDING, "QUEUED": Liveness.PENDING,
    "SCHEDULED": Liveness.PENDING, "RUNNING": Liveness.RUNNING,
    "SUCCEEDED": Liveness.DONE, "FAILED": Liveness.FAILED,
    "CANCELLATION_IN_PROGRESS": Liveness.FAILED, "CANCELLED": Liveness.FAILED,
    "DELETION_IN_PROGRESS": Liveness.FAILED,
}  # fmt: skip
TRANSIENT = re.compile(r"UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|timed? ?out|"
                       r"connection|try again|\b(429|500|502|503|504)\b", re.I)
_MEM = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", re.I)


def slug(text: str, size: int) -> str:
    """Lowercase letters, digits and '-' (Batch job names, label values)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:size].strip("-")


def mebibytes(mem: str) -> int:
    """'4G', '512M', '4096' (MiB) -> MiB."""
    m = _MEM.fullmatch(mem.strip())
    if not m:
        raise ValueError(f"cannot read memory {mem!r}: write e.g. 512M or 4G")
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[m[2].upper()]
    return max(1, int(float(m[1]) * scale))


def merge(base: Any, over: Any) -> Any:
    """`over` merged into `base`: dicts key by key, lists of dicts item by item."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(over, list) and all(
        isinstance(v, dict) for v in (*base, *over)
    ):
        n = max(len(base), len(over))
        return [merge(base[i], over[i]) if i < min(len(base), len(over))
                else copy.deepcopy((over if i < len(over) else base)[i]) for i in range(n)]
    return copy.deepcopy(over)


def job_config(options: GbatchOptions, *, script: str, count: int, parallelism: int,
               labels: dict[str, str], mount_path: str, timeout: float | None = None
               ) -> dict[str, Any]:
    """The Batch job definition (the REST `Job` resource) of one array: a pure function."""
    if options.image:
        runnable: dict[str, Any] = {"container": {
            "imageUri": options.image, "entrypoint": "bash", "commands": [script]}}
    else:
        runnable = {"script": {"text": f"exec bash {shlex.quote(script)}"}}
    spec: dict[str, Any] = {"runnables": [runnable], "maxRetryCount": 0}
    resources = {}
    if options.cpus:
        resources["cpuMilli"] = options.cpus * 1000
    if options.mem:
        resources["memoryMib"] = mebibytes(options.mem)
    if resources:
        spec["computeResource"] = resources
    if timeout:  # the wrapper times out first; this is the backstop
        spec["maxRunDuration"] = f"{int(timeout) + 120}s"
    if options.bucket:
        remote = options.bucket.removeprefix("gs://").rstrip("/")
        spec["volumes"] = [{"gcs": {"remotePath": remote}, "mountPath": mount_path}]
    group = {"taskCount": count, "parallelism": max(1, min(parallelism, count, MAX_PARALLELISM)),
             "taskSpec": spec}
    config: dict[str, Any] = {"taskGroups": [group], "labels": labels,
                              "logsPolicy": {"destination": "CLOUD_LOGGING"}}
    if options.machine_type:
        config["allocationPolicy"] = {"instances": [{"policy": {
            "machineType": options.machine_type}}]}
    return merge(config, options.job_config) if options.job_config else config


class GbatchBackend(Backend[GbatchOptions]):
    arrays = True
    poll_interval = 2.0
    query_interval = 20.0  # Batch allows 15,000 reads a minute per region: be a good tenant
    sweep_interval = 60.0
    lost_grace = 120.0  # a FUSE-mounted bucket may show the rc file late
    command_timeout = 120.0

    @classmethod
    def default_forks(cls) -> int:
        return 1000

    def __init__(self, options: GbatchOptions, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        if ".xqdecl-staging" in ctx.rundir.parts:  # a gs:// workdir: scripts stay local
            raise SpecError("gbatch needs a workdir the VMs can read: use a local workdir on a "
                            "Cloud Storage FUSE mount with `bucket` (see docs/backends.md); "
                            "a gs:// workdir is not supported by gbatch yet")
        self.run_label = hashlib.sha1(str(ctx.rundir).encode()).hexdigest()[:12]
        self._where: dict[str, tuple[str | None, str | None]] = {}  # job -> (project, location)
        self.ids = ArrayIds(ctx.rundir)
        self._listed: tuple[float, str | None, str | None, dict[str, JobState]] = (
            -1e9, None, None, {})

    def _cmd(self, options: GbatchOptions, *args: str) -> list[str]:
        argv = [options.gcloud, *args]
        argv += ["--location", options.location] if options.location else []
        return argv + (["--project", options.project] if options.project else [])

    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        results: list[Submitted] = []
        for group, group_subs in by_group(batch):
            for start in range(0, len(group_subs), MAX_TASKS):
                chunk = group_subs[start : start + MAX_TASKS]
                results += await self._submit_array(group, chunk, any(r.jid for r in results))
        return results

    def array_script(self, aid: str) -> str:
        root = self.ctx.mounted_rundir.rstrip("/")
        arrays, jobs = shlex.quote(f"{root}/arrays"), shlex.quote(f"{root}/jobs")
        return f"""#!/usr/bin/env bash
# xqdecl array {aid} of run {self.ctx.run}: task k runs line k+1 of {aid}.tasks
k=${{BATCH_TASK_INDEX:?not a Batch task}}
mapfile -s "$k" -n 1 line <{arrays}/{aid}.tasks
read -r index trial <<<"${{line[0]:-}}"
if [ -z "${{index:-}}" ]; then echo "xqdecl: {aid}.tasks has no line for task $k" >&2; exit 97; fi
exec bash {jobs}/"$index"/job.sh "$trial"
"""

    async def _submit_array(self, group: int, chunk: list[Submission], submitted: bool
                            ) -> list[Submitted]:
        options: GbatchOptions = chunk[0].options
        aid = self.ids.new(group, chunk)
        arrays = self.ids.arrays
        write_atomic(arrays / f"{aid}.sh", self.array_script(aid))
        stamp = format(time.time_ns() // 1_000_000, "x")
        name = f"xq-{slug(self.ctx.run, 24)}-{self.run_label[:6]}-{slug(aid, 12)}-{stamp}"
        labels = {"xqdecl-run": self.run_label, "xqdecl-name": slug(self.ctx.run, 63)}
        root = self.ctx.mounted_rundir.rstrip("/")
        config = job_config(options, script=f"{root}/arrays/{aid}.sh", count=len(chunk),
                            parallelism=self.ctx.forks, labels=labels, timeout=chunk[0].timeout,
                            mount_path=str(PurePosixPath(root).parent))
        path = arrays / f"{aid}.json"
        write_atomic(path, json.dumps(config, indent=1))
        argv = self._cmd(options, "batch", "jobs", "submit", name, "--config", str(path),
                         "--format=json")
        try:
            rc, out, err = await self._call(argv)
        except SchedulerError as exc:
            if not submitted:
                raise
            return [Submitted(s.index, None, str(exc)) for s in chunk]
        if rc != 0:
            said = (err.strip() or out.strip() or f"exit status {rc}").splitlines()[-1]
            if TRANSIENT.search(said) and not submitted:
                raise SchedulerError(f"gcloud batch jobs submit failed: {said}")
            return [Submitted(s.index, None, f"gcloud batch jobs submit failed: {said}")
                    for s in chunk]
        with contextlib.suppress(ValueError, AttributeError):
            name = json.loads(out).get("name", name).rsplit("/", 1)[-1]
        self._where[name] = (options.project, options.location)
        return [Submitted(s.index, f"{name}.{k}") for k, s in enumerate(chunk)]

    # -- query --------------------------------------------------------------------------
    def _jobs(self, jids: Sequence[str]) -> dict[tuple[str | None, str | None], set[str]]:
        """Batch job names by (project, location)."""
        default = (self.options.project, self.options.location)
        out: dict[tuple[str | None, str | None], set[str]] = {}
        for jid in jids:
            name = jid.rpartition(".")[0]
            out.setdefault(self._where.get(name, default), set()).add(name)
        return out

    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        found: dict[str, JobState] = {}
        for project, location in self._jobs(jids):
            found.update(await self._list(project, location))
        return {j: found[j.rpartition(".")[0]] for j in jids if j.rpartition(".")[0] in found}

    async def _list(self, project: str | None, location: str | None) -> dict[str, JobState]:
        """One `gcloud batch jobs list` of this run's jobs: {job name: state}."""
        opts = self.options.model_copy(update={"project": project, "location": location})
        argv = self._cmd(opts, "batch", "jobs", "list",
                         f"--filter=labels.xqdecl-run={self.run_label}", "--format=json")
        rc, out, err = await self._call(argv)
        if rc != 0:
            raise SchedulerError(f"gcloud batch jobs list failed: {(err.strip() or out)[-300:]}")
        try:
            listed = json.loads(out or "[]")
        except ValueError:
            raise SchedulerError(f"gcloud batch jobs list: not JSON: {out[:200]!r}") from None
        found = {}
        for job in listed if isinstance(listed, list) else []:
            word = str((job.get("status") or {}).get("state", "STATE_UNSPECIFIED"))
            liveness = STATES.get(word, Liveness.PENDING)
            reason = word if liveness is Liveness.FAILED else ""
            found[str(job.get("name", "")).rsplit("/", 1)[-1]] = JobState(liveness, reason)
        self._listed = (time.monotonic(), project, location, found)
        return found

    async def reattach(self, jid: str | None, start_info: str) -> str | None:
        """Called once per live job on resume: one listing serves them all (for 10 s)."""
        if not jid:
            return None
        [where] = self._jobs([jid])
        at, *seen, found = self._listed
        if time.monotonic() - at > 10 or tuple(seen) != where:
            found = await self._list(*where)
        state = found.get(jid.rpartition(".")[0])
        alive = state is not None and state.liveness in (Liveness.PENDING, Liveness.RUNNING)
        return jid if alive else None

    # -- cancel -------------------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        """Delete the Batch jobs of these tasks (Batch stops whole jobs, not single tasks)."""
        self._listed = (-1e9, None, None, {})
        limit = asyncio.Semaphore(8)
        errors: list[str] = []

        async def delete(project: str | None, location: str | None, name: str) -> None:
            opts = self.options.model_copy(update={"project": project, "location": location})
            async with limit:
                rc, out, err = await self._call(
                    self._cmd(opts, "batch", "jobs", "delete", name, "--quiet"))
            if rc != 0 and "not found" not in (err + out).lower():
                errors.append(f"{name}: {(err.strip() or out.strip())[-200:]}")

        await asyncio.gather(*(delete(p, loc, n) for (p, loc), names in self._jobs(jids).items()
                               for n in sorted(names)))
        if errors:
            raise SchedulerError("gcloud batch jobs delete failed: " + "; ".join(errors))

    def describe_group(self, count: int, options: GbatchOptions) -> str:
        chunks = -(-count // MAX_TASKS)
        return (f"{chunks} Batch job(s) of up to {MAX_TASKS} tasks, "
                f"{min(self.ctx.forks, MAX_PARALLELISM)} in parallel")
