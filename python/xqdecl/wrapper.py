"""Render the bash wrapper that runs one job on the execution host.

The wrapper is the only writer of the job's `start.<trial>`, `rc.<trial>`,
`stdout.<trial>` and `stderr.<trial>` files and of its event files (see
docs/internals.md). Design points, each a fix of a known failure elsewhere:

- argv commands are written as one `exec` with every element shell-quoted:
  nothing is evaluated or re-split;
- string commands run through `bash -c` with the substituted values already
  quoted by the template;
- the rc file is written to a temp name and renamed into place;
- a command ended by a signal (cancel, timeout, OOM killer) records a non-zero
  rc and names the signal in stderr, so it can never pass for a success;
- the only exec per job besides the command itself is the `mv` of the rc file;
  there are no sleeps on the normal path.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

#: seconds between TERM and KILL when a command is cancelled or timed out
KILL_GRACE = 10


@dataclass(slots=True)
class WrapperInput:
    """Everything a wrapper is rendered from (values are final: placeholders done)."""

    index: int
    name: str
    run: str
    metadir: str  # as the execution host sees it
    events_dir: str  # as the execution host sees it
    cmd: str | list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    prescript: str = ""
    postscript: str = ""
    timeout: float | None = None
    directives: Sequence[str] = ()
    options_digest: str = ""  # backend options that are not directives, part of the definition
    init_snippets: Sequence[str] = ()
    prep_snippets: Sequence[str] = ()
    end_snippets: Sequence[str] = ()
    upload: str = ""  # shell functions putting the job's files into a bucket (cloud.py)


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _comment(text: str) -> str:
    """Text safe inside a `#` comment line: no line breaks can end the comment."""
    return repr(text) if any(c in text for c in "\n\r") else _q(text)


def command_line(cmd: str | list[str]) -> str:
    """The shell line that runs the job's command, replacing the current (sub)shell."""
    if isinstance(cmd, str):
        return f"exec bash -c {_q(cmd)}"
    return "exec -- " + " ".join(_q(a) for a in cmd)


def _block(text: str) -> str:
    """A user snippet as its own block; empty text gives `:` so the block is valid."""
    text = text.strip("\n")
    return text if text.strip() else ":"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s % 3600 == 0 and s >= 3600:
        return f"{s // 3600}h"
    if s % 60 == 0 and s >= 60:
        return f"{s // 60}m"
    return f"{seconds:g}s"


@lru_cache(maxsize=64)
def _prelude(timeout: float | None, upload: str) -> str:
    """The part of every wrapper that does not depend on the job (cached)."""
    out = ['_xq_m="$XQDECL_JOB_METADIR" _xq_t="$XQDECL_TRIAL" _xq_why= _xq_child= _xq_dog=']
    if upload:
        out.append(upload)
    out.append('exec </dev/null >"$_xq_m/stdout.$_xq_t" 2>"$_xq_m/stderr.$_xq_t"')
    # is this shell the leader of its process group? then a stop can reach the whole job
    out.append('_xq_pg=; read -r _ _ _ _ _xq_pg _ < "/proc/$$/stat" 2>/dev/null')
    out.append(
        "_xq_stop() {  # a signal or the timeout: stop the command, KILL after a grace\n"
        '  _xq_why=${_xq_why:-$1}\n'
        '  [ -n "$_xq_child" ] || return 0\n'
        "  trap '' TERM\n"
        '  if [ "$_xq_pg" = "$$" ]; then kill -TERM 0 2>/dev/null; '
        'else kill -TERM "$_xq_child" 2>/dev/null; fi\n'
        f"  ( sleep {KILL_GRACE}; kill -KILL \"$_xq_child\" 2>/dev/null ) &\n"
        "}"
    )
    out.append("trap '_xq_stop \"terminated by SIGTERM\"' TERM")
    out.append("trap '_xq_stop \"interrupted by SIGINT\"' INT")
    out.append("trap '_xq_stop \"hung up (SIGHUP)\"' HUP")
    out.append("trap '_xq_stop \"terminated by SIGUSR2 (scheduler notice)\"' USR2")
    if timeout:
        out.append(f"trap '_xq_stop \"timed out after {_duration(timeout)}\"' USR1")
    out.append(
        'printf \'%s %s %s\\n\' "${HOSTNAME:-$(uname -n)}" "$$" '
        '"${EPOCHREALTIME:-$(date +%s)}" >"$_xq_m/start.$_xq_t"'
    )
    if upload:  # the start line doubles as the start event
        out.append('_xq_put "$_xq_m/start.$_xq_t" "$_xq_up/events/$_xq_tag.s"')
    else:
        out.append(': >"$_xq_ev/$_xq_tag.s"')
    return "\n".join(out)


