"""What a run did, read from its run directory: for `status`, the final
summary and the static HTML report (`<rundir>/report.html`).

Everything here only reads (the journal through `JournalReader`, which works
while a runner writes), and copes with a missing or partial journal: a run
that never started, a journal without its tables, rows without times.
"""

from __future__ import annotations

import heapq
import html
import json
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xqdecl import journal as J
from xqdecl.errors import BackendError
from xqdecl.journal import JobRow, JournalReader
from xqdecl.layout import RunDir, tail
from xqdecl.lock import holder_of

#: statuses a job ends in, and how many of them count as "done" for progress
DONE = (J.SUCCEEDED, J.FAILED, J.CANCELLED, J.SKIPPED)
#: timeline status codes (index into this tuple), drawn in this order
TIMELINE_STATUSES = (J.SUCCEEDED, J.CANCELLED, J.RUNNING, J.FAILED)
#: the report embeds job names for its tooltips up to this many jobs
NAMES_LIMIT = 20000

#: reads the last lines of a job file: (index, kind, trial, lines) -> lines
TailFn = Callable[[int, str, int, int], list[str]]


@dataclass
class GroupStats:
    group: int
    label: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # jobs that took more than one attempt

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "label": self.label, "total": self.total,
                "counts": self.counts, "retried": self.retried}


@dataclass
class Failure:
    index: int
    name: str
    group: int
    rc: int | None
    trial: int
    note: str | None
    stderr_tail: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "group": self.group, "rc": self.rc,
                "trial": self.trial, "note": self.note, "stderr_tail": self.stderr_tail}


@dataclass
class RunStats:
    """A run as its directory tells it."""

    run: str
    rundir: Path
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    groups: list[GroupStats] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    failed_total: int = 0
    holder: str | None = None  # "host pid" of the live runner, None when not running
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why the journal could not be (fully) read
    rows: list[JobRow] = field(default_factory=list)  # only when asked for (the report)

    @property
    def live(self) -> bool:
        return self.holder is not None

    @property
    def done(self) -> int:
        return sum(self.counts.get(k, 0) for k in DONE)

    @property
    def retried(self) -> int:
        return sum(g.retried for g in self.groups)

    @property
    def elapsed(self) -> float | None:
        """Wall time of the last invocation: till its end, or till now while live."""
        started = self.meta.get("started")
        if not isinstance(started, int | float):
            return None
        ended = self.meta.get("ended")
        end = ended if isinstance(ended, int | float) and not self.live else time.time()
        return max(0.0, end - started)


def job_trials(row: JobRow) -> int:
    """Attempts made so far: a queued job has not started its current trial."""
    return row.trial if row.status == J.QUEUED else row.trial + 1


def local_tail(rd: RunDir) -> TailFn:
    def read(index: int, kind: str, trial: int, lines: int) -> list[str]:
        return tail(rd.file(index, kind, trial), lines)

    return read


def stderr_tail(read: TailFn, row: JobRow, lines: int = 5) -> list[str]:
    """The last lines of a job's stderr for its last trial, then the runner's notes."""
    return read(row.idx, "stderr", row.trial, lines) + read(row.idx, "notes", row.trial, lines)


def _label(group: int, names: Any, first_name: str) -> str:
    if isinstance(names, list) and group < len(names) and isinstance(names[group], str):
        return names[group]
    return f"group {group} ({first_name}, ...)"


