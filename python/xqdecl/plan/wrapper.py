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
  the timeout and the KILL grace are bash helpers (`read -t` in a process
  substitution) that end when the wrapper closes their pipe: no `sleep`, and
  nothing outlives the job;
- the job's env (PATH, IFS, LC_ALL, ...), an exported function, BASH_ENV or a
  snippet's `set -e`/aliases cannot break the wrapper's own steps: its functions
  are defined before any user code, call builtins as `builtin NAME`, run `mv`
  from where it was found before the job's env was exported, and run as the
  first part of an `||` list (where bash ignores `set -e`);
- the rc of a stopped command is the command's own, never the number of the
  signal that stopped the wrapper's `wait` (see `_wait`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from xqdecl.backends.base import KILL_GRACE, DirectJob

__all__ = ["KILL_GRACE", "WrapperInput", "command_line", "direct_job", "render"]


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
    standalone: bool = False  # for a user to run by hand: it makes its folders itself


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


def direct_job(w: WrapperInput, trial: int) -> DirectJob | None:
    """The job as an executor starts it without this wrapper, when it needs nothing of
    the wrapper's shell (no prescript, postscript, plugin snippet or upload); else None."""
    if (w.prescript.strip() or w.postscript.strip() or w.upload or any(w.init_snippets)
            or any(w.prep_snippets) or any(w.end_snippets)):
        return None
    env = {"XQDECL_JOB_INDEX": str(w.index), "XQDECL_JOB_NAME": w.name, "XQDECL_RUN": w.run,
           "XQDECL_JOB_METADIR": w.metadir, "XQDECL_TRIAL": str(trial)}
    env.update(w.env)
    argv = ["bash", "-c", w.cmd] if isinstance(w.cmd, str) else list(w.cmd)
    return DirectJob(argv=argv, env=env, cwd=w.cwd, metadir=w.metadir, events=w.events_dir,
                     timeout_label=_duration(w.timeout) if w.timeout else "")


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s % 3600 == 0 and s >= 3600:
        return f"{s // 3600}h"
    if s % 60 == 0 and s >= 60:
        return f"{s // 60}m"
    return f"{seconds:g}s"


@lru_cache(maxsize=64)
def _prelude(timeout: float | None, upload: str, grace: float) -> str:
    """The part of every wrapper that does not depend on the job (cached)."""
    out = ["_xq_m=\"$XQDECL_JOB_METADIR\" _xq_t=\"$XQDECL_TRIAL\" _xq_why= _xq_child= _xq_int= "
           "_xq_dog= _xq_grace= _xq_pg= _xq_host= _xq_now="]
    if upload:
        out.append(upload)
        out.append("_xq_path=$PATH  # the upload tools are found with this PATH, not the job's")
    out.append('exec </dev/null >|"$_xq_m/stdout.$_xq_t" 2>|"$_xq_m/stderr.$_xq_t"')
    # found now, before the job's env or a snippet can change PATH (the hash is no fork)
    out.append("builtin hash mv 2>/dev/null; _xq_mv=${BASH_CMDS[mv]:-mv}; "
               "[[ $_xq_mv = /* ]] || _xq_mv=mv")
    # is this shell the leader of its process group? then a stop can reach the whole job
    out.append('builtin read -r _ _ _ _ _xq_pg _ <"/proc/$$/stat" 2>/dev/null || _xq_pg=')
    out.append(_stop(grace))
    out.append(_wait(timeout))
    for sig, why in _TRAPS:
        out.append(f"builtin trap '_xq_stop {sig} \"{why}\"' {sig}")
    if timeout:
        out.append(f"builtin trap '_xq_stop USR1 \"timed out after {_duration(timeout)}\"' USR1")
    # the kernel's host name: an inherited HOSTNAME may name the host the run was started on;
    # the epoch with a dot whatever the locale's decimal sign
    out.append(
        "builtin read -r _xq_host </proc/sys/kernel/hostname 2>/dev/null || "
        "_xq_host=$(builtin command -p uname -n 2>/dev/null) || _xq_host=${HOSTNAME:-}\n"
        "_xq_now=${EPOCHREALTIME:-}; [[ -n $_xq_now ]] || _xq_now=$(builtin command -p date +%s)\n"
        "builtin printf '%s %s %s\\n' \"$_xq_host\" \"$$\" \"${_xq_now/[!0-9]/.}\" "
        '>|"$_xq_m/start.$_xq_t"'
    )
    if upload:  # the start line doubles as the start event
        out.append('_xq_put "$_xq_m/start.$_xq_t" "$_xq_up/events/$_xq_tag.s"')
    else:
        out.append('>|"$_xq_ev/$_xq_tag.s"')
    return "\n".join(out)


