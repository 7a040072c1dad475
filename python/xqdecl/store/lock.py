"""One runner per run: an flock on `runner.lock` that dies with its holder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from xqdecl.errors import BackendError, StoreError


class RunLock:
    """Held for the life of a runner. A dead runner's lock is free again at once
    (the kernel drops an flock with its process), so no stale lock can block."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def acquire(self) -> None:
        """Take the lock, or raise: BackendError when another runner holds it,
        StoreError when the lock file cannot be opened (read-only, missing folder).

        The lock is on the file the path names *after* the flock: were the file
        removed or replaced meanwhile, the lock would guard nothing, so it is
        taken again on the new file.
        """
        for _ in range(100):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = holder_of(self.path) or "another process"
                os.close(fd)
                raise BackendError(
                    f"this run is already being run by {holder}; wait for it, or stop it with "
                    "`xqdecl kill`"
                ) from None
            if self._same_file(fd):
                break
            os.close(fd)  # unlinked or replaced between our open and flock: again
        else:
            raise StoreError(f"the run lock {self.path} keeps being replaced; is another "
                             "program removing files in the run directory?")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot write the run lock {self.path}: "
                             f"{exc.strerror or exc}") from None
        self.fd = fd

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the run lock {self.path}: "
                             f"{exc.strerror or exc}") from None

    def _same_file(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        mine = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def still_held(self) -> bool:
        """True while the path still names the file this runner locked. False once
        someone removed or replaced `runner.lock`: a second runner could then
        lock the new file, so the runner should stop (and say why)."""
        return self.fd >= 0 and self._same_file(self.fd)

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1


def holder_of(path: Path) -> str | None:
    """'host pid N' of the runner holding the lock, or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 200).decode(errors="replace").split()
            if len(text) >= 2:
                return f"{text[0]} pid {text[1]}"
            return "a runner"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def holder_pid(path: Path) -> int | None:
    """The pid of the lock holder when it runs on this host."""
    holder = holder_of(path)
    if not holder:
        return None
    host, _, pid = holder.partition(" pid ")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid)
    return None
