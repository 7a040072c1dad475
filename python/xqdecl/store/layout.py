"""Where things live in a run directory (see docs/internals.md), how one is
claimed, and the package's one way of replacing a file atomically."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from pathlib import Path

from xqdecl.errors import StoreError

#: the file that makes a folder a run directory: "xqdecl-run <format>\n<run name>\n"
MARKER = ".xqdecl-run"
#: the layout version written into the marker
FORMAT = 1
#: files only a run directory of the format before the marker has
_OLD_FORMAT_SIGNS = ("journal.db", "runner.lock")
#: what `status` and `report` may leave in a run's folder before any run made it
_LEFT_BY_READERS = frozenset({"journal.mirror.db", "report.html"})


class RunDir:
    """Paths of one run's directory, as the runner sees them."""

    __slots__ = ("root",)

    #: names of a trial's files in a metadir (`<kind>.<trial>`)
    TRIAL_KINDS = ("start", "rc", "stdout", "stderr", "notes")

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def journal(self) -> Path:
        return self.root / "journal.db"

    @property
    def marker(self) -> Path:
        return self.root / MARKER

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

    @property
    def kill_request(self) -> Path:
        """Left by `xqdecl kill` for a runner it cannot signal."""
        return self.root / "kill.request"

    @property
    def history(self) -> Path:
        """Earlier runs' attempts of jobs that run again (`history/<run>/<index>/`)."""
        return self.root / "history"

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

    def create(self, run: str | None = None) -> None:
        """Make (or reopen) the run directory of run `run` (default: the folder's name).

        A folder is only ever used as a run directory if this code made it
        one: it holds the marker, or it is empty, or it is a run directory of
        the format before the marker (then it is adopted). Any other folder is
        refused with a StoreError, and nothing in it is touched. Only the
        runner and a dry run call this: `status`, `logs` and `kill` never
        claim a folder.
        """
        try:
            if not self.marker.exists() and self.root.exists():
                why = self._foreign()
                if why:
                    raise StoreError(
                        f"{self.root} exists and is not an xqdecl run directory ({why}); "
                        "xqdecl will not write into it: move it away, or choose another "
                        "`workdir` or run `name`"
                    )
            for d in (self.root, self.events, self.jobs, self.arrays):
                d.mkdir(parents=True, exist_ok=True)
            if not self.marker.exists():
                write_atomic(self.marker, f"xqdecl-run {FORMAT}\n{run or self.root.name}\n")
        except OSError as exc:
            raise StoreError(
                f"cannot create the run directory {self.root}: {exc.strerror or exc}"
            ) from None

    def _foreign(self) -> str:
        """Why an existing folder without the marker is not ours ('' when it may be used)."""
        if not self.root.is_dir():
            return "it is not a folder"
        names = os.listdir(self.root)
        if not names:
            return ""
        if any(n in names for n in _OLD_FORMAT_SIGNS) or has_job_folders(self.jobs):
            return ""  # an earlier xqdecl's run directory: adopt it
        if _LEFT_BY_READERS.issuperset(names):
            return ""  # `xqdecl report` or a cloud run's `status` came first
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        return f"it has no {MARKER} file and holds other files: {shown}"


def has_job_folders(jobs: Path) -> bool:
    """True when `jobs/` holds at least one `<index>/` folder (read up to that entry)."""
    try:
        with os.scandir(jobs) as it:
            return any(e.name.isdigit() and e.is_dir(follow_symlinks=False) for e in it)
    except OSError:
        return False


_tmp_names = itertools.count()


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, fsync: bool = False,
                 mode: int = 0o666) -> None:
    """Replace `path` with `data` at once: a temp file in the same folder, then a rename.

    A reader sees the old content or the new, never a part; a process still
    reading the old file (bash running a wrapper) keeps its copy. `mode` is
    masked by the umask, as for any new file. With `fsync`, the data and the
    rename are on disk when this returns. On error the temp file is removed.
    """
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode()
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{next(_tmp_names)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        dfd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def wrapper_hash(data: bytes) -> str:
    """A wrapper's definition hash: what the journal keeps as `hash`."""
    return hashlib.sha256(data).hexdigest()[:32]


def read_or_none(path: str | os.PathLike[str]) -> bytes | None:
    """A file's bytes; None when it does not exist or cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


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
        from xqdecl.store.cloud import is_cloud, staging_dir

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
