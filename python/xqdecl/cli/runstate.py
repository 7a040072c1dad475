"""Reading a run's state for `status` and `logs`: from its local folder, or
from its bucket when the workdir is in the cloud and this machine has no copy."""

from __future__ import annotations

from pathlib import Path

from xqdecl.store.cloud import CloudStore
from xqdecl.store.layout import RunDir, locate, tail, write_atomic


class RunState:
    def __init__(self, spec: object):
        loc = locate(spec)
        self.rd = RunDir(loc.local)
        self.store = CloudStore(loc.url) if loc.url else None

    def journal(self) -> Path | None:
        """The journal to read: the local one, else a fresh copy of the bucket's."""
        if self.rd.journal.exists():
            return self.rd.journal
        if self.store is None:
            return None
        data = self.store.read_bytes("journal.db")
        if not data:
            return None
        self.rd.root.mkdir(parents=True, exist_ok=True)
        mirror = self.rd.root / "journal.mirror.db"
        write_atomic(mirror, data)
        return mirror

    def read(self, index: int, kind: str, trial: int) -> bytes | None:
        """A job file (stdout, stderr, notes, ...) of one trial; None when missing."""
        try:
            return self.rd.file(index, kind, trial).read_bytes()
        except OSError:
            pass
        if self.store is None:
            return None
        return self.store.read_bytes(f"jobs/{index}/{kind}.{trial}")

    def tail(self, index: int, kind: str, trial: int, lines: int) -> list[str]:
        path = self.rd.file(index, kind, trial)
        if path.exists() or self.store is None:
            return tail(path, lines)
        data = self.read(index, kind, trial) or b""
        return data[-16384:].decode("utf-8", errors="replace").splitlines()[-lines:]
