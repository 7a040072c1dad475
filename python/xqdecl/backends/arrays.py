"""What the cluster backends that submit job arrays (Slurm, SGE) have in common.

A group's queued jobs go out as arrays of at most `chunk_size` tasks; task k of
the array `<aid>` runs the wrapper named by line k of `arrays/<aid>.tasks`
(`<index> <trial>`). A group with `array = false` is submitted one job per call.
A submit command that fails in a way worth retrying, before anything of the
batch was accepted, raises SchedulerError so the runner retries the whole batch;
a submission the scheduler may have made although its command failed is
looked up by a token and cancelled. The gbatch backend, whose arrays are Batch
jobs, uses `by_group` and `ArrayIds` too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import ClassVar, TypeVar

from xqdecl.backends.base import Backend, BackendContext, Submission, Submitted
from xqdecl.errors import SchedulerError
from xqdecl.spec.schedulers import ClusterOptions
from xqdecl.store.layout import write_atomic

C = TypeVar("C", bound=ClusterOptions)


def by_group(batch: Sequence[Submission]) -> Iterator[tuple[int, list[Submission]]]:
    """The batch's jobs by group (and by options, which a group's jobs share), by index."""

    def key(s: Submission) -> tuple[int, str]:
        return s.group, s.options.model_dump_json()

    for (group, _), subs in groupby(sorted(batch, key=lambda s: (key(s), s.index)), key):
        yield group, list(subs)


class ArrayIds:
    """Fresh submission ids `g<group>-<n>` of a rundir, each with its tasks file."""

    def __init__(self, rundir: Path) -> None:
        self.arrays = rundir / "arrays"
        self._seq = 0

    def new(self, group: int, subs: Sequence[Submission]) -> str:
        """An id whose `arrays/<id>.tasks` did not exist, now holding `<index> <trial>` lines."""
        self.arrays.mkdir(parents=True, exist_ok=True)
        while True:
            self._seq += 1
            aid = f"g{group}-{self._seq}"
            try:
                fd = os.open(self.arrays / f"{aid}.tasks", os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write("".join(f"{s.index} {s.trial}\n" for s in subs))
            return aid


class ArrayBackend(Backend[C]):
    """A batch scheduler whose groups go out as job arrays (`array = false`: one job each)."""

    arrays = True
    #: the submit command's name, in messages ("sbatch", "qsub")
    submit_name: ClassVar[str]
    #: the job id in the submit command's output
    jid_regexp: ClassVar[re.Pattern[str]]
    #: submit errors worth a retry of the whole batch (the controller is busy or away)
    transient: ClassVar[re.Pattern[str]]
    #: the header lines' prefix ("#SBATCH", "#$")
    prefix: ClassVar[str]

    def __init__(self, options: C, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        self.tag = f"xq-{ctx.run}"
        self.ids = ArrayIds(ctx.rundir)

    # -- commands ---------------------------------------------------------------------
    @abstractmethod
    def submit_command(self, options: C) -> str:
        """The submit command the options name (e.g. `sbatch = "/opt/slurm/bin/sbatch"`)."""

    def _sibling(self, command: str) -> str:
        """`command` from the submit command's folder when the spec gave a path to it."""
        submit = self.submit_command(self.options)
        if os.sep in submit and Path(submit).with_name(command).exists():
            return str(Path(submit).with_name(command))
        return command

    # -- rendering --------------------------------------------------------------------
    @abstractmethod
    def option_lines(self, options: C) -> list[str]:
        """The header lines the typed options make (values were checked by the model)."""

    def directives(self, options: C) -> list[str]:
        """The header lines: from the options, then the raw `directives`."""
        lines = self.option_lines(options)
        for raw in options.directives:
            raw = raw.strip()
            lines.append(raw if raw.startswith(self.prefix) else f"{self.prefix} {raw}")
        return lines

    def _flags(self, options: C) -> list[str]:
        """The directives as the submit command's arguments."""
        return [a for d in self.directives(options) for a in shlex.split(d[len(self.prefix) :])]

    # -- submit -----------------------------------------------------------------------
    @abstractmethod
    async def chunk_size(self, options: C) -> int:
        """Tasks per array at most."""

    @abstractmethod
    async def _submit_array(
        self, group: int, chunk: list[Submission], options: C, submitted: bool
    ) -> list[Submitted]: ...

    @abstractmethod
    async def _submit_one(self, sub: Submission, options: C, submitted: bool) -> Submitted: ...

    @abstractmethod
    async def _drop_orphans(self, aid: str) -> None:
        """Cancel what the submission `aid` may have made although its command failed."""

    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        results: list[Submitted] = []
        for group, group_subs in by_group(batch):
            options: C = group_subs[0].options
            if not options.array:
                for sub in group_subs:
                    results.append(await self._submit_one(sub, options, self._any(results)))
                continue
            size = await self.chunk_size(options)
            for start in range(0, len(group_subs), size):
                chunk = group_subs[start : start + size]
                results.extend(await self._submit_array(group, chunk, options, self._any(results)))
        return results

    @staticmethod
    def _any(results: list[Submitted]) -> bool:
        """Whether something of this batch is already with the scheduler."""
        return any(r.jid for r in results)

    def _write_script(self, aid: str, options: C) -> Path:
        """`arrays/<aid>.sh`, the script every task of the array runs."""
        script = self.ids.arrays / f"{aid}.sh"
        write_atomic(script, self.array_script(aid, options))
        return script

    @abstractmethod
    def array_script(self, aid: str, options: C) -> str:
        """The script whose task k runs the wrapper named by line k of `<aid>.tasks`."""

    def _token(self, aid: str) -> str:
        """What marks the submission `aid` of this rundir at the scheduler."""
        return f"{hashlib.sha1(str(self.ctx.rundir).encode()).hexdigest()[:10]}-{aid}"

    def _log_file(self, aid: str) -> str:
        """The scheduler's own log of a submission, as the execution host sees it."""
        return f"{self.ctx.mounted_rundir.rstrip('/')}/arrays/{aid}.log"

    @staticmethod
    def _said(rc: int, out: str, err: str) -> str:
        """The line of a failed submit command's output worth showing."""
        return (err.strip() or out.strip() or f"exit status {rc}").splitlines()[-1]

    async def _submit_call(
        self, argv: list[str], aid: str, submitted: bool
    ) -> tuple[str | None, str]:
        """(job id, "") or (None, error). A transient failure before anything of
        this batch was submitted raises SchedulerError, so the runner retries."""
        what = self.submit_name
        try:
            rc, out, err = await self._call(argv)
        except SchedulerError as exc:
            await self._drop_orphans(aid)  # it may have been accepted after all
            if not submitted:
                raise
            return None, str(exc)
        match = self.jid_regexp.search(out)
        if rc == 0 and match:
            return match["jid"], ""
        said = self._said(rc, out, err)
        if self.transient.search(said) and not submitted:
            with contextlib.suppress(SchedulerError):
                await self._drop_orphans(aid)
            raise SchedulerError(f"{what} failed: {said}")
        return None, f"{what} failed: {said}"
