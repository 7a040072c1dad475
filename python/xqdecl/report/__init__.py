"""What a run did, read from its run directory.

Two layers: `stats` is the read model (`collect` -> `RunStats`, and the JSON of
`status`), `page` draws the HTML report from it (its template, CSS and
JavaScript are package data under `static/`). The names below are the ones the
rest of xqdecl imports from `xqdecl.report`.
"""

from xqdecl.report.page import (
    NAMES_LIMIT,
    TIMELINE_STATUSES,
    ensure_report,
    lanes,
    render_html,
    timeline_data,
    write_report,
)
from xqdecl.report.stats import (
    DONE,
    Failure,
    GroupStats,
    RunStats,
    TailFn,
    collect,
    fmt_duration,
    job_json,
    job_trials,
    local_tail,
    status_json,
    stderr_tail,
)

__all__ = [
    "DONE",
    "NAMES_LIMIT",
    "TIMELINE_STATUSES",
    "Failure",
    "GroupStats",
    "RunStats",
    "TailFn",
    "collect",
    "ensure_report",
    "fmt_duration",
    "job_json",
    "job_trials",
    "lanes",
    "local_tail",
    "render_html",
    "status_json",
    "stderr_tail",
    "timeline_data",
    "write_report",
]
