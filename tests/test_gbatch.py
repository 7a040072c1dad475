"""Google Cloud Batch: the rendered job definition against a JSON Schema of the public
API's `Job` resource, and whole runs through a fake `gcloud` (tests/data/gbatch/gcloud)
that records its calls and runs the tasks on this machine. Nothing here reaches Google.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import xqdecl
from tests.conformance import BackendConformance
from xqdecl.backends.base import Backend
from xqdecl.backends.gbatch import GbatchBackend, job_config, mebibytes, merge, slug
from xqdecl.errors import ExitCode
from xqdecl.spec import GbatchOptions
from xqdecl.store import journal as J

DATA = Path(__file__).parent / "data" / "gbatch"
JOB_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")  # the API's job id rule


@pytest.fixture
def fake_gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake gcloud first on PATH; its calls go to <dir>/calls.jsonl."""
    state = tmp_path / "fake-gcloud"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{DATA}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GCLOUD_DIR", str(state))
    return state


def calls(state: Path) -> list[list[str]]:
    path = state / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["argv"] for line in path.read_text().splitlines()]


# -- the job definition ------------------------------------------------------------------


def render(**options: Any) -> dict[str, Any]:
    opts = GbatchOptions.model_validate({"type": "gbatch", **options})
    return job_config(opts, script="/mnt/wd/run/arrays/g0-1.sh", count=250, parallelism=64,
                      labels={"xqdecl-run": "0123456789ab", "xqdecl-name": "run"},
                      mount_path="/mnt/wd", timeout=3600)


VARIANTS = [
    {},
    {"image": "ubuntu:24.04"},
    {"machine_type": "e2-standard-4", "cpus": 2, "mem": "4G"},
    {"bucket": "gs://my-bucket/xq", "mounted_workdir": "/mnt/wd"},
    {"job_config": {"allocationPolicy": {"instances": [{"policy": {"provisioningModel": "SPOT"}}]},
                    "priority": 10}},
]


@pytest.mark.parametrize("options", VARIANTS)
def test_rendered_config_matches_the_schema(options: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DATA / "job.schema.json").read_text())
    jsonschema.validate(render(**options), schema)


