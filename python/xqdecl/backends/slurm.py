"""Slurm: each group of jobs becomes native job arrays (one `sbatch` per chunk).

A chunk of at most `MaxArraySize` jobs is written as `arrays/<id>.tasks` (line k
= "<index> <trial>" of task k) and `arrays/<id>.sh`, whose task k execs the
job's own wrapper; one `sbatch --array=0-(n-1)%throttle` submits it, and the
job ids are `<array job>_<k>`. Liveness is one `squeue` for every job in
flight, plus one `sacct` for the jobs squeue no longer shows.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Sequence

from xqdecl.backends import liveness
from xqdecl.backends.arrays import ArrayBackend
from xqdecl.backends.base import BackendContext, JobState, Submission, Submitted
from xqdecl.errors import SchedulerError
from xqdecl.spec import SlurmOptions

#: scheduler errors worth a retry of the whole submit (the controller is busy or away)
TRANSIENT = re.compile(r"timed out|unable to contact|connection refused|try again|busy", re.I)


class SlurmBackend(ArrayBackend[SlurmOptions]):
    submit_name = "sbatch"
    transient = TRANSIENT

    prefix = "#SBATCH"
    #: `sbatch --parsable` prints "<id>" or "<id>;<cluster>"
    jid_regexp = re.compile(r"^(?P<jid>\d+)(?:;\S+)?$", re.M)
    scontrol = "scontrol"
    squeue_format = "%i|%T|%r|%A"
    #: more array ids than this: ask squeue by job name instead of by `-j` list
    max_listed_ids = 2000

    def __init__(self, options: SlurmOptions, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        self._config: dict[str, str] | None = None
        self._raw: dict[str, str] = {}  # "<array>_<task>" -> raw job id (for `sacct -c`)
        self._tasks: dict[str, tuple[int, str]] = {}  # array job id -> (tasks, "arrays/<id>")

    # -- rendering --------------------------------------------------------------------
    def submit_command(self, options: SlurmOptions) -> str:
        return options.sbatch

    def option_lines(self, options: SlurmOptions) -> list[str]:
        """The `#SBATCH` lines of the typed options (each value one word)."""
        o = options
        values = [("--partition", o.partition), ("--time", o.time), ("--mem", o.mem),
                  ("--cpus-per-task", o.cpus_per_task), ("--gres", o.gres),
                  ("--account", o.account), ("--qos", o.qos)]
        return [f"{self.prefix} {flag}={value}" for flag, value in values if value is not None]

    def array_script(self, aid: str, options: SlurmOptions) -> str:
        """The script whose task k runs line k+1 of `arrays/<aid>.tasks`."""
        root = self.ctx.mounted_rundir.rstrip("/") or "/"
        arrays = shlex.quote(f"{root}/arrays")
        jobs = shlex.quote(f"{root}/jobs")
        log_file = self._log_file(aid)
        head = [
            "#!/usr/bin/env bash",
            f"{self.prefix} --job-name={self.tag}",
            f"{self.prefix} --output={log_file}",
            f"{self.prefix} --error={log_file}",
            f"{self.prefix} --open-mode=append",
            *self.directives(options),
        ]
        body = f"""\