def collect(
    rundir: str | Path,
    *,
    run: str | None = None,
    group_names: list[str] | None = None,
    failures: int = 10,
    tail_lines: int = 5,
    keep_rows: bool = False,
    journal: Path | None = None,
    tail_fn: TailFn | None = None,
) -> RunStats:
    """Read a run directory. Never raises for a missing or unreadable journal:
    `problem` says what was wrong and the rest stays empty.

    `journal` and `tail_fn` replace the run directory's own journal and file
    reads (a copy fetched from a cloud workdir)."""
    rd = RunDir(rundir)
    stats = RunStats(run=run or rd.root.name, rundir=rd.root)
    if rd.lock.exists():
        try:
            stats.holder = holder_of(rd.lock)
        except OSError:
            stats.holder = None
    journal = journal or rd.journal
    if not journal.exists():
        stats.problem = "not started yet (no journal)"
        return stats
    try:
        reader = JournalReader(journal)
    except (BackendError, OSError) as exc:
        stats.problem = f"the journal cannot be opened: {exc}"
        return stats
    try:
        _read(stats, reader, tail_fn or local_tail(rd), group_names, failures, tail_lines,
              keep_rows)
    except (BackendError, sqlite3.Error) as exc:
        stats.problem = f"the journal is incomplete: {exc}"
    finally:
        reader.close()
    return stats


def _read(stats: RunStats, reader: JournalReader, read: TailFn, group_names: list[str] | None,
          failures: int, tail_lines: int, keep_rows: bool) -> None:
    with_meta = True
    try:
        stats.meta = reader.meta()
    except (BackendError, ValueError):
        with_meta = False
    if with_meta and isinstance(stats.meta.get("run"), str):
        stats.run = stats.meta["run"]
    names = group_names if group_names is not None else stats.meta.get("groups")
    groups: dict[int, GroupStats] = {}
    counts: dict[str, int] = {}
    failed: list[JobRow] = []
    for row in reader.rows():
        counts[row.status] = counts.get(row.status, 0) + 1
        g = groups.get(row.grp)
        if g is None:
            g = groups[row.grp] = GroupStats(row.grp, _label(row.grp, names, row.name))
        g.total += 1
        g.counts[row.status] = g.counts.get(row.status, 0) + 1
        if row.trial > 0 and row.status != J.SKIPPED:
            g.retried += 1
        if row.status == J.FAILED:
            stats.failed_total += 1
            if len(failed) < failures:
                failed.append(row)
        if keep_rows:
            stats.rows.append(row)
    stats.counts = {k: counts[k] for k in J.STATUSES if counts.get(k)}
    stats.counts.update({k: v for k, v in counts.items() if k not in J.STATUSES})
    stats.groups = [groups[k] for k in sorted(groups)]
    total = stats.meta.get("total")
    stats.total = total if isinstance(total, int) else sum(counts.values())
    stats.failures = [
        Failure(r.idx, r.name, r.grp, r.rc, r.trial, r.note, stderr_tail(read, r, tail_lines))
        for r in failed
    ]


def job_json(row: JobRow) -> dict[str, Any]:
    """One job of `status --output json` (the contract's keys first)."""
    return {"index": row.idx, "name": row.name, "status": row.status, "rc": row.rc,
            "trials": job_trials(row), "jid": row.jid, "group": row.grp,
            "submitted": row.submitted, "started": row.started, "ended": row.ended,
            "note": row.note}


def status_json(stats: RunStats) -> dict[str, Any]:
    """`status --output json` (documented with its JSON Schema in docs/json-output.md)."""
    meta = stats.meta
    return {
        "run": stats.run,
        "counts": stats.counts,
        "jobs": [job_json(r) for r in stats.rows],
        "live": stats.live,
        "holder": stats.holder,
        "rundir": str(stats.rundir),
        "total": stats.total,
        "done": stats.done,
        "started": meta.get("started"),
        "ended": None if stats.live else meta.get("ended"),
        "exit_code": None if stats.live else meta.get("exit_code"),
        "elapsed": None if stats.elapsed is None else round(stats.elapsed, 3),
        "groups": [g.to_json() for g in stats.groups],
        "failures": [f.to_json() for f in stats.failures],
        "failed_total": stats.failed_total,
        "problem": stats.problem or None,
    }


