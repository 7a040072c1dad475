"""The run journal: the runner's own record of every job, in SQLite.

Only the runner writes it (the wrappers write their own files, see
docs/internals.md). It is written in one transaction per loop cycle, and
before a submission the job's intent (`submitting`, trial) is committed, so a
runner killed at any instant leaves a journal that says what may be live.
Readers (`xqdecl status` from another terminal) open it read-only; WAL mode
lets them read while the runner writes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqdecl.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    idx INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    grp INTEGER NOT NULL,
    hash TEXT NOT NULL,
    status TEXT NOT NULL,
    trial INTEGER NOT NULL DEFAULT 0,
    jid TEXT,
    rc INTEGER,
    submitted REAL,
    started REAL,
    ended REAL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: the journal's format, kept in SQLite's user_version
FORMAT = 1

#: statuses a job can have in the journal
QUEUED, SUBMITTING, SUBMITTED, RUNNING = "queued", "submitting", "submitted", "running"
SUCCEEDED, FAILED, CANCELLED, SKIPPED = "succeeded", "failed", "cancelled", "skipped"
CANCELLING = "cancelling"  # the run asked it to stop; recorded before the cancel is sent
STATUSES = (QUEUED, SUBMITTING, SUBMITTED, RUNNING, CANCELLING, SUCCEEDED, FAILED, CANCELLED,
            SKIPPED)
LIVE = frozenset({SUBMITTING, SUBMITTED, RUNNING, CANCELLING})


@dataclass(slots=True)
class JobRow:
    """One job as the journal has it."""

    idx: int
    name: str
    grp: int
    hash: str
    status: str
    trial: int = 0
    jid: str | None = None
    rc: int | None = None
    submitted: float | None = None
    started: float | None = None
    ended: float | None = None
    note: str | None = None
    first_trial: int = 0  # trial this run started the job at (not stored)

    def values(self) -> tuple[Any, ...]:
        return (
            self.name, self.grp, self.hash, self.status, self.trial, self.jid, self.rc,
            self.submitted, self.started, self.ended, self.note, self.idx,
        )


_COLUMNS = "idx, name, grp, hash, status, trial, jid, rc, submitted, started, ended, note"


#: columns each table must have for a journal to be usable
_TABLES = {"jobs": set(_COLUMNS.split(", ")), "meta": {"key", "value"}}
#: SQLite's primary result codes that mean "this file is not a sound database"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def _wrap(exc: sqlite3.Error, path: Path) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    hint = ""
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        hint = " (is its folder read-only, or owned by someone else?)"
    elif name.startswith("SQLITE_FULL"):
        hint = " (the disk is full)"
    return StoreError(f"the run journal {path} cannot be used: {exc}{hint}")


def is_corruption(exc: sqlite3.Error) -> bool:
    """True for SQLite's 'malformed' and 'not a database' errors, the file's own fault
    (not a lock, a permission or a full disk)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def problem(path: Path) -> str | None:
    """What makes an existing journal file unusable, or None when it is sound.

    Unusable: empty, not a SQLite file, failing `PRAGMA quick_check`, or
    lacking a table or column. Raises StoreError when the file cannot be
    looked at for other reasons (permissions, read-only folder, locked).
    """
    try:
        if path.stat().st_size == 0:
            return "it is empty"
    except OSError as exc:
        raise StoreError(f"cannot read the run journal {path}: {exc.strerror or exc}") from None
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise _wrap(exc, path) from exc
    try:
        check = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
        if check != ["ok"]:
            return f"it is damaged ({'; '.join(map(str, check))})"
        for table, wanted in _TABLES.items():
            have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                return f"its {table} table is missing or incomplete"
    except sqlite3.Error as exc:
        if is_corruption(exc):
            return f"it is not a readable SQLite database ({exc})"
        raise _wrap(exc, path) from exc
    finally:
        db.close()
    return None


