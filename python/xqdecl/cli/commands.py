"""What each CLI command does (the parsing lives in cli.py)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

from xqdecl.backends import backend_class
from xqdecl.backends.base import BackendContext
from xqdecl.cli.init_spec import write_starter
from xqdecl.cli.kill import stop_run
from xqdecl.cli.output import Output, print_status
from xqdecl.cli.runstate import RunState
from xqdecl.cli.streams import VisibleDecoder, write_bytes
from xqdecl.engine import Runner
from xqdecl.errors import BackendError, ExitCode, UnknownJobError
from xqdecl.plan import Plan, render_job, write_wrapper
from xqdecl.plan.wrapper import render
from xqdecl.plugin.hooks import load_hooks
from xqdecl.report import RunStats, collect, job_json, status_json, write_report
from xqdecl.spec import Spec, count_jobs, json_schema, load_spec
from xqdecl.store.journal import JournalReader
from xqdecl.store.layout import RunDir, locate


def _rundir(spec: Spec) -> RunDir:
    return RunDir(locate(spec).local)


def schema(out: Output) -> int:
    out.json(json_schema())
    return ExitCode.OK


def validate(path: str, out: Output) -> int:
    spec = load_spec(path)
    load_hooks(list(spec.plugins), spec).close()  # the plugins must import too
    total = count_jobs(spec)
    if out.mode == "json":
        out.json({"valid": True, "run": spec.name, "jobs": total, "groups": len(spec.jobs)})
    else:
        out.info(f"{path}: valid ({total} jobs in {len(spec.jobs)} groups, run {spec.name!r})")
    return ExitCode.OK


def _backend(spec: Spec, plan: Plan):  # type: ignore[no-untyped-def]
    cls = backend_class(spec.scheduler.type)
    ctx = BackendContext(
        run=spec.name, rundir=plan.rundir.root, mounted_rundir=plan.mounted_rundir,
        forks=spec.forks or cls.default_forks(),
    )
    return cls(spec.scheduler, ctx)


def _plan_summary(spec: Spec, plan: Plan, show: int) -> dict[str, object]:
    backend = _backend(spec, plan)
    groups = []
    shown: dict[int, list[str]] = {}
    for g in plan.groups:
        shown[g.index] = []
    for job in plan.jobs():
        lst = shown[job.group]
        if len(lst) < show:
            cmd = job.cmd if isinstance(job.cmd, str) else " ".join(job.cmd)
            lst.append(f"[{job.index}] {job.name}: {cmd}")
        if all(len(v) >= min(show, plan.groups[k].count) for k, v in shown.items()):
            break
    for g in plan.groups:
        groups.append({
            "group": g.index, "jobs": g.count, "first_index": g.first,
            "submission": backend.describe_group(g.count, g.options),
            "examples": shown[g.index],
        })
    return {"run": spec.name, "backend": backend.name, "jobs": plan.total,
            "rundir": str(plan.rundir.root), "groups": groups}


def _print_plan(out: Output, summary: dict[str, object]) -> None:
    out.info(f"run {summary['run']}: {summary['jobs']} jobs on {summary['backend']}, "
             f"state in {summary['rundir']}")
    for g in summary["groups"]:  # type: ignore[attr-defined]
        out.info(f"group {g['group']}: {g['jobs']} jobs (from index {g['first_index']}); "
                 f"{g['submission']}")
        for line in g["examples"]:
            out.info(f"    {line}")


def plan(path: str, out: Output, show: int) -> int:
    spec = load_spec(path)
    summary = _plan_summary(spec, Plan(spec), show)
    if out.mode == "json":
        out.json(summary)
    else:
        _print_plan(out, summary)
    return ExitCode.OK


def job_script(path: str, out: Output, job: str) -> int:
    """The wrapper job `job` (index or name) runs as, standalone: `bash` it to run the
    job by hand, in its run directory's files (trial from its first argument)."""
    spec = load_spec(path)
    hooks = load_hooks(list(spec.plugins), spec)  # their snippets belong in the wrapper
    try:
        p = Plan(spec, hooks=hooks)
        index = int(job) if job.isdigit() else next(
            (j.index for j in p.jobs() if j.name == job), None)
        if index is None or not 0 <= index < p.total:
            raise UnknownJobError(f"run {spec.name} has no job {job!r} "
                                  f"(give an index 0 to {p.total - 1} or a name)")
        backend = _backend(spec, p)
        hooks.bind(backend)
        rendered = p.job(index)
        w = p.wrapper_input(rendered, backend.directives(p.groups[rendered.group].options))
        w.standalone = True
        text = render(w)
    finally:
        hooks.close()
    write_bytes(1, text.encode())
    return ExitCode.OK


def dry_run(path: str, out: Output) -> int:
    spec = load_spec(path)
    hooks = load_hooks(list(spec.plugins), spec)  # their snippets belong in the wrappers
    try:
        p = Plan(spec, hooks=hooks)
        backend = _backend(spec, p)
        hooks.bind(backend)
        p.rundir.create()
        directives = {g.index: backend.directives(g.options) for g in p.groups}
        n = 0
        for job in p.jobs():
            text = render_job(p, job, directives[job.group])
            write_wrapper(p.rundir.script_str(job.index), text)
            n += 1
    finally:
        hooks.close()
    summary = _plan_summary(spec, p, 3)
    summary["rendered"] = n
    summary["submitted"] = 0
    if out.mode == "json":
        out.json(summary)
    else:
        _print_plan(out, summary)
        out.info(f"dry run: {n} wrapper scripts rendered under {p.rundir.jobs}; "
                 "nothing was submitted")
    return ExitCode.OK