# xqdecl array {aid} of run {self.ctx.run}: task k runs line k+1 of {aid}.tasks
k=${{SLURM_ARRAY_TASK_ID:?not an array task}}
mapfile -s "$k" -n 1 line <{arrays}/{aid}.tasks
read -r index trial <<<"${{line[0]:-}}"
if [ -z "${{index:-}}" ]; then echo "xqdecl: {aid}.tasks has no line for task $k" >&2; exit 97; fi
printf '%s_%s %s\\n' "${{SLURM_ARRAY_JOB_ID:-}}" "$k" "${{SLURM_JOB_ID:-}}" >>{arrays}/{aid}.jobids
exec bash {jobs}/"$index"/job.sh "$trial"
"""
        return "\n".join(head) + "\n" + body

    # -- scheduler commands -----------------------------------------------------------
    async def config(self) -> dict[str, str]:
        """`scontrol show config`, read once (an empty dict when it cannot be read)."""
        if self._config is None:
            scontrol = self._sibling(self.scontrol)
            self._config = {}
            with contextlib.suppress(SchedulerError):
                rc, out, _ = await self._call([scontrol, "show", "config"])
                if rc == 0:
                    for line in out.splitlines():
                        key, sep, value = line.partition("=")
                        if sep:
                            self._config[key.strip()] = value.strip()
        return self._config

    async def chunk_size(self, options: SlurmOptions) -> int:
        """`max_array_size`, else the cluster's MaxArraySize (1001 if unknown)."""
        if options.max_array_size:
            return options.max_array_size
        value = (await self.config()).get("MaxArraySize", "")
        return int(value) if value.isdigit() and int(value) > 0 else 1001

    # -- submit -----------------------------------------------------------------------
    async def _submit_array(
        self, group: int, chunk: list[Submission], options: SlurmOptions, submitted: bool
    ) -> list[Submitted]:
        aid = self.ids.new(group, chunk)
        script = self._write_script(aid, options)
        throttle = options.array_throttle or self.ctx.forks
        argv = [options.sbatch, "--parsable", f"--comment={self._comment(aid)}"]
        argv += [f"--array=0-{len(chunk) - 1}%{max(1, throttle)}", str(script)]
        jid, error = await self._submit_call(argv, aid, submitted)
        if jid is None:
            return [Submitted(s.index, None, error) for s in chunk]
        self._tasks[jid] = (len(chunk), aid)
        return [Submitted(s.index, f"{jid}_{k}") for k, s in enumerate(chunk)]

    async def _submit_one(
        self, sub: Submission, options: SlurmOptions, submitted: bool
    ) -> Submitted:
        aid = self.ids.new(sub.group, [sub])
        log_file = self._log_file(aid)
        argv = [options.sbatch, "--parsable", f"--comment={self._comment(aid)}"]
        argv += [f"--job-name={self.tag}", f"--output={log_file}", f"--error={log_file}"]
        argv += [*self._flags(options), str(sub.script), str(sub.trial)]
        jid, error = await self._submit_call(argv, aid, submitted)
        return Submitted(sub.index, jid, error)

    def _comment(self, aid: str) -> str:
        return f"xqdecl:{self._token(aid)}"

    async def _drop_orphans(self, aid: str) -> None:
        """Cancel a submission that sbatch may have made although it reported failure."""
        with contextlib.suppress(SchedulerError):
            argv = [self.options.squeue, "-h", "-t", "all", f"--name={self.tag}", "-o", "%F|%k"]
            rc, out, _ = await self._call(argv)
            token = self._comment(aid)
            ids = [ln.split("|")[0] for ln in out.splitlines() if ln.endswith("|" + token)]
            if rc == 0 and ids:
                await self._call([self.options.scancel, *sorted(set(ids))])

    # -- query ------------------------------------------------------------------------
    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        wanted = set(jids)
        if not wanted:
            return {}
        bases = sorted({j.partition("_")[0] for j in wanted})
        argv = [self.options.squeue, "-h", "-r", "-t", "all", "-o", self.squeue_format]
        if len(bases) > self.max_listed_ids:
            argv.append(f"--name={self.tag}")
        else:
            argv.append("--jobs=" + ",".join(bases))
        done = await self._call(argv)
        rc, out, err = done
        if rc != 0 and "invalid job id" not in err.lower():
            raise done.error("squeue")
        states = liveness.parse_squeue(out, wanted) if rc == 0 else {}
        for line in out.splitlines():  # remember raw ids of tasks that have started
            fields = line.split("|")
            if len(fields) >= 4 and fields[1] != "PENDING" and "_" in fields[0]:
                self._raw[fields[0]] = fields[3]
        missing = wanted - states.keys()
        if missing:
            states.update(await self._sacct(missing))
        return states

    async def _sacct(self, missing: set[str]) -> dict[str, JobState]:
        config = await self.config()
        argv = [self.options.sacct, "-n", "-P"]
        if config.get("AccountingStorageType", "") == "accounting_storage/none":
            if "filetxt" not in config.get("JobCompType", ""):
                return {}  # nothing keeps finished jobs: squeue was the only source
            self._load_raw_ids(missing)
            by_raw = {self._raw.get(j, j): j for j in missing if "_" not in j or j in self._raw}
            if not by_raw:
                return {}
            argv += ["-c", "-o", "JobID,State", "--jobs=" + ",".join(sorted(by_raw))]
        else:
            by_raw = {}
            bases = sorted({j.partition("_")[0] for j in missing})
            argv += ["-X", "-o", "JobID,State,ExitCode", "--jobs=" + ",".join(bases)]
        done = await self._call(argv)
        if done.rc != 0:
            raise done.error("sacct")
        out = done.out
        if not by_raw:
            return liveness.parse_sacct(out, missing)
        return {by_raw[r]: st for r, st in liveness.parse_sacct(out, set(by_raw)).items()}

    def _load_raw_ids(self, missing: set[str]) -> None:
        """Raw job ids of array tasks, from the `arrays/<id>.jobids` lines
        ("<array job>_<task> <raw id>") that each task appends when it starts."""
        unknown = {j.partition("_")[0] for j in missing if "_" in j and j not in self._raw}
        if not unknown:
            return
        aids = [self._tasks.get(base, (0, ""))[1] for base in unknown]
        arrays = self.ctx.rundir / "arrays"
        files = (
            [arrays / f"{aid}.jobids" for aid in aids]
            if all(aids)
            else sorted(arrays.glob("*.jobids"))  # a resumed run: no record of which file
        )
        for path in files:
            with contextlib.suppress(OSError):
                for line in path.read_text().splitlines():
                    jid, _, raw = line.partition(" ")
                    if raw.strip().isdigit():
                        self._raw.setdefault(jid, raw.strip())

    # -- cancel -----------------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        if not jids:
            return
        by_array: dict[str, list[str]] = {}
        for jid in jids:
            by_array.setdefault(jid.partition("_")[0], []).append(jid)
        targets: list[str] = []
        for base, members in by_array.items():
            total, _ = self._tasks.get(base, (0, ""))
            if total and len(set(members)) >= total:
                targets.append(base)  # the whole array: one id cancels every task
            else:
                targets.extend(members)
        for start in range(0, len(targets), 5000):
            done = await self._call([self.options.scancel, *targets[start : start + 5000]])
            lines = [ln for ln in done.err.splitlines() if ln.strip()]
            if done.rc != 0 and not all("invalid job id" in ln.lower() for ln in lines):
                raise done.error("scancel")

    def release(self, jid: str) -> None:
        self._raw.pop(jid, None)

    def describe_group(self, count: int, options: SlurmOptions) -> str:
        if not options.array:
            return super().describe_group(count, options)
        throttle = options.array_throttle or self.ctx.forks
        return (f"native array job(s) of {count} tasks in all (split at the cluster's "
                f"array size limit), at most {throttle} running at once")
