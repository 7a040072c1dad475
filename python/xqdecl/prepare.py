"""Start of a run: render every wrapper and decide each job's starting state
from what an earlier run of the same spec left in the journal."""

from __future__ import annotations

from xqdecl import journal as J
from xqdecl.journal import JobRow
from xqdecl.layout import RunDir
from xqdecl.plan import Plan, render_job, write_wrapper
from xqdecl.poller import RC_READ_LIMIT, parse_rc


def read_rc(rd: RunDir, index: int, trial: int) -> int | None:
    """The rc a trial's wrapper recorded, or None (missing, empty, garbage, unreadable)."""
    try:
        with open(rd.file(index, "rc", trial), "rb") as fh:
            return parse_rc(fh.read(RC_READ_LIMIT))
    except OSError:
        return None


def read_start(rd: RunDir, index: int, trial: int) -> str:
    """What a trial's wrapper wrote when it started ('' when it has not)."""
    try:
        with open(rd.file(index, "start", trial), encoding="utf-8", errors="replace") as fh:
            return fh.read(512).strip()
    except OSError:
        return ""


def prepare_jobs(
    plan: Plan, directives: dict[int, list[str]], previous: dict[int, JobRow],
    fresh: bool = False,
) -> tuple[list[JobRow], list[JobRow]]:
    """Rows for every job of the plan, and those an earlier runner left live.

    A job that succeeded before with the same definition hash is skipped
    (unless `fresh`); a job that ran before gets a new trial number, so no
    earlier output is ever overwritten nor mistaken for the new trial's; a
    live one is handed back for re-attachment.
    """
    rows: list[JobRow] = []
    live: list[JobRow] = []
    rd = plan.rundir
    for job in plan.jobs():
        text = render_job(plan, job, directives[job.group])
        digest = write_wrapper(rd.script_str(job.index), text)
        prev = previous.get(job.index)
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
    return rows, live