def test_schema_rejects_what_batch_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DATA / "job.schema.json").read_text())
    good = render()
    for broken in (
        merge(good, {"taskGroups": [{"taskCount": 100_001}]}),
        merge(good, {"taskGroups": [{"parallelism": 5_001}]}),
        merge(good, {"taskGroups": [{"taskSpec": {"maxRunDuration": "1h"}}]}),
        merge(good, {"taskGroups": [{"taskSpec": {"runnable": []}}]}),
        merge(good, {"labels": {"Bad": "x"}}),
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_config_fields() -> None:
    config = render(image="ubuntu:24.04", machine_type="e2-standard-4", cpus=2, mem="1.5G",
                    bucket="gs://b/wd", mounted_workdir="/mnt/wd")
    group = config["taskGroups"][0]
    assert group["taskCount"] == 250 and group["parallelism"] == 64
    spec = group["taskSpec"]
    assert spec["runnables"] == [{"container": {
        "imageUri": "ubuntu:24.04", "entrypoint": "bash",
        "commands": ["/mnt/wd/run/arrays/g0-1.sh"]}}]
    assert spec["computeResource"] == {"cpuMilli": 2000, "memoryMib": 1536}
    assert spec["maxRetryCount"] == 0  # the runner retries, as a new trial
    assert spec["maxRunDuration"] == "3720s"  # the wrapper's own timeout comes first
    assert spec["volumes"] == [{"gcs": {"remotePath": "b/wd"}, "mountPath": "/mnt/wd"}]
    assert config["allocationPolicy"] == {"instances": [{"policy": {
        "machineType": "e2-standard-4"}}]}
    assert config["logsPolicy"] == {"destination": "CLOUD_LOGGING"}
    script = render()["taskGroups"][0]["taskSpec"]["runnables"][0]
    assert script == {"script": {"text": "exec bash /mnt/wd/run/arrays/g0-1.sh"}}


def test_job_config_is_merged_over_the_generated_config() -> None:
    config = render(machine_type="n2-standard-2", job_config={
        "allocationPolicy": {"instances": [{"policy": {"provisioningModel": "SPOT"}}]},
        "taskGroups": [{"taskSpec": {"maxRetryCount": 2}}],
        "priority": 10,
    })
    assert config["allocationPolicy"]["instances"][0]["policy"] == {
        "machineType": "n2-standard-2", "provisioningModel": "SPOT"}
    spec = config["taskGroups"][0]["taskSpec"]
    assert spec["maxRetryCount"] == 2 and spec["runnables"]  # kept what it did not name
    assert config["priority"] == 10
    assert merge({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}  # plain lists are replaced


def test_helpers() -> None:
    assert [mebibytes(m) for m in ("512M", "4G", "4Gi", "2048", "1T")] == [
        512, 4096, 4096, 2048, 1024 * 1024]
    with pytest.raises(ValueError):
        mebibytes("lots")
    assert slug("My_Run.v2", 63) == "my-run-v2"
    with pytest.raises(Exception, match="pattern"):
        GbatchOptions.model_validate({"type": "gbatch", "bucket": "s3://b"})


# -- whole runs through the fake gcloud ---------------------------------------------------------


def make_spec(tmp_path: Path, jobs: list[dict[str, Any]], **run_opts: Any) -> xqdecl.Spec:
    sched = {"type": "gbatch", "project": "proj", "location": "europe-west4"}
    return xqdecl.spec_from_dict({"name": "Gb_run.1", "workdir": str(tmp_path / "wd"),
                                  "scheduler": sched, "jobs": jobs, **run_opts},
                                 base_dir=tmp_path)


def run(spec: xqdecl.Spec) -> xqdecl.RunResult:
    return asyncio.run(asyncio.wait_for(xqdecl.Runner(spec, poll_interval=0.25).run(), 120))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Fast cadence; records how many jids each backend query asked about."""
    monkeypatch.setattr(GbatchBackend, "query_interval", 1.0)
    monkeypatch.setattr(GbatchBackend, "lost_grace", 3.0)
    seen: list[int] = []
    original = GbatchBackend.query

    async def query(self: Backend, jids: Any) -> Any:
        seen.append(len(jids))
        return await original(self, jids)

    monkeypatch.setattr(GbatchBackend, "query", query)
    return seen


def test_run_one_submit_per_array_one_list_per_poll(tmp_path: Path, fake_gcloud: Path,
                                                    counted: list[int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GCLOUD_QUEUED", "1.5")  # pending first, then running
    spec = make_spec(tmp_path, [
        {"name": "a{i}", "cmd": "echo a{i} $BATCH_TASK_INDEX; sleep 1", "matrix": {"i": [0, 1, 2]}},
        {"name": "b{i}", "cmd": ["echo", "b{i}"], "matrix": {"i": [0, 1]},
         "scheduler": {"machine_type": "e2-small"}},
    ])
    result = run(spec)
    assert result.ok, result
    made = calls(fake_gcloud)
    submits = [c for c in made if c[2] == "submit"]
    lists = [c for c in made if c[2] == "list"]
    assert len(submits) == 2  # one Batch job per group: taskCount tasks each
    assert len(lists) == len(counted) >= 1  # one list per poll, for every job in flight
    assert max(counted) >= 3
    for argv in submits:
        assert JOB_NAME.match(argv[3]), argv[3]
        assert argv[argv.index("--location") + 1] == "europe-west4"
        assert argv[argv.index("--project") + 1] == "proj" and "--format=json" in argv
    for argv in lists:
        assert any(a.startswith("--filter=labels.xqdecl-run=") for a in argv)
    rundir = Path(result.rundir)
    assert (rundir / "jobs" / "2" / "stdout.0").read_text().startswith("a2 ")
    assert (rundir / "jobs" / "4" / "stdout.0").read_text() == "b1\n"
    configs = sorted((rundir / "arrays").glob("*.json"))
    second = json.loads(configs[1].read_text())
    assert second["taskGroups"][0]["taskCount"] == 2
    assert second["allocationPolicy"]["instances"][0]["policy"]["machineType"] == "e2-small"
    tasks = sorted(p.read_text() for p in (rundir / "arrays").glob("*.tasks"))
    assert tasks == ["0 0\n1 0\n2 0\n", "3 0\n4 0\n"]


def test_retries_go_out_as_a_new_array(tmp_path: Path, fake_gcloud: Path,
                                       counted: list[int]) -> None:
    spec = make_spec(tmp_path, [{"cmd": "[ $XQDECL_TRIAL -ge 1 ]", "matrix": {"i": [1, 2]}}],
                     error_strategy="retry", num_retries=1)
    result = run(spec)
    assert result.ok and result.retried == 2
    assert 2 <= len([c for c in calls(fake_gcloud) if c[2] == "submit"]) <= 3


def test_rejected_submission_fails_its_jobs_with_gclouds_words(
        tmp_path: Path, fake_gcloud: Path, counted: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GCLOUD_FAIL_SUBMIT", "INVALID_ARGUMENT: machine type x-1 unknown")
    result = run(make_spec(tmp_path, [{"cmd": "true", "matrix": {"i": [1, 2]}}]))
    assert result.counts == {J.FAILED: 2}
    assert all("machine type x-1 unknown" in (r.note or "") for r in result.failed)


def test_unavailable_service_is_a_backend_error(tmp_path: Path, fake_gcloud: Path,
                                                counted: list[int],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from xqdecl.engine import submitter as runner

    monkeypatch.setattr(runner, "MAX_BACKEND_FAILURES", 2)
    monkeypatch.setenv("FAKE_GCLOUD_FAIL_SUBMIT", "UNAVAILABLE: the service is down")
    result = run(make_spec(tmp_path, [{"cmd": "true"}]))
    assert result.exit_code == ExitCode.BACKEND
    assert "UNAVAILABLE" in result.message


class TestGbatchConformanceWithFakeGcloud(BackendConformance):
    """The shared suite, with the fake gcloud standing in for Google's service."""

    @pytest.fixture
    def scheduler(self, fake_gcloud: Path) -> dict[str, Any]:
        return {"type": "gbatch", "project": "proj", "location": "us-central1"}

    @pytest.fixture(autouse=True)
    def _gcloud(self, fake_gcloud: Path) -> None:
        self.gcloud = fake_gcloud

    def rerun(self, spec: xqdecl.Spec) -> xqdecl.RunResult:
        """Live tasks are adopted with one listing; then one listing per poll, no submit."""
        before = len(calls(self.gcloud))
        queries: list[int] = []
        original = GbatchBackend.query

        async def query(self: Backend, jids: Any) -> Any:
            queries.append(len(jids))
            return await original(self, jids)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(GbatchBackend, "query", query)
            result = self.run(spec)
        verbs = [c[2] for c in calls(self.gcloud)[before:]]
        assert verbs == ["list"] * (1 + len(queries))
        return result


def test_a_staged_cloud_workdir_is_refused(tmp_path: Path) -> None:
    from xqdecl.backends.base import BackendContext
    from xqdecl.errors import SpecError

    rundir = tmp_path / ".xqdecl-staging" / "run-0123456789"
    ctx = BackendContext(run="run", rundir=rundir, mounted_rundir=str(rundir), forks=4)
    with pytest.raises(SpecError, match="gs:// workdir is not supported by gbatch"):
        GbatchBackend(GbatchOptions(type="gbatch"), ctx)
