"""Waiting in tests: for a file a job makes, for the processes a test left behind."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def pids_with(marker: str) -> list[int]:
    """Live processes whose command line starts with `marker` (zombies have none)."""
    out = subprocess.run(["pgrep", "-f", f"^{marker}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def pids_left(marker: str, limit: float = 10.0) -> list[int]:
    """The processes still running `marker` once they had `limit` seconds to go."""
    deadline = time.monotonic() + limit
    while (pids := pids_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def wait_for_file(path: Path, limit: float = 10.0) -> bool:
    """Whether `path` appeared within `limit` seconds."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