def fmt_duration(seconds: float | None) -> str:
    """`0.4s`, `12s`, `3m05s`, `2h04m`, `1d03h`."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


# -- the HTML report ---------------------------------------------------------------------------
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
    return _PAGE.format(
        title=_e(stats.run), state=state, started=when,
        wall=fmt_duration(stats.elapsed), backend=_e(stats.meta.get("backend", "-")),
        rundir=_e(stats.rundir), problem=problem, cards=_counts_cards(stats),
        groups=_groups_table(stats), hist=_histogram_svg(durations),
        failures=_failures_html(stats), data=data, css=_CSS, js=_JS,
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
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(render_html(stats), encoding="utf-8")
        tmp.replace(target)
    except OSError:
        tmp.unlink(missing_ok=True)
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


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:4px 0}h2{font-size:16px;margin:26px 0 8px}
.muted{color:#6b7280}.problem{color:#a15c00;background:#fff4e0;padding:6px 10px}
.meta span{margin-right:18px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #dde1e7;border-left:5px solid #9aa3af;
border-radius:6px;padding:8px 14px;min-width:90px;color:#4b5563}
.card b{display:block;font-size:22px;color:#111827}
.card.succeeded,.card.skipped{border-left-color:#2e9d5b}.card.failed{border-left-color:#d43d3d}
.card.running{border-left-color:#3a7bd5}.card.cancelled{border-left-color:#8b8f97}
.card.retried{border-left-color:#d4a017}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #dde1e7;padding:4px 10px;text-align:left}td.n{text-align:right}
#timeline-box{position:relative;background:#fff;border:1px solid #dde1e7;padding:8px}
#timeline{width:100%;display:block}
#tip{position:absolute;display:none;background:#111827;color:#fff;padding:4px 8px;
border-radius:4px;font-size:12px;pointer-events:none;white-space:nowrap}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
svg.hist{background:#fff;border:1px solid #dde1e7}svg.hist rect{fill:#3a7bd5}
svg.hist text{font-size:11px;fill:#4b5563}svg.hist line{stroke:#9aa3af}
details.failure{background:#fff;border:1px solid #f0c7c7;margin:6px 0;padding:4px 10px}
details.failure summary .last{color:#a12b2b;margin-left:14px;font-family:monospace;
font-size:12px}
details.failure pre{white-space:pre-wrap;font-size:12px;background:#fbf4f4;padding:6px;
max-height:300px;overflow:auto}
footer{margin-top:30px;font-size:12px;color:#6b7280}
"""