#: signals that stop the job, and how the rc file's detail line names them
_TRAPS = (
    ("TERM", "terminated by SIGTERM"),
    ("INT", "interrupted by SIGINT"),
    ("HUP", "hung up (SIGHUP)"),
    ("USR2", "terminated by SIGUSR2 (scheduler notice)"),
)


def _after(seconds: float, then: str) -> str:
    """A helper process that runs `then` after `seconds`, unless the wrapper closes the
    pipe to it first (or ends: the kernel closes it then). It is a process substitution
    that reads its pipe with a timeout: no external command, nothing left behind."""
    return f"builtin read -r -t {_seconds(seconds)} _ || [[ $? -le 128 ]] || {then}"


def _seconds(seconds: float) -> str:
    """A count of seconds as `read -t` takes it: never with an exponent."""
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.6f}".rstrip("0")


def _stop(grace: float) -> str:
    """The trap handler of every stop; a `set -e` or `set -u` from a user's snippet
    cannot end the wrapper inside it."""
    kill = 'builtin kill -KILL "$_xq_child" 2>/dev/null'
    return (
        "_xq_stop() {  # a signal or the timeout: stop the command, KILL after a grace\n"
        "  _xq_int=$1 _xq_why=${_xq_why:-$2}\n"
        "  [[ -n $_xq_child ]] || builtin return 0\n"
        "  builtin trap '' TERM\n"
        '  if [[ $_xq_pg = "$$" ]]; then _xq_to=0; else _xq_to=$_xq_child; fi\n'
        '  builtin kill -TERM "$_xq_to" 2>/dev/null || builtin true\n'
        f"  [[ -n $_xq_grace ]] || exec {{_xq_grace}}> >({_after(grace, kill)})\n"
        "}"
    )


@lru_cache(maxsize=64)
def _wait(timeout: float | None) -> str:
    """`_xq_wait PID`: waits for the command (started as PID) and records its rc.

    A trapped signal cuts `wait` short with 128+signal as its status, which is not
    the command's: after a trap ran, a status above 128 is asked for again (bash
    keeps the status of a child it reaped, so the second `wait` gives the child's
    own). When the command ended at the very moment the signal came, bash may have
    lost its status (the second `wait` answers -1 or 127): the first status stands,
    unless it is the trapped signal's number, which is never the command's rc; the
    command was being stopped then, and 143 (TERM) is what a stop gives."""
    out = [
        "_xq_wait() {  # wait for the command, then record its rc",
        "  _xq_child=$1",
        "  builtin set +o posix 2>/dev/null  # bash < 5.1 has no process substitution in it",
        "  # a signal that came before the command started stops it now",
        '  [[ -z $_xq_why ]] || _xq_stop "$_xq_int" "$_xq_why"',
    ]
    if timeout:
        usr1 = _after(timeout, 'builtin kill -USR1 "$$"')
        out.append(f"  exec {{_xq_dog}}> >({usr1})  # USR1 to the wrapper at the timeout")
    out += [
        "  _xq_st= _xq_maybe=",
        "  while [[ -z $_xq_st ]]; do",
        "    _xq_int= _xq_w=0",
        '    builtin wait "$_xq_child" || _xq_w=$?',
        "    if [[ -n $_xq_maybe ]] && (( _xq_w < 0 || _xq_w == 127 )); then  # bash lost it",
        '      [[ $(builtin kill -l "$((_xq_maybe - 128))" 2>/dev/null) = "$_xq_sig" ]] '
        "&& _xq_maybe=143",
        "      _xq_st=$_xq_maybe",
        "    elif [[ -n $_xq_int && $_xq_w -gt 128 ]]; then _xq_maybe=$_xq_w _xq_sig=$_xq_int",
        "    else _xq_st=$_xq_w; fi",
        "  done",
        '  _xq_finish "$_xq_st"',
        "}",
    ]
    return "\n".join(out)