@lru_cache(maxsize=256)
def _finish(postscript: str, end_snippets: tuple[str, ...], upload: bool) -> str:
    """The function that records the rc (temp + rename) and tells the runner."""
    finish = (
        "_xq_finish() {  # record the rc (temp + rename), then tell the runner\n"
        "  _xq_rc=$1\n"
        '  [ -z "$_xq_dog" ] || kill "$_xq_dog" 2>/dev/null\n'
        '  if [ -n "$_xq_why" ]; then printf \'xqdecl: %s (rc %s)\\n\' "$_xq_why" "$_xq_rc" >&2\n'
        '  elif [ "$_xq_rc" -gt 128 ] && _xq_sig=$(kill -l "$((_xq_rc - 128))" 2>/dev/null); then\n'
        "    printf 'xqdecl: the command ended with status %s (signal SIG%s)\\n' "
        '"$_xq_rc" "$_xq_sig" >&2\n'
        "  fi\n"
    )
    if postscript.strip() or any(end_snippets):
        finish += '  export XQDECL_JOB_RC="$_xq_rc"\n'
        for snippet in end_snippets:
            if snippet:
                finish += f"  {{\n{snippet}\n  }}\n"
        if postscript.strip():
            finish += (
                f"  (\n{_block(postscript)}\n  ) || "
                "printf 'xqdecl: postscript failed with status %s\\n' \"$?\" >&2\n"
            )
    record = (
        'printf \'%s\\n%s\\n\' "$_xq_rc" "$_xq_why" >"$_xq_m/rc.$_xq_t.tmp" '
        '&& mv -f -- "$_xq_m/rc.$_xq_t.tmp" "$_xq_m/rc.$_xq_t"'
    )
    if upload:  # files first, then the event that says they are there
        finish += (
            f"  {record}\n"
            '  _xq_put_trial "$_xq_up/jobs/$XQDECL_JOB_INDEX" && '
            '_xq_put "$_xq_m/rc.$_xq_t" "$_xq_up/events/$_xq_tag.e"\n'
        )
    else:  # the end event names the rc once the rc file holds it, so the poller
        # reads nothing; if the rc file could not be written, a bare event says "look"
        finish += (
            f"  if {record}; then\n"
            '    : >"$_xq_ev/$_xq_tag.e$_xq_rc"\n'
            '  else : >"$_xq_ev/$_xq_tag.e"; fi\n'
        )
    finish += '  exit "$_xq_rc"\n}'
    return finish


@lru_cache(maxsize=64)
def _wait(timeout: float | None) -> str:
    out = ["_xq_child=$!"]
    if timeout:
        out.append(
            "( trap 'kill \"$_xq_s\" 2>/dev/null; exit 0' TERM; "
            f"sleep {timeout:g} & _xq_s=$!; wait \"$_xq_s\" && kill -USR1 $$ ) &"
        )
        out.append("_xq_dog=$!")
    # `wait` returns early when a trapped signal arrives: wait again until the child is gone
    out.append(
        'while :; do wait "$_xq_child"; _xq_st=$?; '
        'kill -0 "$_xq_child" 2>/dev/null || break; done'
    )
    out.append('_xq_finish "$_xq_st"')
    return "\n".join(out)


def render(w: WrapperInput) -> str:
    """The complete wrapper script for one job; the trial number is its first argument."""
    out: list[str] = ["#!/usr/bin/env bash"]
    out.extend(w.directives)
    out.append(f"# xqdecl wrapper: job {w.index} {_comment(w.name)} of run {_comment(w.run)}")
    if w.options_digest:
        out.append(f"# options: {w.options_digest}")
    out.append("# usage: bash job.sh [TRIAL]   (written by xqdecl; edits are replaced)")
    out.append('XQDECL_TRIAL="${1:-0}"')
    out.append(
        f"export XQDECL_JOB_INDEX={w.index} XQDECL_JOB_NAME={_q(w.name)} XQDECL_RUN={_q(w.run)} "
        f"XQDECL_JOB_METADIR={_q(w.metadir)} XQDECL_TRIAL"
    )
    out.append(f"_xq_ev={_q(w.events_dir)} _xq_tag={w.index}.$XQDECL_TRIAL")
    out.append(_prelude(w.timeout, w.upload))
    if w.env:
        out.append("export " + " ".join(f"{k}={_q(v)}" for k, v in w.env.items()))
    out.extend(s for s in w.init_snippets if s)
    out.append(_finish(w.postscript, tuple(w.end_snippets), bool(w.upload)))
    if w.cwd:
        out.append(
            f"cd -- {_q(w.cwd)} || {{ _xq_why={_q('cannot enter the working directory ' + w.cwd)}; "
            "_xq_finish 1; }"
        )
    out.append("{")
    if w.prescript.strip():
        out.append(_block(w.prescript))
        out.append(
            "_xq_pre=$?; [ \"$_xq_pre\" = 0 ] || { printf 'xqdecl: prescript failed with "
            "status %s\\n' \"$_xq_pre\" >&2; exit \"$_xq_pre\"; }"
        )
    out.extend(s for s in w.prep_snippets if s)  # right before the command, as the seed does
    out.append(command_line(w.cmd))
    out.append("} &")
    out.append(_wait(w.timeout))
    return "\n".join(out) + "\n"
