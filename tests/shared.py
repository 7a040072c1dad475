"""Helpers several test modules share: a spec's issues, a tmpfs of a test's own."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from xqdecl.errors import ExitCode, SpecError
from xqdecl.spec import load_spec


def issues_of(text: str, name: str = "spec.toml") -> list[str]:
    """Write `text` (dedented) as `name` in the current folder; the issues of loading it."""
    Path(name).write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(SpecError) as caught:
        load_spec(name)
    assert caught.value.exit_code == ExitCode.INVALID_SPEC
    return caught.value.issues


@contextmanager
def tmpfs(path: Path, options: str = "size=4m") -> Iterator[None]:
    """A tmpfs mounted at `path` for the block (skips the test where mounting is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