@lru_cache(maxsize=256)
def _finish(postscript: str, end_snippets: tuple[str, ...], upload: bool) -> str:
    """The function that records the rc (temp + rename), then tells the runner."""
    finish = (
        "_xq_finish() {  # record the rc (temp + rename), then tell the runner\n"
        "  _xq_rc=$1 _xq_child=\n"
        "  builtin trap '' USR1  # the command is over: a late timeout changes nothing\n"
        "  [[ -z $_xq_dog ]] || exec {_xq_dog}>&-  # the helpers read end-of-file and end\n"
        "  [[ -z $_xq_grace ]] || exec {_xq_grace}>&-\n"
        "  if [[ -n $_xq_why ]]; then builtin printf 'xqdecl: %s (rc %s)\\n' "
        '"$_xq_why" "$_xq_rc" >&2\n'
        '  elif [[ $_xq_rc -gt 128 ]] && '
        '_xq_sig=$(builtin kill -l "$((_xq_rc - 128))" 2>/dev/null); then\n'
        "    builtin printf 'xqdecl: the command ended with status %s (signal SIG%s)\\n' "
        '"$_xq_rc" "$_xq_sig" >&2\n'
        "  fi\n"
    )
    if postscript.strip() or any(end_snippets):
        finish += '  builtin export XQDECL_JOB_RC="$_xq_rc"\n'
        for snippet in end_snippets:
            if snippet:
                finish += f"  {{\n{snippet}\n  }}\n"
        if postscript.strip():
            finish += (
                f"  (\n{_block(postscript)}\n  ) || "
                "builtin printf 'xqdecl: postscript failed with status %s\\n' \"$?\" >&2\n"
            )
    # `mv` as found before the job's env was exported; `command -p` if it was not found
    record = (
        'builtin printf \'%s\\n%s\\n\' "$_xq_rc" "$_xq_why" >|"$_xq_m/rc.$_xq_t.tmp" '
        '&& builtin command -p "$_xq_mv" -f -- "$_xq_m/rc.$_xq_t.tmp" "$_xq_m/rc.$_xq_t"'
    )
    if upload:  # files first, then the event that says they are there
        finish += (
            f"  {record}\n"
            '  PATH=$_xq_path _xq_put_trial "$_xq_up/jobs/$XQDECL_JOB_INDEX" && '
            'PATH=$_xq_path _xq_put "$_xq_m/rc.$_xq_t" "$_xq_up/events/$_xq_tag.e"\n'
        )
    else:  # the end event names the rc once the rc file holds it, so the poller
        # reads nothing; if the rc file could not be written, a bare event says "look"
        finish += (
            f"  if {record}; then\n"
            '    >|"$_xq_ev/$_xq_tag.e$_xq_rc"\n'
            '  else >|"$_xq_ev/$_xq_tag.e"; fi\n'
        )
    finish += '  builtin exit "$_xq_rc"\n}'
    return finish


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
    if w.standalone:
        out.append('builtin command -p mkdir -p -- "$XQDECL_JOB_METADIR" "$_xq_ev" || '
                   "builtin exit 1")
    out.append(_prelude(w.timeout, w.upload, KILL_GRACE))
    # defined before any user code runs: aliases a snippet turns on cannot reach it
    out.append(_finish(w.postscript, tuple(w.end_snippets), bool(w.upload)))
    if w.env:
        out.append("export " + " ".join(f"{k}={_q(v)}" for k, v in w.env.items()))
    out.extend(s for s in w.init_snippets if s)
    # the wrapper's functions are called as the first part of an `||` list: bash ignores
    # a `set -e` of a user's snippet inside them, so a failing step cannot skip the rc file
    if w.cwd:
        out.append(
            f"cd -- {_q(w.cwd)} || {{ _xq_why={_q('cannot enter the working directory ' + w.cwd)}; "
            "_xq_finish 1 || builtin exit 1; }"
        )
    out.append("{")
    if w.prescript.strip():
        out.append(_block(w.prescript))
        out.append(
            "_xq_pre=$?; [[ $_xq_pre = 0 ]] || { builtin printf 'xqdecl: prescript failed with "
            "status %s\\n' \"$_xq_pre\" >&2; builtin exit \"$_xq_pre\"; }"
        )
    out.extend(s for s in w.prep_snippets if s)  # right before the command, as the seed does
    out.append(command_line(w.cmd))
    out.append("} &")
    out.append('_xq_wait "$!" || builtin exit 1')
    return "\n".join(out) + "\n"
