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


class RunLocation:
    """Where a run lives: its local folder, the path jobs see, and a bucket if any.

    A local workdir: all three are the run directory. A cloud workdir: the
    runner's own files stay in a local staging folder; jobs see either the
    mounted bucket (`mounted_workdir`) or their local scratch copy, which the
    wrapper uploads (`upload`).
    """

    __slots__ = ("local", "mounted", "upload", "url")

    def __init__(self, workdir: str, run: str, base_dir: Path, mounted_workdir: str | None):
        from xqdecl.cloud import is_cloud, staging_dir

        self.url: str | None = None
        if is_cloud(workdir):
            self.url = f"{workdir.rstrip('/')}/{run}"
            self.local = staging_dir(base_dir, workdir, run)
        else:
            self.local = Path(workdir) / run
        if mounted_workdir:
            self.mounted = f"{mounted_workdir.rstrip('/')}/{run}"
        else:
            self.mounted = str(self.local)
        self.upload = self.url is not None and not mounted_workdir


def locate(spec: object) -> RunLocation:
    """The RunLocation of a validated spec."""
    return RunLocation(
        spec.workdir,  # type: ignore[attr-defined]
        spec.name,  # type: ignore[attr-defined]
        spec.base_dir,  # type: ignore[attr-defined]
        getattr(spec.scheduler, "mounted_workdir", None),  # type: ignore[attr-defined]
    )
