"""The command's own stdout and stderr: writes that never fail, and job text
made harmless before it reaches a terminal.

A reader that goes away (`xqdecl run spec.toml | head -1`, a closed terminal,
`2>&-`) must not end a run: once a stream is found broken, it is pointed at
/dev/null and every later write to it is dropped, whoever makes it (rich,
print, logging, the interpreter's last flush).

A job's output, names and notes are not ours: on a terminal, control
characters other than newline and tab are shown as `\\xNN` (a lone carriage
return as `\\r`), so no job can set the window title, clear the screen or
ring the bell. Pipes and files get the bytes unchanged.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

#: C0 controls but tab and newline, DEL, and the C1 range (CSI is 0x9b); CRLF is kept
_CONTROL = re.compile("\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _spell(m: re.Match[str]) -> str:
    c = m.group()
    if c == "\r\n":
        return c
    return "\\r" if c == "\r" else f"\\x{ord(c):02x}"


def visible(text: str) -> str:
    """`text` with every control character but \\n and \\t spelled out (CRLF kept)."""
    return _CONTROL.sub(_spell, text)


def for_terminal(text: str, terminal: bool) -> str:
    return visible(text) if terminal else text


class VisibleDecoder:
    """Bytes of a job's output, in chunks, to text safe for a terminal."""

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        self.cr = False  # a chunk ended on \r: is it a CRLF?

    def feed(self, data: bytes, final: bool = False) -> str:
        text = ("\r" if self.cr else "") + self.decoder.decode(data, final)
        self.cr = text.endswith("\r") and not final
        if self.cr:
            text = text[:-1]
        return visible(text)


def _is_broken(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, ValueError))  # EPIPE, EBADF, EIO; "closed file"


def _to_devnull(fd: int) -> None:
    """Point `fd` at /dev/null: buffered bytes and later writes go nowhere, quietly."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)


class SafeStream:
    """A text stream whose write and flush never raise; broken once, silent for good."""

    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.broken = stream is None
        try:
            self.fd = stream.fileno() if stream is not None else -1
        except (OSError, ValueError, AttributeError):
            self.fd = -1

    def _break(self) -> None:
        if not self.broken:
            self.broken = True
            if self.fd >= 0:
                _to_devnull(self.fd)

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)  # type: ignore[union-attr]
            except Exception as exc:
                if not _is_broken(exc):
                    raise
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()  # type: ignore[union-attr]
            except Exception as exc:
                if not _is_broken(exc):
                    raise
                self._break()

    def isatty(self) -> bool:
        if self.broken:
            return False
        try:
            return bool(self.stream.isatty())  # type: ignore[union-attr]
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self.fd < 0:
            raise OSError("no file descriptor")
        return self.fd

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer, ...
        return getattr(self.stream, name)


def safe(stream: TextIO | None) -> TextIO:
    """`stream` as a SafeStream (itself when it is one already)."""
    return stream if isinstance(stream, SafeStream) else SafeStream(stream)  # type: ignore[return-value]


def write_bytes(fd: int, data: bytes) -> bool:
    """Write all of `data` to `fd`; False (and nothing raised) once the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            _to_devnull(fd)
            return False
        view = view[n:]
    return True


def _ensure_fds() -> None:
    """A command started with fd 0, 1 or 2 closed: the next file we open would
    take that number and receive our output. Give them /dev/null instead."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_RDWR)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)


@contextlib.contextmanager
def guarded_std_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr as SafeStreams for the life of one command."""
    _ensure_fds()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = safe(saved[0]), safe(saved[1])
    try:
        yield
    finally:
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        sys.stdout, sys.stderr = saved
