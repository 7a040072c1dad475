"""Shared fixtures: real-service fixtures come from tests/testbed.py."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins = ["tests.testbed"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XQDECL_OUTPUT", raising=False)
    monkeypatch.setenv("XQDECL_CANCEL_GRACE", "3")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from its tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec file (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture
def xq() -> Callable[..., tuple[int, str, str]]:
    """Run the CLI in a subprocess: (exit code, stdout, stderr)."""
    import subprocess

    def call(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> tuple[int, str, str]:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "xqdecl.cli", *args], capture_output=True, text=True,
            timeout=timeout, env=full_env, cwd=cwd,
        )
        return proc.returncode, proc.stdout, proc.stderr

    return call


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
