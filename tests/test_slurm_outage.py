"""A Slurm controller outage mid-run makes no job fail (real cluster)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import xqdecl
from tests.conftest import REPO
from xqdecl.store import journal as J

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _controller_pid(cluster: Any) -> int:
    return int((Path(cluster.dir) / "slurmctld.pid").read_text().split()[0])


def _resume_node(cluster: Any) -> None:
    """Leave the node usable for the tests that follow, whatever happened."""
    state = subprocess.run(["sinfo", "-h", "-N", "-n", cluster.node, "-o", "%t"],
                           capture_output=True, text=True).stdout.strip()
    if state.startswith(("drain", "down")):
        subprocess.run(["scontrol", "update", f"nodename={cluster.node}", "state=resume"],
                       capture_output=True)


@pytest.mark.timeout(600)
def test_controller_down_for_30_s_fails_no_job(slurm: Any, tmp_path: Path) -> None:
    spec = xqdecl.spec_from_dict({
        "name": "outage", "workdir": str(tmp_path / "wd"), "scheduler": {"type": "slurm"},
        "jobs": [{"cmd": "sleep 25; echo done-$XQDECL_JOB_INDEX", "matrix": {"i": [1, 2, 3, 4]}}],
    }, base_dir=tmp_path)
    messages: list[str] = []

    class Collect(xqdecl.Reporter):
        def message(self, text: str) -> None:
            messages.append(text)

    async def go() -> xqdecl.RunResult:
        runner = xqdecl.Runner(spec, poll_interval=0.5, reporter=Collect())
        task = asyncio.ensure_future(runner.run())
        deadline = time.monotonic() + 120
        while runner.counts.get(J.RUNNING, 0) < 4:
            assert time.monotonic() < deadline and not task.done(), "jobs never started"
            await asyncio.sleep(0.5)
        # the controller is stopped (it saves its state, as on a planned restart)
        pid = _controller_pid(slurm)
        os.kill(pid, signal.SIGTERM)
        try:
            await asyncio.sleep(30)
        finally:
            subprocess.run(["bash", str(REPO / "scripts/testbed/slurm.sh")], check=True,
                           capture_output=True, timeout=120)
            _resume_node(slurm)
        return await asyncio.wait_for(task, 300)

    result = asyncio.run(go())
    assert result.ok, (result, messages)
    # the outage was met, reported once, and ridden out
    assert len([m for m in messages if "slurm controller" in m or "squeue" in m]) == 1, messages
    assert result.counts == {J.SUCCEEDED: 4}
    for i in range(4):
        out = tmp_path / "wd" / "outage" / "jobs" / str(i) / "stdout.0"
        assert out.read_text() == f"done-{i}\n"
