"""The HTML page of a run (`<rundir>/report.html`), drawn from its `RunStats`.

The page is self-contained: its template, CSS and JavaScript are package data
files (`static/page.html`, `static/report.css`, `static/report.js`) read once
and inlined, so the page needs no network. The timeline's data (`timeline_data`)
is a JSON island the script draws on a canvas; the histogram is inline SVG.
"""

from __future__ import annotations

import heapq
import html
import json
import math
import time
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from xqdecl.report.stats import RunStats, TailFn, collect, fmt_duration
from xqdecl.store import journal as J
from xqdecl.store.layout import write_atomic

#: timeline status codes (index into this tuple), drawn in this order
TIMELINE_STATUSES = (J.SUCCEEDED, J.CANCELLED, J.RUNNING, J.FAILED)
#: the report embeds job names for its tooltips up to this many jobs
NAMES_LIMIT = 20000


@cache
def static_text(name: str) -> str:
    """A data file of the page (`page.html`, `report.css`, `report.js`)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def lanes(spans: list[tuple[float, float]]) -> tuple[list[int], int]:
    """Put intervals on the fewest lanes with no overlap on a lane (greedy by start).

    `spans` must be sorted by start. Returns each span's lane and the lane count."""
    free: list[int] = []  # lane numbers free to reuse, smallest first
    busy: list[tuple[float, int]] = []  # (end, lane)
    out: list[int] = []
    count = 0
    for start, end in spans:
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane = count
            count += 1
        heapq.heappush(busy, (end, lane))
        out.append(lane)
    return out, count


def timeline_data(stats: RunStats, now: float | None = None) -> dict[str, Any]:
    """Compact columns for the report's timeline: one entry per job that started in
    this run's history (jobs skipped as done by an earlier run are left out)."""
    now = time.time() if now is None else now
    code = {s: i for i, s in enumerate(TIMELINE_STATUSES)}
    picked = []
    for r in stats.rows:
        if r.started is None or r.status == J.SKIPPED:
            continue
        end = r.ended if r.ended is not None else now
        status = r.status if r.status in code else J.RUNNING
        if r.ended is None and status != J.RUNNING:
            status = J.CANCELLED
        picked.append((r.started, max(end, r.started), code[status], r))
    picked.sort(key=lambda p: p[0])
    t0 = picked[0][0] if picked else now
    lane, count = lanes([(p[0], p[1]) for p in picked])
    with_names = len(picked) <= NAMES_LIMIT
    return {
        "t0": t0,
        "statuses": list(TIMELINE_STATUSES),
        "lanes": count,
        "start": [round(p[0] - t0, 3) for p in picked],
        "end": [round(p[1] - t0, 3) for p in picked],
        "status": [p[2] for p in picked],
        "lane": lane,
        "index": [p[3].idx for p in picked],
        "name": [p[3].name for p in picked] if with_names else None,
    }


