"""Son of Grid Engine: each group of jobs becomes native array jobs (one `qsub` per chunk).

A chunk of at most `max_aj_tasks` jobs is written as `arrays/<id>.tasks` (line k
= "<index> <trial>" of SGE task k; SGE counts tasks from 1) and `arrays/<id>.sh`,
whose task k execs the job's own wrapper; one `qsub -terse -t 1-n -tc throttle`
submits it, and the job ids are `<job number>.<k>`. Liveness is one `qstat` for
every job in flight, plus one `qacct -j` for jobs that left the queue without
their rc file being seen. A job in error state (`Eqw`: its working directory
or script cannot be used) never runs: it is reported failed with SGE's reason
(one `qstat -j` for all such jobs) and deleted so it does not linger.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Sequence

from xqdecl.backends import liveness
from xqdecl.backends.arrays import ArrayBackend
from xqdecl.backends.base import BackendContext, JobState, Liveness, Submission, Submitted
from xqdecl.errors import SchedulerError
from xqdecl.spec import SgeOptions

#: qsub errors worth a retry of the whole submit (the qmaster is busy or away)
TRANSIENT = re.compile(
    r"unable to (?:contact|send)|commlib error|connection refused|timed out|try (?:again|later)"
    r"|can't (?:connect|reach)",
    re.I,
)
#: `qstat -j` lines "error reason    3:   11/24/2026 22:33:58 [0:5866]: error: can't chdir ..."
ERROR_REASON = re.compile(
    r"^error reason\s+(\d+):\s*(?:\S+ \S+ \[[^\]]*\]:\s*)?(?:error:\s*)?(.*)$"
)


class SgeBackend(ArrayBackend[SgeOptions]):
    submit_name = "qsub"
    transient = TRANSIENT

    prefix = "#$"
    #: `qsub -terse` prints "<job number>" or, for an array, "<job number>.1-10:1"
    jid_regexp = re.compile(r"^(?P<jid>\d+)(?:\.\S+)?\s*$", re.M)
    qconf = "qconf"
    #: qacct reads the whole accounting file: a shorter limit, and a pause after a failure
    qacct_timeout = 30.0
    qacct_pause = 300.0

    def __init__(self, options: SgeOptions, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        self._max_tasks: int | None = None
        self._tasks: dict[str, int] = {}  # array job number -> its task count
        self._errors: dict[str, str] = {}  # jid -> why SGE put it in error state
        self._ended: dict[str, JobState] = {}  # jid -> what qacct said of it
        self._qacct_off = 0.0  # monotonic time before which qacct is not asked

    # -- rendering --------------------------------------------------------------------
    def submit_command(self, options: SgeOptions) -> str:
        return options.qsub

    def option_lines(self, options: SgeOptions) -> list[str]:
        """The `#$` lines of the typed options (each value one word)."""
        lines = [] if options.queue is None else [f"{self.prefix} -q {options.queue}"]
        lines += [f"{self.prefix} -l {value}" for value in options.resources]
        if options.pe is not None:
            lines.append(f"{self.prefix} -pe {' '.join(options.pe.split())}")
        return lines

    def array_script(self, aid: str, options: SgeOptions) -> str:
        """The script whose task k (from 1) runs line k of `arrays/<aid>.tasks`."""
        root = self.ctx.mounted_rundir.rstrip("/") or "/"
        arrays, jobs = shlex.quote(f"{root}/arrays"), shlex.quote(f"{root}/jobs")
        head = ["#!/usr/bin/env bash", *self.directives(options)]
        body = f"""\
