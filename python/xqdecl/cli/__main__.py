"""`python -m xqdecl.cli`: the command line, with Ctrl-C and SIGTERM taken over first."""

import signal
import sys

from xqdecl import _stop_at_once

signal.signal(signal.SIGINT, _stop_at_once)
signal.signal(signal.SIGTERM, _stop_at_once)

from xqdecl.cli.app import main  # noqa: E402  (after the handlers, on purpose)

sys.exit(main())