_JS = r"""
(function(){
const D=JSON.parse(document.getElementById('data').textContent);
const COLORS={succeeded:'#2e9d5b',cancelled:'#8b8f97',running:'#3a7bd5',failed:'#d43d3d'};
const cv=document.getElementById('timeline'),tip=document.getElementById('tip');
const note=document.getElementById('timeline-note');
const n=D.start.length;
if(!n){note.textContent='No job has started yet.';cv.style.display='none';return;}
let tmax=0;for(let i=0;i<n;i++){if(D.end[i]>tmax)tmax=D.end[i];}
tmax=tmax||1;
const rowsMax=160;
const per=Math.max(1,Math.ceil(D.lanes/rowsMax));
const rows=Math.ceil(D.lanes/per);
const rowH=Math.max(2,Math.min(14,Math.floor(420/rows)));
const L=48,B=22;
function fmt(s){if(s<60)return s.toFixed(s<10?1:0)+'s';if(s<3600)return Math.floor(s/60)+'m'+
String(Math.round(s%60)).padStart(2,'0')+'s';return Math.floor(s/3600)+'h'+
String(Math.floor(s%3600/60)).padStart(2,'0')+'m';}
function draw(){
 const dpr=window.devicePixelRatio||1,W=cv.clientWidth||900,H=rows*rowH+B+4;
 cv.width=W*dpr;cv.height=H*dpr;cv.style.height=H+'px';
 const g=cv.getContext('2d');g.setTransform(dpr,0,0,dpr,0,0);
 g.fillStyle='#fff';g.fillRect(0,0,W,H);
 const sx=(W-L-8)/tmax;
 for(let k=0;k<D.statuses.length;k++){
  g.fillStyle=COLORS[D.statuses[k]]||'#999';
  for(let i=0;i<n;i++){if(D.status[i]!==k)continue;
   const x=L+D.start[i]*sx,w=Math.max(1,(D.end[i]-D.start[i])*sx);
   const y=2+Math.floor(D.lane[i]/per)*rowH;
   g.fillRect(x,y,w,Math.max(1,rowH-(rowH>3?1:0)));}}
 g.fillStyle='#4b5563';g.font='11px sans-serif';g.strokeStyle='#dde1e7';
 const steps=6;for(let s=0;s<=steps;s++){const t=tmax*s/steps,x=L+t*sx;
  g.beginPath();g.moveTo(x,2);g.lineTo(x,H-B+2);g.stroke();
  g.textAlign=s===0?'left':(s===steps?'right':'center');g.fillText(fmt(t),x,H-6);}
 g.textAlign='right';g.fillText(per>1?'lanes':'lane',L-6,12);
 g.fillText(String(D.lanes),L-6,2+rows*rowH);
 cv._sx=sx;
}
draw();window.addEventListener('resize',draw);
const byRow=new Map();
for(let i=0;i<n;i++){const r=Math.floor(D.lane[i]/per);
 if(!byRow.has(r))byRow.set(r,[]);byRow.get(r).push(i);}
cv.addEventListener('mousemove',function(ev){
 const rect=cv.getBoundingClientRect(),x=ev.clientX-rect.left,y=ev.clientY-rect.top;
 const r=Math.floor((y-2)/rowH),t=(x-L)/cv._sx,c=byRow.get(r)||[];
 const slack=2/cv._sx;let hit=-1;
 for(const i of c){if(D.start[i]-slack<=t&&t<=D.end[i]+slack){hit=i;break;}}
 if(hit<0){tip.style.display='none';return;}
 const nm=D.name?D.name[hit]:'';
 tip.textContent='job '+D.index[hit]+' '+nm+' - '+D.statuses[D.status[hit]]+', '+
  fmt(D.end[hit]-D.start[hit])+' (from +'+fmt(D.start[hit])+')';
 tip.style.left=(x+14)+'px';tip.style.top=(y+8)+'px';tip.style.display='block';});
cv.addEventListener('mouseleave',function(){tip.style.display='none';});
note.textContent=n+' jobs on '+D.lanes+' lanes'+(per>1?' ('+per+' lanes per row)':'')+
 ', '+fmt(tmax)+' from the first start';
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>xqdecl run {title}</title><style>{css}</style></head>
<body><main>
<h1>xqdecl run <span id="run-name">{title}</span></h1>
<p class="meta"><span id="run-state">{state}</span><span>started {started}</span>
<span>wall time {wall}</span><span>backend {backend}</span></p>
<p class="muted">{rundir}</p>{problem}
{cards}
<h2>Groups</h2>{groups}
<h2>Timeline</h2>
<div id="timeline-box"><canvas id="timeline" height="120"></canvas><div id="tip"></div></div>
<p class="legend"><span><i style="background:#2e9d5b"></i>succeeded</span>
<span><i style="background:#d43d3d"></i>failed</span>
<span><i style="background:#3a7bd5"></i>running</span>
<span><i style="background:#8b8f97"></i>cancelled</span>
<span id="timeline-note" class="muted">(the timeline needs JavaScript)</span></p>
<h2>Durations</h2>{hist}
<h2>Failures</h2>{failures}
<footer>written by xqdecl {version} at {generated}; jobs skipped as already done by an
earlier run are counted but not drawn.</footer>
</main>
<script type="application/json" id="data">{data}</script>
<script>{js}</script>
</body></html>
"""
