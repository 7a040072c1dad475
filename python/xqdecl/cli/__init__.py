"""The command line layer: argv, the commands, and what they print.

`main` is the console script's entry (`xqdecl.cli:main`); it imports the
parser on first use, so the package's own signal handling is in place before
anything heavy loads (see `xqdecl/__init__.py`).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from xqdecl.cli.app import main as run_main

    return run_main(argv)


__all__ = ["main"]
