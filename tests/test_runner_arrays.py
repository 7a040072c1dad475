"""The runner's behaviour towards array backends (exercised with the local
backend switched to array mode, so it runs anywhere)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import xqdecl
from xqdecl.backends.local import LocalBackend


@pytest.fixture
def submits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = LocalBackend.submit

    async def recording(self: LocalBackend, batch: Any) -> Any:
        sizes.append(len(batch))
        return await original(self, batch)

    monkeypatch.setattr(LocalBackend, "arrays", True)
    monkeypatch.setattr(LocalBackend, "submit", recording)
    return sizes


def test_array_backend_gets_every_queued_job_at_once(submits: list[int],
                                                     write_spec: Callable[..., Path]) -> None:
    spec = write_spec("""
        forks = 2
        [[jobs]]
        cmd = ["true"]
        matrix = { i = { range = [0, 30] } }
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter())
    assert result.ok
    assert submits == [30]


def test_retries_close_in_time_are_submitted_together(submits: list[int],
                                                      write_spec: Callable[..., Path]) -> None:
    spec = write_spec("""
        error_strategy = "retry"
        num_retries = 1
        [[jobs]]
        cmd = "sleep 0.{i}; [ $XQDECL_TRIAL -ge 1 ]"
        matrix = { i = [1, 3, 5, 7, 9] }
        [[jobs]]
        name = "slow"
        cmd = ["sleep", "4"]
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter(), poll_interval=0.1)
    assert result.ok and result.retried == 5
    assert submits[0] == 6
    assert sum(submits[1:]) == 5
    assert len(submits) - 1 < 5, f"retries went one by one: {submits}"