class Journal:
    """Read-write access for the runner."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            # a write now, so a read-only folder or file fails here, clearly, and not
            # at the first update; it also records the journal's format
            self.db.execute(f"PRAGMA user_version={FORMAT}")
        except sqlite3.Error as exc:
            raise _wrap(exc, path) from exc

    def close(self) -> None:
        self.db.close()

    def load(self) -> dict[int, JobRow]:
        try:
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM jobs").fetchall()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        return {r[0]: JobRow(*r) for r in rows}

    def replace_all(self, rows: Iterable[JobRow]) -> None:
        """Write the whole job table (start of a run)."""
        try:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM jobs")
            self.db.executemany(
                f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                ((r.idx, *r.values()[:-1]) for r in rows),
            )
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _wrap(exc, self.path) from exc

    def update(self, rows: Iterable[JobRow]) -> None:
        """Write the given rows in one transaction."""
        try:
            self.db.execute("BEGIN")
            self.db.executemany(
                "UPDATE jobs SET name=?, grp=?, hash=?, status=?, trial=?, jid=?, rc=?, "
                "submitted=?, started=?, ended=?, note=? WHERE idx=?",
                (r.values() for r in rows),
            )
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _wrap(exc, self.path) from exc

    def rows_between(self, lo: int, hi: int) -> dict[int, JobRow]:
        """The rows of jobs lo..hi-1 (planning reads the journal a slice at a time)."""
        try:
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE idx >= ? AND idx < ?",
                                   (lo, hi)).fetchall()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        return {r[0]: JobRow(*r) for r in rows}

    def upsert(self, rows: Iterable[JobRow]) -> None:
        """Write the given rows (new or not) in one transaction."""
        try:
            self.db.execute("BEGIN")
            self.db.executemany(
                f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(idx) DO UPDATE SET name=excluded.name, grp=excluded.grp, "
                "hash=excluded.hash, status=excluded.status, trial=excluded.trial, "
                "jid=excluded.jid, rc=excluded.rc, submitted=excluded.submitted, "
                "started=excluded.started, ended=excluded.ended, note=excluded.note",
                ((r.idx, *r.values()[:-1]) for r in rows),
            )
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _wrap(exc, self.path) from exc

    def drop_from(self, total: int) -> None:
        """Forget jobs with an index >= `total` (the spec has fewer jobs now)."""
        try:
            self.db.execute("DELETE FROM jobs WHERE idx >= ?", (total,))
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc

    def snapshot(self) -> bytes:
        """A consistent copy of the whole database, as the bytes of a SQLite file."""
        import os
        import tempfile

        fd, tmp = tempfile.mkstemp(suffix=".db")
        os.close(fd)
        try:
            dst = sqlite3.connect(tmp)
            try:
                self.db.backup(dst)
            finally:
                dst.close()
            with open(tmp, "rb") as fh:
                return fh.read()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        finally:
            os.unlink(tmp)

    def set_meta(self, **values: Any) -> None:
        try:
            self.db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                ((k, json.dumps(v)) for k, v in values.items()),
            )
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")


class JournalReader:
    """Read-only access (status, logs), safe while a runner writes."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            raise FileNotFoundError(path)
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as exc:
            raise _wrap(exc, path) from exc

    def close(self) -> None:
        self.db.close()

    def meta(self) -> dict[str, Any]:
        try:
            rows = self.db.execute("SELECT key, value FROM meta").fetchall()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        return {k: json.loads(v) for k, v in rows}

    def counts(self) -> dict[str, int]:
        try:
            rows = self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        return dict(rows)

    def rows(self, where: str = "", args: tuple[Any, ...] = ()) -> Iterator[JobRow]:
        try:
            cur = self.db.execute(f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY idx", args)
        except sqlite3.Error as exc:
            raise _wrap(exc, self.path) from exc
        for r in cur:
            yield JobRow(*r)

    def find(self, key: str) -> JobRow | None:
        """A job by index or by name."""
        if key.isdigit():
            found = list(self.rows("WHERE idx=?", (int(key),)))
            if found:
                return found[0]
        found = list(self.rows("WHERE name=?", (key,)))
        return found[0] if found else None


def now() -> float:
    return time.time()
