"""Why and how a run stops: signals, `xqdecl kill`, a halt, an infrastructure error.

Signal handlers go in before anything slow (planning a large spec), so a
Ctrl-C or SIGTERM at any moment is seen within one cycle; a second one
forces the cancel (KILL without waiting for a grace).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from xqdecl.errors import ExitCode


class Stop:
    """The run's stop request: its reason (an exit code), and whether to force it."""

    def __init__(self, say: Callable[[str], None], wake: Callable[[], None]):
        self.reason: ExitCode | None = None
        self.force = False
        self.signal_name: str | None = None
        self.message = ""
        self._say = say
        self._wake = wake
        self._installed: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def __bool__(self) -> bool:
        return self.reason is not None

    def request(self, reason: ExitCode, message: str = "") -> None:
        """Stop the run with `reason` (the first reason given is kept)."""
        if self.reason is None:
            self.reason = reason
            self.message = message
        self._wake()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM in the running loop (main thread only)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
            except (RuntimeError, ValueError):  # not the main thread
                pass

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in self._installed:
                self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        self.signal_name = name
        if self.reason == ExitCode.INTERRUPTED:
            self.force = True
            self._say("interrupted again: killing live jobs now")
        else:
            self._say(f"{name} received: cancelling live jobs (again to force)")
        self.reason = ExitCode.INTERRUPTED
        self._wake()
