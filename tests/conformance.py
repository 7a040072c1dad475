"""The conformance suite every backend passes.

A backend's test module subclasses `BackendConformance` and provides the
`scheduler` fixture (the spec's `[scheduler]` table, skipping when the service
cannot start) and, when jobs do not see this machine's temp folders, a
`workdir` fixture. Everything else is shared: the same runs, the same
assertions, against the real service.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import xqdecl
from xqdecl.backends.base import Backend
from xqdecl.errors import ExitCode
from xqdecl.store import journal as J

HOSTILE = ["a b", "it's", 'q"uote', "$HOME", "`id`", "$(id)", "*", "semi;colon", ""]


class BackendConformance:
    #: seconds allowed for one small run on this backend
    run_timeout: float = 120.0

    @pytest.fixture
    def workdir(self, tmp_path: Path) -> Path:
        return tmp_path

    @pytest.fixture
    def fast(self, monkeypatch: pytest.MonkeyPatch, scheduler: dict[str, Any]) -> None:
        """Shorter cadences so the suite runs in seconds (the logic is the same)."""
        from xqdecl.backends import backend_class

        cls = backend_class(scheduler["type"])
        monkeypatch.setattr(cls, "query_interval", min(cls.query_interval, 1.0))
        monkeypatch.setattr(cls, "lost_grace", min(cls.lost_grace, 3.0))
        monkeypatch.setattr(cls, "sweep_interval", min(cls.sweep_interval, 2.0))

    def spec(self, workdir: Path, scheduler: dict[str, Any], jobs: list[dict[str, Any]],
             **run: Any) -> xqdecl.Spec:
        data = {"name": "conf", "workdir": str(workdir / "wd"), "scheduler": scheduler,
                "jobs": jobs, **run}
        return xqdecl.spec_from_dict(data, base_dir=workdir)

    def run(self, spec: xqdecl.Spec, **kw: Any) -> xqdecl.RunResult:
        async def go() -> xqdecl.RunResult:
            runner = xqdecl.Runner(spec, poll_interval=0.25, **kw)
            return await asyncio.wait_for(runner.run(), self.run_timeout)

        return asyncio.run(go())

    @staticmethod
    def meta(workdir: Path, index: int) -> Path:
        return workdir / "wd" / "conf" / "jobs" / str(index)

    def rerun(self, spec: xqdecl.Spec) -> xqdecl.RunResult:
        """The run after the runner was killed (a backend may check how it adopted)."""
        return self.run(spec)

    # -- the suite ------------------------------------------------------------------
    def test_success_and_failure(self, workdir: Path, scheduler: dict[str, Any],
                                 fast: None) -> None:
        spec = self.spec(workdir, scheduler, [{
            "name": "j{n}-{index}", "cmd": "echo out-{n}; exit {n}",
            "matrix": {"n": [0, 0, 3, 0]},
        }])
        result = self.run(spec)
        assert result.exit_code == ExitCode.JOBS_FAILED
        assert result.counts == {J.SUCCEEDED: 3, J.FAILED: 1}
        assert [(r.idx, r.rc) for r in result.failed] == [(2, 3)]
        assert (self.meta(workdir, 2) / "stdout.0").read_text() == "out-3\n"

    def test_argv_and_environment_exact(self, workdir: Path, scheduler: dict[str, Any],
                                        fast: None) -> None:
        spec = self.spec(workdir, scheduler, [{
            "cmd": ["bash", "-c", 'printf "%s\\n" "$@" "$V" "$XQDECL_JOB_INDEX/$XQDECL_TRIAL"',
                    "x", *HOSTILE],
            "env": {"V": "v $HOME `id`"},
        }])
        result = self.run(spec)
        assert result.ok, result
        out = (self.meta(workdir, 0) / "stdout.0").read_text()
        assert out == "".join(f"{v}\n" for v in HOSTILE) + "v $HOME `id`\n0/0\n"

    def test_retry_until_success(self, workdir: Path, scheduler: dict[str, Any],
                                 fast: None) -> None:
        spec = self.spec(workdir, scheduler, [{"cmd": "[ $XQDECL_TRIAL -ge 1 ]"}],
                         error_strategy="retry", num_retries=2)
        result = self.run(spec)
        assert result.ok and result.retried == 1
        assert (self.meta(workdir, 0) / "rc.0").read_text().startswith("1\n")
        assert (self.meta(workdir, 0) / "rc.1").read_text().startswith("0\n")

    def test_timeout_is_a_named_failure(self, workdir: Path, scheduler: dict[str, Any],
                                        fast: None) -> None:
        spec = self.spec(workdir, scheduler, [{"cmd": ["sleep", "120"], "timeout": "2s"}])
        t0 = time.monotonic()
        result = self.run(spec)
        assert result.counts == {J.FAILED: 1}
        assert time.monotonic() - t0 < 60
        assert "timed out after 2s" in (self.meta(workdir, 0) / "stderr.0").read_text()

    def test_stop_cancels_live_jobs(self, workdir: Path, scheduler: dict[str, Any],
                                    fast: None) -> None:
        spec = self.spec(workdir, scheduler, [{
            "cmd": ["sleep", "300"], "matrix": {"i": [1, 2]}}], forks=2)

        async def go() -> tuple[xqdecl.RunResult, list[str]]:
            runner = xqdecl.Runner(spec, poll_interval=0.25)
            task = asyncio.ensure_future(runner.run())
            deadline = time.monotonic() + self.run_timeout
            while runner.counts.get(J.RUNNING, 0) < 2:
                assert time.monotonic() < deadline, "jobs never started"
                assert not task.done(), task.result()
                await asyncio.sleep(0.2)
            jids = [r.jid for r in runner.rows if r.jid]
            runner.request_stop()
            return await asyncio.wait_for(task, self.run_timeout), jids

        result, jids = asyncio.run(go())
        assert result.exit_code == ExitCode.INTERRUPTED
        assert result.counts == {J.CANCELLED: 2}
        assert len(jids) == 2
        assert not self.still_alive(scheduler, workdir, jids)

    def still_alive(self, scheduler: dict[str, Any], workdir: Path, jids: list[str]) -> list[str]:
        """The jids the backend still reports pending or running (after a cancel)."""
        from xqdecl.backends import backend_class
        from xqdecl.backends.base import BackendContext, Liveness

        spec = self.spec(workdir, scheduler, [{"cmd": ["true"]}])
        cls = backend_class(scheduler["type"])
        ctx = BackendContext(run="conf", rundir=workdir / "wd" / "conf",
                             mounted_rundir=str(workdir / "wd" / "conf"), forks=2)

        async def ask() -> list[str]:
            backend = cls(spec.scheduler, ctx)
            deadline = time.monotonic() + 30
            while True:
                states = await backend.query(jids)
                live = [j for j, s in states.items()
                        if s.liveness in (Liveness.PENDING, Liveness.RUNNING)]
                if not live or time.monotonic() > deadline:
                    await backend.close()
                    return live
                await asyncio.sleep(0.5)

        return asyncio.run(ask())

    def test_liveness_is_batched(self, workdir: Path, scheduler: dict[str, Any], fast: None,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
        from xqdecl.backends import backend_class

        cls = backend_class(scheduler["type"])
        calls: list[int] = []
        original = cls.query

        async def counting(self: Backend, jids: Any) -> Any:
            calls.append(len(jids))
            return await original(self, jids)

        monkeypatch.setattr(cls, "query", counting)
        jobs = [{"cmd": ["sleep", "3"], "matrix": {"i": [1, 2, 3, 4]}}]
        spec = self.spec(workdir, scheduler, jobs, forks=4)
        result = self.run(spec)
        assert result.ok
        assert calls, "the runner never asked the scheduler"
        assert max(calls) >= 2, "jobs in flight were not asked about in one call"

    def test_rerun_after_the_runner_was_killed_adopts_live_jobs(
        self, workdir: Path, scheduler: dict[str, Any], fast: None
    ) -> None:
        data = {"name": "conf", "workdir": str(workdir / "wd"), "forks": 2,
                "scheduler": scheduler,
                "jobs": [{"cmd": "sleep 6; echo done-{i}", "matrix": {"i": [0, 1]}}]}
        spec_file = workdir / "conf.yaml"  # JSON is YAML
        spec_file.write_text(json.dumps(data))
        first = subprocess.Popen([sys.executable, "-m", "xqdecl.cli", "run", str(spec_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + self.run_timeout
            while not all((self.meta(workdir, i) / "start.0").exists() for i in range(2)):
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.2)
            time.sleep(0.5)  # let it record the job ids
        finally:
            first.kill()  # SIGKILL: no cancel, no clean-up; the jobs live on
            first.wait()
        result = self.rerun(xqdecl.load_spec(spec_file))
        assert result.ok, result
        for i in range(2):
            assert (self.meta(workdir, i) / "stdout.0").read_text() == f"done-{i}\n"
            assert not (self.meta(workdir, i) / "start.1").exists()  # adopted, not run again

    def test_job_lost_without_rc_fails(self, workdir: Path, scheduler: dict[str, Any],
                                       fast: None) -> None:
        # the command kills its own wrapper hard: no rc file is ever written
        spec = self.spec(workdir, scheduler, [{"cmd": "kill -KILL $PPID; sleep 5"}])
        result = self.run(spec)
        assert result.counts == {J.FAILED: 1}
        row = result.failed[0]
        assert row.rc is None and row.note
        notes = (self.meta(workdir, 0) / "notes.0").read_text()
        assert "rc file" in notes or "scheduler" in notes
