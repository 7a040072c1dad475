"""The container backend: podman for real (scripts/testbed/podman.sh), docker and
apptainer through the exact command lines they are given."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import xqdecl
from tests.conformance import BackendConformance
from xqdecl.backends.container import INIT, command_line, wrapper_cwd
from xqdecl.spec import ContainerOptions
from xqdecl.store import journal as J

IMAGE = "docker.io/library/alpine"


def opts(**kw: Any) -> ContainerOptions:
    return ContainerOptions.model_validate({"type": "container", "image": IMAGE, **kw})


def line(options: ContainerOptions, cwd: str | None = "/home/u/project",
         mounted: str = "/data/wd/run") -> list[str]:
    return command_line(options, rundir="/data/wd/run", mounted_rundir=mounted, index=7,
                        trial=2, name="xq-run-abc123-7-2", cwd=cwd)


# -- command lines ----------------------------------------------------------------------


def test_docker_command_line() -> None:
    options = opts(runtime="docker", volumes=["/ref:/ref:ro"], user="1000:1000",
                   runtime_args=["--cpus", "2"])
    assert line(options) == [
        "docker", "run", "--rm", "--name", "xq-run-abc123-7-2",
        "-v", "/home/u/project:/home/u/project", "-v", "/data/wd/run:/data/wd/run",
        "-v", "/ref:/ref:ro", "--user", "1000:1000", "--entrypoint", "bash",
        "--cpus", "2", IMAGE, "-c", INIT, "/data/wd/run/jobs/7/job.sh", "2",
    ]


def test_podman_command_line_with_mounted_workdir_and_entrypoint() -> None:
    options = opts(runtime="podman", entrypoint="/bin/bash --noprofile")
    assert line(options, cwd="/data/wd/run/jobs/7", mounted="/xq/run") == [
        "podman", "run", "--rm", "--name", "xq-run-abc123-7-2",
        "-v", "/data/wd/run/jobs/7:/data/wd/run/jobs/7",  # cwd under a moved rundir
        "-v", "/data/wd/run:/xq/run", "--entrypoint", "/bin/bash", IMAGE, "--noprofile",
        "-c", INIT, "/xq/run/jobs/7/job.sh", "2",
    ]


def test_apptainer_command_line() -> None:
    options = opts(runtime="apptainer", image="/sif/tools.sif", volumes=["/scratch:/scratch"],
                   runtime_args=["--cleanenv"])
    assert line(options) == [
        "apptainer", "exec", "--bind", "/home/u/project:/home/u/project",
        "--bind", "/data/wd/run:/data/wd/run", "--bind", "/scratch:/scratch",
        "--cleanenv", "/sif/tools.sif", "bash", "/data/wd/run/jobs/7/job.sh", "2",
    ]


def test_cwd_is_not_mounted_twice() -> None:
    inside = line(opts(runtime="docker"), cwd="/data/wd/run/jobs/7")
    assert inside.count("-v") == 1  # under the rundir, mounted at its own path
    assert line(opts(runtime="docker", volumes=["/home/u:/home/u"])).count("-v") == 2
    assert line(opts(runtime="docker"), cwd="/").count("-v") == 1
    assert line(opts(runtime="docker"), cwd=None).count("-v") == 1


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="apptainer runs jobs as the submitting user"):
        opts(runtime="apptainer", user="root")
    with pytest.raises(ValueError, match="host:container"):
        opts(runtime="docker", volumes=["/only-one-side"])


def test_wrapper_cwd(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/usr/bin/env bash\ncd -- '/a b/it'\"'\"'s' || { _xq_why=x; }\n")
    assert wrapper_cwd(script) == "/a b/it's"
    assert wrapper_cwd(tmp_path / "missing.sh") is None


# -- podman, for real -----------------------------------------------------------------------


@pytest.mark.container
class TestPodmanConformance(BackendConformance):
    @pytest.fixture
    def scheduler(self, podman: Any) -> dict[str, Any]:
        return {"type": "container", "runtime": "podman", "image": podman.image}


def run(spec: xqdecl.Spec) -> xqdecl.RunResult:
    return asyncio.run(asyncio.wait_for(xqdecl.Runner(spec, poll_interval=0.25).run(), 120))


def make_spec(tmp_path: Path, cmd: Any, **scheduler: Any) -> xqdecl.Spec:
    sched = {"type": "container", "runtime": "podman", "image": IMAGE, **scheduler}
    return xqdecl.spec_from_dict({"name": "ct", "workdir": str(tmp_path / "wd"),
                                  "scheduler": sched, "jobs": [{"cmd": cmd}]},
                                 base_dir=tmp_path)


@pytest.mark.container
def test_mounted_workdir_and_cwd(tmp_path: Path, podman: Any) -> None:
    (tmp_path / "input.txt").write_text("from the host\n")
    spec = make_spec(tmp_path, 'echo "$XQDECL_JOB_METADIR"; pwd; cat input.txt',
                     mounted_workdir="/xqwork")
    result = run(spec)
    assert result.ok, result
    out = (Path(result.rundir) / "jobs" / "0" / "stdout.0").read_text()
    assert out == f"/xqwork/ct/jobs/0\n{tmp_path}\nfrom the host\n"


@pytest.mark.container
def test_runtime_errors_are_the_failure_reason(tmp_path: Path, podman: Any) -> None:
    spec = make_spec(tmp_path, ["true"], image="localhost/xq-no-such-image:none")
    result = run(spec)
    assert result.counts == {J.FAILED: 1}
    note = result.failed[0].note or ""
    assert "exit 125" in note and "xq-no-such-image" in note, note


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder another user may enter (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="xq-ct-user-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.container
def test_user_option(open_dir: Path, podman: Any) -> None:
    old = os.umask(0)  # the run's folders must be writable for that user
    try:
        result = run(make_spec(open_dir, ["id", "-un"], user="nobody"))
    finally:
        os.umask(old)
    assert result.ok, result
    assert (Path(result.rundir) / "jobs" / "0" / "stdout.0").read_text() == "nobody\n"


@pytest.mark.container
def test_cancel_stops_the_container_itself(tmp_path: Path, podman: Any) -> None:
    spec = make_spec(tmp_path, ["sleep", "300"])

    async def go() -> tuple[xqdecl.RunResult, str]:
        runner = xqdecl.Runner(spec, poll_interval=0.25)
        task = asyncio.ensure_future(runner.run())
        deadline = time.monotonic() + 90
        while runner.counts.get(J.RUNNING, 0) < 1:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.2)
        jid = runner.rows[0].jid or ""
        runner.request_stop()
        return await asyncio.wait_for(task, 90), jid

    result, jid = asyncio.run(go())
    assert result.counts == {J.CANCELLED: 1}
    name = jid.partition(":")[2]
    assert name.startswith("xq-ct-") and name.endswith("-0-0")
    ps = subprocess.run(["podman", "ps", "-a", "--filter", f"name={name}", "--format",
                         "{{.Names}}"], capture_output=True, text=True, timeout=60)
    assert name not in ps.stdout
