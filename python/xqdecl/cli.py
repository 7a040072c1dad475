"""The `xqdecl` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Sequence

from xqdecl.errors import ExitCode, XqdeclError
from xqdecl.init_spec import SCHEMA_FILE
from xqdecl.output import MODES, Output


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
    st = cmd("status", "per-status counts and the failed jobs of a run")
    st.add_argument("spec")
    cmd("kill", "cancel every live job of a run").add_argument("spec")
    lg = cmd("logs", "print the stdout (or stderr) of one job")
    lg.add_argument("spec")
    lg.add_argument("job", help="job index or name")
    lg.add_argument("--stderr", action="store_true")
    lg.add_argument("--trial", type=int, default=None, help="attempt number (default: the last)")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    mode = getattr(args, "output", None) or os.environ.get("XQDECL_OUTPUT", "cli")
    if mode not in MODES:
        print(f"xqdecl: XQDECL_OUTPUT must be one of {', '.join(MODES)}", file=sys.stderr)
        return ExitCode.USAGE
    out = Output(mode)
    try:
        return int(_dispatch(args, out))
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
    except KeyboardInterrupt:
        out.error("xqdecl: interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception:  # our bug, not the user's: say so, with the details
        out.error("xqdecl: internal error (please report it with the lines below)")
        traceback.print_exc()
        return int(ExitCode.BACKEND)


def _dispatch(args: argparse.Namespace, out: Output) -> int:
    from xqdecl import commands

    if args.command == "schema":
        return commands.schema(out)
    if args.command == "validate":
        return commands.validate(args.spec, out)
    if args.command == "plan":
        return commands.plan(args.spec, out, args.show)
    if args.command == "run":
        if args.dry_run:
            return commands.dry_run(args.spec, out)
        return asyncio.run(commands.run(args.spec, out, fresh=args.fresh))
    if args.command == "status":
        return commands.status(args.spec, out)
    if args.command == "logs":
        return commands.logs(args.spec, out, args.job, args.stderr, args.trial)
    if args.command == "kill":
        return commands.kill(args.spec, out)
    if args.command == "report":
        return commands.report(args.spec, out, args.file)
    if args.command == "init":
        return commands.init(args.path, out, args.schema)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
