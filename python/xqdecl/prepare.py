"""Start of a run: render every wrapper and decide each job's starting state
from what an earlier run of the same spec left in the journal, or, where the
journal has nothing, in the job's folder."""

from __future__ import annotations

from collections.abc import Callable

from xqdecl import journal as J
from xqdecl import recover
from xqdecl.journal import JobRow
from xqdecl.layout import RunDir, has_job_folders, read_or_none
from xqdecl.plan import Plan, render_job, write_wrapper
from xqdecl.recover import Rebuild


def read_rc(rd: RunDir, index: int, trial: int) -> int | None:
    """The rc a trial's wrapper recorded, or None (missing, empty, garbage, unreadable)."""
    return recover.read_rc(str(rd.file(index, "rc", trial)))


def read_start(rd: RunDir, index: int, trial: int) -> str:
    """What a trial's wrapper wrote when it started ('' when it has not)."""
    try:
        with open(rd.file(index, "start", trial), encoding="utf-8", errors="replace") as fh:
            return fh.read(512).strip()
    except OSError:
        return ""


def prepare_jobs(
    plan: Plan, directives: dict[int, list[str]], previous: dict[int, JobRow],
    fresh: bool = False, rebuild: Rebuild | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[list[JobRow], list[JobRow]]:
    """Rows for every job of the plan, and those an earlier runner left live.

    A job that succeeded before with the same definition hash is skipped
    (unless `fresh`); a job that ran before gets a new trial number, so no
    earlier output is ever overwritten nor mistaken for the new trial's; a
    live one is handed back for re-attachment.

    A job the journal has no row for (`rebuild`: the journal was lost; or a
    job new to the journal while its folder exists) is decided from its
    folder instead, against the wrapper that was on disk before this one
    replaces it (see xqdecl.recover). `say` gets the one line telling the
    user that rows were rebuilt.
    """
    rows: list[JobRow] = []
    live: list[JobRow] = []
    rd = plan.rundir
    # a first run (no rows, no job folders) never looks at the job folders
    look = rebuild is not None or bool(previous) or has_job_folders(rd.jobs)
    for job in plan.jobs():
        text = render_job(plan, job, directives[job.group])
        path = rd.script_str(job.index)
        prev = previous.get(job.index)
        if prev is None and look:
            old = read_or_none(path)
            digest = write_wrapper(path, text, old)
            row = JobRow(idx=job.index, name=job.name, grp=job.group, hash=digest,
                         status=J.QUEUED)
            alive = recover.rebuild_row(row, path[: -len("/job.sh")], old, fresh)
            if alive:
                live.append(row)
            if rebuild is not None:
                rebuild.count(row, alive)
            row.first_trial = row.trial
            rows.append(row)
            continue
        digest = write_wrapper(path, text)
        row = JobRow(idx=job.index, name=job.name, grp=job.group, hash=digest, status=J.QUEUED)
        if prev is not None:
            row.trial = prev.trial
            same = prev.hash == digest and prev.name == job.name
            if same and prev.status in (J.SUCCEEDED, J.SKIPPED) and not fresh:
                row.status, row.rc, row.jid = J.SKIPPED, 0, prev.jid
                row.submitted, row.started, row.ended = prev.submitted, prev.started, prev.ended
                row.note = "succeeded in an earlier run"
            elif same and prev.status in J.LIVE:
                row.status, row.jid = prev.status, prev.jid
                row.submitted, row.started = prev.submitted, prev.started
                live.append(row)
            elif prev.status != J.QUEUED or prev.jid:
                row.trial = prev.trial + 1
        row.first_trial = row.trial
        rows.append(row)
    if rebuild is not None and say is not None and (line := rebuild.line()):
        say(line)
    return rows, live
