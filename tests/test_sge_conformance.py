"""The SGE backend passes the shared conformance suite on the real cell, and a
job SGE cannot start (error state `Eqw`) fails the run with SGE's reason."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import BackendConformance
from xqdecl.errors import ExitCode
from xqdecl.store import journal as J


@pytest.mark.sge
class TestSgeConformance(BackendConformance):
    @pytest.fixture
    def scheduler(self, sge: Any) -> dict[str, Any]:
        return {"type": "sge", "queue": sge.queue}

    def test_error_state_fails_the_job_with_the_reason(
        self, workdir: Path, scheduler: dict[str, Any], fast: None
    ) -> None:
        missing = workdir / "no" / "such" / "dir"
        bad = {**scheduler, "directives": [f"-wd {missing}"]}
        spec = self.spec(workdir, scheduler, [
            {"name": "ok", "cmd": ["true"]},
            {"name": "bad", "cmd": ["true"], "scheduler": {"directives": bad["directives"]}},
        ])  # fmt: skip
        t0 = time.monotonic()
        result = self.run(spec)
        assert result.exit_code == ExitCode.JOBS_FAILED
        assert result.counts == {J.SUCCEEDED: 1, J.FAILED: 1}
        row = result.failed[0]
        assert row.idx == 1 and row.rc is None
        assert "chdir" in (row.note or "") and str(missing) in (row.note or "")
        assert "chdir" in (self.meta(workdir, 1) / "notes.0").read_text()
        assert time.monotonic() - t0 < 60


@pytest.mark.sge
class TestSgeNoArrayConformance(BackendConformance):
    """`array = false`: one qsub per job, the same behaviour."""

    @pytest.fixture
    def scheduler(self, sge: Any) -> dict[str, Any]:
        return {"type": "sge", "array": False}