# xqdecl array {aid} of run {self.ctx.run}: SGE task k runs line k of {aid}.tasks
k=${{SGE_TASK_ID:?not an array task}}
mapfile -s "$((k - 1))" -n 1 line <{arrays}/{aid}.tasks
read -r index trial <<<"${{line[0]:-}}"
if [ -z "${{index:-}}" ]; then echo "xqdecl: {aid}.tasks has no line for task $k" >&2; exit 97; fi
exec bash {jobs}/"$index"/job.sh "$trial"
"""
        return "\n".join(head) + "\n" + body

    # -- scheduler commands -----------------------------------------------------------
    async def max_tasks(self) -> int:
        """The cell's `max_aj_tasks` (tasks per array job), read once; 75000 if unknown."""
        if self._max_tasks is None:
            qconf = self._sibling(self.qconf)
            self._max_tasks = 75000
            with contextlib.suppress(SchedulerError):
                rc, out, _ = await self._call([qconf, "-sconf"])
                found = re.search(r"^max_aj_tasks\s+(\d+)", out, re.M)
                if rc == 0 and found and int(found[1]) > 0:
                    self._max_tasks = int(found[1])
        return self._max_tasks

    # -- submit -----------------------------------------------------------------------
    async def chunk_size(self, options: SgeOptions) -> int:
        return await self.max_tasks()

    def _common(self, aid: str, options: SgeOptions) -> list[str]:
        """qsub's own arguments: name tag, one log per submission under the rundir, bash."""
        return [options.qsub, "-terse", "-N", self.tag, "-o", self._log_file(aid),
                "-j", "y", "-S", "/bin/bash", "-ac", f"xqdecl={self._token(aid)}"]  # fmt: skip

    async def _submit_array(
        self, group: int, chunk: list[Submission], options: SgeOptions, submitted: bool
    ) -> list[Submitted]:
        aid = self.ids.new(group, chunk)
        script = self._write_script(aid, options)
        throttle = max(1, self.ctx.forks)
        argv = [*self._common(aid, options), "-t", f"1-{len(chunk)}", "-tc", str(throttle)]
        jid, error = await self._submit_call([*argv, str(script)], aid, submitted)
        if jid is None:
            return [Submitted(s.index, None, error) for s in chunk]
        self._tasks[jid] = len(chunk)
        return [Submitted(s.index, f"{jid}.{k}") for k, s in enumerate(chunk, start=1)]

    async def _submit_one(self, sub: Submission, options: SgeOptions, submitted: bool
                          ) -> Submitted:
        aid = self.ids.new(sub.group, [sub])
        argv = [*self._common(aid, options), *self._flags(options), str(sub.script), str(sub.trial)]
        jid, error = await self._submit_call(argv, aid, submitted)
        return Submitted(sub.index, jid, error)

    @staticmethod
    def _said(rc: int, out: str, err: str) -> str:
        lines = [ln.strip() for ln in (err + out).splitlines() if ln.strip() != "Exiting."]
        return next((ln for ln in reversed(lines) if ln), f"exit status {rc}")

    async def _drop_orphans(self, aid: str) -> None:
        """Delete a submission that qsub may have made although it reported failure
        (found by the context variable `xqdecl=<token>` it was given)."""
        with contextlib.suppress(SchedulerError):
            rc, out, _ = await self._call([self.options.qstat, "-j", self.tag])
            number, ids = "", []
            for line in out.splitlines():
                if line.startswith("job_number:"):
                    number = line.split(":", 1)[1].strip()
                elif line.startswith("context:") and f"xqdecl={self._token(aid)}" in line:
                    ids.append(number)
            if rc == 0 and ids:
                await self._call([self.options.qdel, *ids])

    # -- query ------------------------------------------------------------------------
    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        wanted = set(jids)
        if not wanted:
            return {}
        done = await self._call([self.options.qstat])
        if done.rc != 0:
            raise done.error("qstat")
        states = liveness.parse_qstat(done.out, wanted)
        broken = [j for j, st in states.items() if st.liveness is Liveness.FAILED]
        new = [j for j in broken if j not in self._errors]
        if new:
            await self._error_reasons(new, {j: states[j].reason for j in new})
            await self._delete(new)
        for jid in wanted.intersection(self._errors):
            states[jid] = JobState(Liveness.FAILED, self._errors[jid])
        missing = wanted - states.keys()
        if missing:
            states.update(await self._qacct(missing))
        return states

    async def _error_reasons(self, jids: list[str], words: dict[str, str]) -> None:
        """Remember why SGE holds these jobs in error state (one `qstat -j` for all)."""
        numbers = sorted({j.partition(".")[0] for j in jids})
        reasons: dict[tuple[str, str], str] = {}
        with contextlib.suppress(SchedulerError):
            _, out, _ = await self._call([self.options.qstat, "-j", ",".join(numbers)])
            number = ""
            for line in out.splitlines():
                if line.startswith("job_number:"):
                    number = line.split(":", 1)[1].strip()
                elif found := ERROR_REASON.match(line):
                    reasons.setdefault((number, found[1]), found[2].strip())
        for jid in jids:
            number, _, task = jid.partition(".")
            said = reasons.get((number, task or "1")) or next(
                (r for (n, _), r in reasons.items() if n == number), "no reason given"
            )
            self._errors[jid] = f"{words.get(jid) or 'Eqw'}: {said}"

    async def _qacct(self, missing: set[str]) -> dict[str, JobState]:
        """What the accounting file says of jobs that left the queue (one `qacct -j`)."""
        states = {j: self._ended[j] for j in missing if j in self._ended}
        ask = missing - states.keys()
        if not ask or time.monotonic() < self._qacct_off:
            return states
        numbers = {j.partition(".")[0] for j in ask}
        target = next(iter(numbers)) if len(numbers) == 1 else self.tag
        try:
            rc, out, err = await self._call([self.options.qacct, "-j", target], self.qacct_timeout)
        except SchedulerError:
            rc, out, err = -1, "", "timed out"
        if rc != 0 and "not found" not in err:
            if not self._qacct_off:
                said = (err.strip() or f"exit status {rc}").splitlines()[-1]
                self.ctx.message(f"warning: qacct failed ({said}); jobs that leave the queue "
                                 "are judged by their rc file alone")
            self._qacct_off = time.monotonic() + self.qacct_pause  # no accounting, or too slow
            return states
        # job numbers are reused (a reset cell): only records under this run's job name count
        name = re.compile(rf"^jobname\s+{re.escape(self.tag)}\s*$", re.M)
        ours = [b for b in re.split(r"^=+[ \t]*$", out, flags=re.M) if name.search(b)]
        found = liveness.parse_qacct("".join(f"=====\n{b}\n" for b in ours), ask)
        self._ended.update(found)
        states.update(found)
        return states

    # -- cancel -----------------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        if jids:
            await self._delete(jids, strict=True)

    async def _delete(self, jids: Sequence[str], strict: bool = False) -> None:
        """One `qdel` (per 5000 targets): a whole array by its number, else its tasks."""
        by_array: dict[str, set[str]] = {}
        for jid in jids:
            by_array.setdefault(jid.partition(".")[0], set()).add(jid)
        targets: list[str] = []
        for number, members in by_array.items():
            total = self._tasks.get(number, 0)
            whole = (total and len(members) >= total) or members == {number}
            targets.extend([number] if whole else sorted(members))
        for start in range(0, len(targets), 5000):
            try:
                done = await self._call([self.options.qdel, *targets[start : start + 5000]])
            except SchedulerError:
                if strict:
                    raise
                continue
            lines = [ln for ln in (done.err + done.out).splitlines() if ln.startswith("denied")]
            if strict and done.rc != 0 and not all("does not exist" in ln for ln in lines):
                raise done.error("qdel")

    def release(self, jid: str) -> None:
        self._errors.pop(jid, None)
        self._ended.pop(jid, None)

    def describe_group(self, count: int, options: SgeOptions) -> str:
        if not options.array:
            return f"one qsub per job, at most {self.ctx.forks} in flight"
        return (f"SGE array job(s) of {count} tasks in all (qsub -t, split at the cell's "
                f"max_aj_tasks), at most {self.ctx.forks} running at once (-tc)")
