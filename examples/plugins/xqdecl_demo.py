"""xqdecl_demo: an example xqdecl plugin (see docs/plugins.md).

It implements every hook:

- each call is appended to `CALLS` (in memory) and, as one line
  `<hook> <job index> <status> <trial>`, to `demo-hooks.log` in the run's
  directory, so a run can be followed from outside;
- jobs whose name matches the glob in `$XQDECL_DEMO_SKIP` are skipped
  (`on_job_submitting` returns False);
- on a cancel, jobs whose name matches `$XQDECL_DEMO_KEEP` are kept running
  (`on_job_killing` returns False);
- the wrapper of every job prints `[demo] init/prep/end` lines around the
  command, into the job's stdout.

Some hooks are `async def`, the others plain `def`: both work. Use it with
`plugins = ["xqdecl_demo"]` in a spec (this folder on PYTHONPATH), or install
this folder (`pip install ./examples/plugins`) and every run loads it through
its `xqdecl` entry point.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from pathlib import Path

from xqdecl import plugin

#: (hook, job index or None, job status or None) of every call since the run started
CALLS: list[tuple[str, int | None, str | None]] = []
_log: Path | None = None


def _record(hook, job=None, extra=""):
    CALLS.append((hook, None if job is None else job.index, None if job is None else job.status))
    if _log is not None:
        where = "-" if job is None else f"{job.index} {job.status} {job.trial}"
        with open(_log, "a", encoding="utf-8") as fh:
            fh.write(f"{hook} {where}{extra}\n")


def _matches(variable, job):
    pattern = os.environ.get(variable)
    return bool(pattern) and fnmatch.fnmatchcase(job.name, pattern)


# -- the run -----------------------------------------------------------------------------
@plugin.impl
def on_init(runner):
    global _log
    CALLS.clear()
    _log = Path(runner.rundir) / "demo-hooks.log"
    _log.unlink(missing_ok=True)
    _record("on_init")


@plugin.impl
async def on_shutdown(runner, sig):
    _record("on_shutdown", extra=f" {sig}")


# -- jobs --------------------------------------------------------------------------------
@plugin.impl
def on_job_init(scheduler, job):
    _record("on_job_init", job)


@plugin.impl
def on_job_queued(scheduler, job):
    _record("on_job_queued", job)


@plugin.impl
async def on_job_submitting(scheduler, job):
    _record("on_job_submitting", job)
    if _matches("XQDECL_DEMO_SKIP", job):
        return False  # skipped: recorded as such, the run goes on without it
    return None


@plugin.impl
def on_job_submitted(scheduler, job):
    _record("on_job_submitted", job, f" {scheduler.name}")


@plugin.impl
async def on_job_started(scheduler, job):
    _record("on_job_started", job)


@plugin.impl
def on_job_polling(scheduler, job, counter):
    _record("on_job_polling", job, f" {counter}")


@plugin.impl
def on_job_killing(scheduler, job):
    _record("on_job_killing", job)
    if _matches("XQDECL_DEMO_KEEP", job):
        return False  # left running when the run is cancelled
    return None


@plugin.impl
def on_job_killed(scheduler, job):
    _record("on_job_killed", job)


@plugin.impl
def on_job_failed(scheduler, job):
    _record("on_job_failed", job, f" rc={job.rc}")


@plugin.impl
async def on_job_succeeded(scheduler, job):
    await asyncio.sleep(0)  # an async hook may await anything (keep it short)
    _record("on_job_succeeded", job)


# -- the wrapper ---------------------------------------------------------------------------
# Snippets are rendered once per job (the same wrapper serves every trial) and are
# part of the job's definition: keep them deterministic, or every rerun runs again.
@plugin.impl
def on_jobcmd_init(scheduler, job):
    return 'echo "[demo] init $XQDECL_JOB_NAME (trial $XQDECL_TRIAL)"'


@plugin.impl
def on_jobcmd_prep(scheduler, job):
    return 'echo "[demo] prep"'


@plugin.impl
def on_jobcmd_end(scheduler, job):
    return 'echo "[demo] end rc=$XQDECL_JOB_RC"'