async def run(path: str, out: Output, fresh: bool = False) -> int:
    spec = load_spec(path)
    result = await Runner(spec, fresh=fresh, reporter=out.reporter()).run()
    if out.mode == "json":
        out.json({
            "run": result.run, "exit_code": int(result.exit_code), "counts": result.counts,
            "elapsed": round(result.elapsed, 3), "retried": result.retried,
            "failed": [_job_json(r) for r in result.failed],
        })
    return result.exit_code


_job_json = job_json


def _stats(spec: Spec, **kwargs: Any) -> tuple[RunState, RunStats]:
    state = RunState(spec)
    journal = state.journal()
    stats = collect(state.rd.root, run=spec.name, group_names=[g.name for g in spec.jobs],
                    journal=journal or state.rd.journal, tail_fn=state.tail, **kwargs)
    return state, stats


def status(path: str, out: Output) -> int:
    spec = load_spec(path, host_checks=False)
    _, stats = _stats(spec, keep_rows=out.mode == "json")
    if out.mode == "json":
        out.json(status_json(stats))
    else:
        print_status(out, stats)
    return ExitCode.OK


def logs(path: str, out: Output, job: str, stderr: bool, trial: int | None,
         raw: bool = False) -> int:
    spec = load_spec(path, host_checks=False)
    state = RunState(spec)
    journal = state.journal()
    if journal is None:
        raise UnknownJobError(f"run {spec.name} has no jobs yet (no state in {state.rd.root})")
    reader = JournalReader(journal)
    try:
        row = reader.find(job)
    finally:
        reader.close()
    if row is None:
        raise UnknownJobError(f"run {spec.name} has no job {job!r} (give an index or a name)")
    if trial is not None and not 0 <= trial <= row.trial:
        raise UnknownJobError(
            f"job {row.idx} ({row.name}) has no trial {trial}: its trials are 0 to {row.trial}"
        )
    t = row.trial if trial is None else trial
    kind = "stderr" if stderr else "stdout"
    notes = state.read(row.idx, "notes", t) if stderr else None
    if out.mode == "json":
        data = state.read(row.idx, kind, t)
        out.json({
            "run": spec.name, "index": row.idx, "name": row.name, "status": row.status,
            "trial": t, "stream": kind, "path": str(state.rd.file(row.idx, kind, t)),
            "text": None if data is None else data.decode("utf-8", errors="replace"),
            "notes": None if notes is None else notes.decode("utf-8", errors="replace"),
        })
        return ExitCode.OK
    f = state.rd.file(row.idx, kind, t)
    try:
        chunks: Iterator[bytes] = _chunks(f)
        first = next(chunks, b"")
    except FileNotFoundError:
        data = state.read(row.idx, kind, t)
        if data is None:
            out.error(f"xqdecl: job {row.idx} ({row.name}) has no {kind} for trial {t} yet")
            chunks, first = iter(()), b""
        else:
            chunks, first = iter(()), data
    _emit(first, chunks, notes or b"", terminal=not raw and os.isatty(1))
    return ExitCode.OK


def _chunks(path: os.PathLike[str]) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            yield chunk


def _emit(first: bytes, rest: Iterator[bytes], notes: bytes, terminal: bool) -> None:
    """A job's bytes to stdout: exact into a pipe or a file; on a terminal, with its
    control characters shown (a job must not drive the user's terminal)."""
    decoder = VisibleDecoder() if terminal else None
    for data in itertools.chain((first,), rest, (notes,)):
        if decoder is not None:
            data = decoder.feed(data).encode("utf-8", errors="replace")
        if data and not write_bytes(1, data):
            return  # the reader went away: nothing more to say
    if decoder is not None:
        write_bytes(1, decoder.feed(b"", final=True).encode("utf-8", errors="replace"))


def report(path: str, out: Output, target: str | None) -> int:
    spec = load_spec(path, host_checks=False)
    state = RunState(spec)
    journal = state.journal()
    if target is None:
        state.rd.root.mkdir(parents=True, exist_ok=True)
    written = write_report(state.rd.root, target, [g.name for g in spec.jobs],
                           journal=journal or state.rd.journal, tail_fn=state.tail)
    if written is None:
        raise BackendError(f"cannot write the report to {target or state.rd.root}")
    _, stats = _stats(spec, failures=0)
    if out.mode == "json":
        out.json({"run": spec.name, "report": str(written), "live": stats.live,
                  "total": stats.total, "counts": stats.counts,
                  "problem": stats.problem or None})
    else:
        note = f" ({stats.problem})" if stats.problem else ""
        out.info(f"run {spec.name}: report written to {written}{note}")
    return ExitCode.OK


def init(path: str, out: Output, with_schema: bool) -> int:
    written = write_starter(path, with_schema=with_schema)
    if out.mode == "json":
        out.json({"spec": str(written[0]), "written": [str(p) for p in written]})
    else:
        for p in written[1:]:
            out.info(f"wrote {p} (the spec's JSON Schema, for editor completion)")
        out.info(f"wrote {written[0]}: a starter spec; try `xqdecl run {written[0]}`")
    return ExitCode.OK


def kill(path: str, out: Output, wait: float = 15.0) -> int:
    """Cancel every live job of a run (see xqdecl.cli.kill)."""
    spec = load_spec(path, host_checks=False)
    return stop_run(spec, _rundir(spec), out, wait, lambda: _backend(spec, Plan(spec)))
