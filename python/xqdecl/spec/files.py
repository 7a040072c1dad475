"""What a spec names on disk: files it reads, folders its jobs run in.

Files (the spec itself, params files) are read only if they are regular
files, and only up to a size cap, so a FIFO, `/dev/zero`, a directory or a
huge file is refused with a message instead of hanging or eating memory.
`folder_problem` says why a path cannot be a job's working folder.
"""

from __future__ import annotations

import os
import stat

#: Largest spec file read (bytes): far above any hand-written or generated spec.
MAX_SPEC_BYTES = 64 * 1024 * 1024
#: Largest params file read (bytes).
MAX_PARAMS_BYTES = 512 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(ValueError):
    """A file that cannot be read as asked: the message says why (no path in it)."""


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def _not_regular(mode: int) -> str:
    what = next((text for test, text in _KINDS if test(mode)), "not a regular file")
    return f"is {what}, not a regular file"


def read_limited(path: str, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them.

    Raises FileNotFoundError/PermissionError as `open` does, and FileRefused
    for a path that is not a regular file or is larger than `limit`. The file
    is opened without blocking (a FIFO swapped in after the check cannot
    hang) and checked again through its descriptor."""
    try:
        before = os.stat(path)
    except ValueError:  # an embedded NUL
        raise FileRefused("the path holds a NUL character") from None
    if not stat.S_ISREG(before.st_mode):
        raise FileRefused(_not_regular(before.st_mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(_not_regular(info.st_mode))
        if info.st_size > limit:
            raise FileRefused(f"is larger than {_size(limit)} ({info.st_size:,} bytes)")
        chunks: list[bytes] = []
        total = 0
        while True:  # a file may grow while read: never take more than limit + 1
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileRefused(f"is larger than {_size(limit)}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def folder_problem(path: str) -> str | None:
    """Why `path` cannot be a job's working folder, or None if it can."""
    if "\0" in path:
        return None  # said by the text checks
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"the working folder does not exist: {path}"
    except NotADirectoryError:
        return f"the working folder is not a directory: {path}"
    except OSError as exc:
        return f"the working folder cannot be used: {path} ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return f"the working folder is not a directory: {path}"
    return None