def _histogram_svg(durations: list[float], width: int = 720, height: int = 200) -> str:
    if not durations:
        return '<p class="muted">No finished job has a duration yet.</p>'
    lo, hi = min(durations), max(durations)
    log = lo > 0 and hi / lo > 50
    bins = 30
    if log:
        a, b = math.log10(lo), math.log10(hi)
    else:
        a, b = lo, hi
    span = (b - a) or 1.0
    counts = [0] * bins
    for d in durations:
        x = math.log10(d) if log else d
        counts[min(bins - 1, int((x - a) / span * bins))] += 1
    top = max(counts)
    pad_l, pad_b = 40, 30
    w, h = width - pad_l - 10, height - pad_b - 10
    bw = w / bins
    parts = [f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="durations histogram">']
    for i, c in enumerate(counts):
        if not c:
            continue
        bh = max(1.0, c / top * h)
        lo_edge = a + span * i / bins
        hi_edge = a + span * (i + 1) / bins
        if log:
            lo_edge, hi_edge = 10**lo_edge, 10**hi_edge
        parts.append(
            f'<rect x="{pad_l + i * bw + 1:.1f}" y="{10 + h - bh:.1f}" width="{bw - 2:.1f}" '
            f'height="{bh:.1f}"><title>{fmt_duration(lo_edge)} to {fmt_duration(hi_edge)}: '
            f'{c} jobs</title></rect>'
        )
    ticks = [(0, a, "start"), (bins / 2, a + span / 2, "middle"), (bins, b, "end")]
    for pos, value, anchor in ticks:
        v = 10**value if log else value
        parts.append(f'<text x="{pad_l + pos * bw:.1f}" y="{height - 8}" '
                     f'text-anchor="{anchor}">{fmt_duration(v)}</text>')
    parts.append(f'<text x="{pad_l - 6}" y="18" text-anchor="end">{top}</text>')
    parts.append(f'<text x="{pad_l - 6}" y="{10 + h}" text-anchor="end">0</text>')
    parts.append(f'<line x1="{pad_l}" y1="{10 + h}" x2="{pad_l + w}" y2="{10 + h}"/>')
    parts.append("</svg>")
    scale = "log scale" if log else "linear scale"
    return "".join(parts) + f'<p class="muted">{len(durations)} jobs, {scale}</p>'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _counts_cards(stats: RunStats) -> str:
    cards = [f'<div class="card total"><b id="count-total">{stats.total}</b>jobs</div>']
    for k in J.STATUSES:
        if stats.counts.get(k):
            cards.append(f'<div class="card {k}"><b id="count-{k}">{stats.counts[k]}</b>'
                         f"{k}</div>")
    if stats.retried:
        cards.append(f'<div class="card retried"><b id="count-retried">{stats.retried}</b>'
                     "retried</div>")
    return '<div class="cards">' + "".join(cards) + "</div>"


def _groups_table(stats: RunStats) -> str:
    cols = [k for k in J.STATUSES if any(g.counts.get(k) for g in stats.groups)]
    head = "".join(f"<th>{k}</th>" for k in [*cols, "retried"])
    rows = []
    for g in stats.groups:
        cells = "".join(f'<td class="n">{g.counts.get(k, 0)}</td>' for k in cols)
        rows.append(f'<tr><td class="n">{g.group}</td><td>{_e(g.label)}</td>'
                    f'<td class="n">{g.total}</td>{cells}<td class="n">{g.retried}</td></tr>')
    return (f'<table id="groups"><tr><th>#</th><th>group</th><th>jobs</th>{head}</tr>'
            + "".join(rows) + "</table>")


def _failures_html(stats: RunStats) -> str:
    if not stats.failed_total:
        return '<p class="muted">No job failed.</p>'
    items = []
    for n, f in enumerate(stats.failures):
        text = "\n".join(f.stderr_tail) or "(no stderr)"
        last = f.stderr_tail[-1] if f.stderr_tail else ""
        items.append(
            f'<details class="failure"{" open" if n < 3 else ""}><summary>job {f.index} '
            f"<b>{_e(f.name)}</b> (group {f.group}) rc={_e(f.rc)} trial {f.trial}"
            f'<span class="last">{_e(last[:160])}</span></summary><pre>{_e(text)}</pre>'
            "</details>"
        )
    more = stats.failed_total - len(stats.failures)
    if more > 0:
        items.append(f'<p class="muted">... and {more} more failed jobs '
                     "(<code>xqdecl status SPEC --output json</code> lists them all)</p>")
    return "".join(items)


def render_html(stats: RunStats, now: float | None = None) -> str:
    """The report page: self-contained (inline CSS and JS, no network)."""
    from xqdecl import __version__

    now = time.time() if now is None else now
    tl = timeline_data(stats, now)
    durations = [e - s for s, e, k in zip(tl["start"], tl["end"], tl["status"], strict=True)
                 if TIMELINE_STATUSES[k] != J.RUNNING]
    data = json.dumps(tl, separators=(",", ":")).replace("<", "\\u003c")
    started = stats.meta.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(
        started, int | float) else "-"
    if stats.live:
        state = f"running ({_e(stats.holder)})"
    elif isinstance(stats.meta.get("exit_code"), int):
        state = f"ended, exit code {stats.meta['exit_code']}"
    else:
        state = "not running"
    problem = f'<p class="problem">{_e(stats.problem)}</p>' if stats.problem else ""
    return static_text("page.html").format(
        title=_e(stats.run), state=state, started=when,
        wall=fmt_duration(stats.elapsed), backend=_e(stats.meta.get("backend", "-")),
        rundir=_e(stats.rundir), problem=problem, cards=_counts_cards(stats),
        groups=_groups_table(stats), hist=_histogram_svg(durations),
        failures=_failures_html(stats), data=data, css=static_text("report.css"),
        js=static_text("report.js"),
        version=_e(__version__),
        generated=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
    )


def write_report(rundir: str | Path, path: str | Path | None = None,
                 group_names: list[str] | None = None, journal: Path | None = None,
                 tail_fn: TailFn | None = None) -> Path | None:
    """Write `<rundir>/report.html` (or `path`); returns where, or None when it
    could not be written. Never raises for a missing or partial journal.

    The runner calls it when a run ends; `xqdecl report SPEC` on demand."""
    stats = collect(rundir, group_names=group_names, failures=50, tail_lines=20,
                    keep_rows=True, journal=journal, tail_fn=tail_fn)
    target = Path(path) if path is not None else Path(rundir) / "report.html"
    try:
        write_atomic(target, render_html(stats))
    except OSError:
        return None
    return target


def ensure_report(rundir: str | Path, since: float,
                  group_names: list[str] | None = None) -> Path | None:
    """Write the report unless the runner already wrote one after `since` (epoch)."""
    target = Path(rundir) / "report.html"
    try:
        if target.stat().st_mtime >= since:
            return target
    except OSError:
        pass
    if not (Path(rundir) / "journal.db").exists():
        return None
    return write_report(rundir, group_names=group_names)
