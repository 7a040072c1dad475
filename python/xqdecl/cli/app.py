"""The `xqdecl` command line.

A Ctrl-C or SIGTERM at any moment ends the command with exit 130 and one
line, never a traceback: the package's first lines take both signals over
before anything heavy is imported; `main` then turns them into
KeyboardInterrupt for the command, and a run's own handlers (cancel the live
jobs first) take over while its jobs are live.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from xqdecl.cli.init_spec import SCHEMA_FILE
from xqdecl.cli.output import MODES, Output
from xqdecl.cli.streams import guarded_std_streams
from xqdecl.errors import ExitCode, XqdeclError

#: default seconds `xqdecl kill` waits for a live runner before cancelling its jobs itself
KILL_WAIT = 15.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--output", "-o", choices=MODES, default=argparse.SUPPRESS,
        help="cli (default), json or quiet; env XQDECL_OUTPUT",
    )
    p = argparse.ArgumentParser(
        prog="xqdecl", parents=[common],
        description="Run the jobs of a declarative TOML/YAML spec, locally or on a cluster.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, helptext: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=helptext, description=helptext)

    r = cmd("run", "validate, plan, submit and watch every job until all are done")
    r.add_argument("spec")
    r.add_argument("--dry-run", "-n", action="store_true", help="render everything, submit nothing")
    r.add_argument("--fresh", action="store_true", help="forget earlier results and run everything")
    cmd("validate", "check the spec only").add_argument("spec")
    pl = cmd("plan", "show the jobs per group, arrays/chunks and the first commands")
    pl.add_argument("spec")
    pl.add_argument("--show", type=int, default=5, help="commands to show per group")
    pl.add_argument("--job", metavar="N", help="one job (index or name): with --script, "
                    "print its standalone wrapper")
    pl.add_argument("--script", action="store_true",
                    help="print the wrapper script of --job N (bash it to run the job by hand)")
    st = cmd("status", "per-status counts and the failed jobs of a run")
    st.add_argument("spec")
    kl = cmd("kill", "cancel every live job of a run")
    kl.add_argument("spec")
    kl.add_argument("--wait", type=_seconds, default=KILL_WAIT, metavar="SECONDS",
                    help="how long a live runner gets to stop before kill cancels its jobs "
                         f"itself (default {KILL_WAIT:g})")
    lg = cmd("logs", "print the stdout (or stderr) of one job")
    lg.add_argument("spec")
    lg.add_argument("job", help="job index or name")
    lg.add_argument("--stderr", action="store_true")
    lg.add_argument("--trial", type=int, default=None, help="attempt number (default: the last)")
    lg.add_argument("--raw", action="store_true",
                    help="the bytes as they are, even on a terminal (where control characters "
                         "are otherwise shown as \\xNN)")
    cmd("schema", "print the JSON Schema of the spec")
    rp = cmd("report", "write the run's HTML report (counts, timeline, durations, failures)")
    rp.add_argument("spec")
    rp.add_argument("--file", "-f", default=None, metavar="PATH",
                    help="where to write it (default: report.html in the run's folder)")
    it = cmd("init", "write a commented starter spec (never over an existing file)")
    it.add_argument("path", nargs="?", default="xqdecl.toml",
                    help="the spec to write; .yaml/.yml for YAML (default: xqdecl.toml)")
    it.add_argument("--schema", action="store_true",
                    help=f"also write {SCHEMA_FILE} beside it and point editors at it")
    return p


class _Interrupts:
    """SIGINT and SIGTERM during one command: the first raises KeyboardInterrupt
    (so the command unwinds and says one line); another one, while that is
    under way, ends the process at once with 130."""

    def __init__(self) -> None:
        self.fired = False

    def handler(self, signum: int, frame: object) -> None:
        if self.fired:
            os._exit(int(ExitCode.INTERRUPTED))
        self.fired = True
        raise KeyboardInterrupt

    def unraisable(self, info: Any) -> None:
        """The interrupt landed where Python cannot raise it (a callback, a __del__):
        rather than print it and go on as if nothing happened, end here."""
        if self.fired and isinstance(info.exc_value, KeyboardInterrupt):
            with contextlib.suppress(OSError):
                os.write(2, b"xqdecl: interrupted\n")
            os._exit(int(ExitCode.INTERRUPTED))
        sys.__unraisablehook__(info)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        saved = {}
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                saved[sig] = signal.signal(sig, self.handler)
        hook, sys.unraisablehook = sys.unraisablehook, self.unraisable
        try:
            yield
        finally:
            sys.unraisablehook = hook
            for sig, old in saved.items():
                signal.signal(sig, old)


def main(argv: Sequence[str] | None = None) -> int:
    interrupts = _Interrupts()
    with guarded_std_streams():
        try:
            with interrupts.installed():
                return _main(argv, interrupts)
        except KeyboardInterrupt:  # in the last instants, between two handlers
            print("xqdecl: interrupted", file=sys.stderr, flush=True)
            return int(ExitCode.INTERRUPTED)


def _main(argv: Sequence[str] | None, interrupts: _Interrupts) -> int:
    try:
        args = _parser().parse_args(argv)
        mode = getattr(args, "output", None) or os.environ.get("XQDECL_OUTPUT", "cli")
        if mode not in MODES:
            print(f"xqdecl: XQDECL_OUTPUT must be one of {', '.join(MODES)}", file=sys.stderr)
            return ExitCode.USAGE
        out = Output(mode)
    except KeyboardInterrupt:
        print("xqdecl: interrupted", file=sys.stderr, flush=True)
        return int(ExitCode.INTERRUPTED)
    try:
        return int(_dispatch(args, out, interrupts))
    except KeyboardInterrupt:
        out.error("xqdecl: interrupted")
        return int(ExitCode.INTERRUPTED)
    except XqdeclError as exc:
        out.error(f"xqdecl: {exc}" if not hasattr(exc, "issues") else str(exc))
        if out.mode == "json":
            out.json({"error": str(exc), "issues": getattr(exc, "issues", [str(exc)]),
                      "exit_code": int(exc.exit_code)})
        return int(exc.exit_code)
    except OSError as exc:  # the machine said no: disk full, permissions, missing folder
        where = f": {exc.filename}" if exc.filename else ""
        out.error(f"xqdecl: {exc.strerror or exc}{where}")
        return int(ExitCode.BACKEND)
    except Exception:  # our bug, not the user's: say so, with the details
        out.error("xqdecl: internal error (please report it with the lines below)")
        traceback.print_exc()
        return int(ExitCode.BACKEND)


def _run_async(make: Callable[[], Any], interrupts: _Interrupts) -> Any:
    """asyncio.run for a command, keeping our signal handlers in place around it.

    A run installs its own handlers while its jobs are live; when it removes
    them, asyncio would put back the defaults (SIGTERM: die without a word),
    so ours go back instead. Once interrupted, asyncio's complaints about
    tasks torn down mid-way are not shown (the command says one line)."""

    class Loop(asyncio.SelectorEventLoop):
        def remove_signal_handler(self, sig: int) -> bool:
            removed = super().remove_signal_handler(sig)
            if sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError):
                    signal.signal(sig, interrupts.handler)
            return removed

    def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not interrupts.fired:
            loop.default_exception_handler(context)

    def factory() -> asyncio.AbstractEventLoop:
        loop = Loop()
        loop.set_exception_handler(on_error)
        return loop

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make())


def _dispatch(args: argparse.Namespace, out: Output, interrupts: _Interrupts) -> int:
    from xqdecl.cli import commands
    if args.command == "schema":
        return commands.schema(out)
    if args.command == "validate":
        return commands.validate(args.spec, out)
    if args.command == "plan":
        if args.script or args.job is not None:
            if not (args.script and args.job is not None):
                out.error("xqdecl plan: --job N and --script go together")
                return ExitCode.USAGE
            return commands.job_script(args.spec, out, args.job)
        return commands.plan(args.spec, out, args.show)
    if args.command == "run":
        if args.dry_run:
            return commands.dry_run(args.spec, out)
        return int(_run_async(lambda: commands.run(args.spec, out, fresh=args.fresh),
                              interrupts))
    if args.command == "status":
        return commands.status(args.spec, out)
    if args.command == "logs":
        return commands.logs(args.spec, out, args.job, args.stderr, args.trial, raw=args.raw)
    if args.command == "kill":
        return commands.kill(args.spec, out, wait=args.wait)
    if args.command == "report":
        return commands.report(args.spec, out, args.file)
    if args.command == "init":
        return commands.init(args.path, out, args.schema)
    raise AssertionError(args.command)

