"""Where things live in a run directory (see docs/internals.md)."""

from __future__ import annotations

import os
from pathlib import Path


class RunDir:
    """Paths of one run's directory, as the runner sees them."""

    __slots__ = ("root",)

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def journal(self) -> Path:
        return self.root / "journal.db"

    @property
    def lock(self) -> Path:
        return self.root / "runner.lock"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def arrays(self) -> Path:
        return self.root / "arrays"

    def metadir(self, index: int) -> Path:
        return self.root / "jobs" / str(index)

    def script(self, index: int) -> Path:
        return self.root / "jobs" / str(index) / "job.sh"

    def script_str(self, index: int) -> str:
        """`script` as a plain string (cheaper in loops over every job)."""
        return f"{self.root}/jobs/{index}/job.sh"

    def file(self, index: int, kind: str, trial: int) -> Path:
        """`kind` is one of start, rc, stdout, stderr, notes."""
        return self.root / "jobs" / str(index) / f"{kind}.{trial}"

    def create(self) -> None:
        for d in (self.root, self.events, self.jobs, self.arrays):
            d.mkdir(parents=True, exist_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temp file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def tail(path: Path, lines: int = 10, max_bytes: int = 16384) -> list[str]:
    """The last lines of a (possibly huge) text file; [] when it is missing."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]
