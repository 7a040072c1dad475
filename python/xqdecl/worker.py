"""The run's job executor: `python -m xqdecl.worker [--grace SECONDS]`.

The runner starts it once per run (in a session of its own), writes job records
on its stdin and reads `s`/`e`/`!` lines from its stdout; the work is done by
the native module (rust/exec). This module imports nothing else of the package,
so the process starts fast.
"""

import argparse
import sys

from xqdecl._xqdecl import run_executor

#: seconds between the TERM and the KILL of a job stopped by its timeout
#: (the runner's KILL_GRACE; not imported, to keep this start light)
DEFAULT_GRACE = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xqdecl.worker", description=__doc__)
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE, metavar="SECONDS",
                        help="seconds between a timed-out job's TERM and KILL")
    parser.add_argument("--events", choices=("always", "unheard"), default="always",
                        help="when a direct job's event files are written: always, or only "
                             "once nobody reads the s/e lines (default: always)")
    args = parser.parse_args(argv)
    return run_executor(args.grace, args.events == "always")


if __name__ == "__main__":
    sys.exit(main())
