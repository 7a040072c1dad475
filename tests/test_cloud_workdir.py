"""Cloud workdirs, for real against an S3 API server on loopback (moto)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import xqdecl
from xqdecl.store import journal as J

Write = Callable[..., Path]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if shutil.which("aws") is None:
        pytest.skip("the aws command-line tool is not installed (pip install awscli)")
    pytest.importorskip("moto")
    pytest.importorskip("boto3")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    fh = open(log, "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=fh, stderr=subprocess.STDOUT)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                fh.close()
                pytest.skip(f"moto's S3 server did not start: {log.read_text()[-500:]}")
            time.sleep(0.2)
    yield {**env, "log": str(log)}
    proc.terminate()
    proc.wait(timeout=10)
    fh.close()


@pytest.fixture
def bucket(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    for k, v in s3_server.items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    import boto3

    name = f"xq-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _keys(bucket: str, prefix: str) -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "xqdecl.cli", *args], capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.timeout(900)
def test_run_status_logs_and_resume_with_state_in_the_bucket(
        bucket: str, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec(f"""
        name = "cl"
        workdir = "s3://{bucket}/runs"
        [[jobs]]
        name = "c{{n}}"
        cmd = "echo hello-{{n}}; echo warn-{{n}} >&2; [ {{n}} != 2 ] || [ -e again ]"
        matrix = {{ n = [0, 1, 2] }}
    """)
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter(), poll_interval=0.2)
    assert result.counts == {J.SUCCEEDED: 2, J.FAILED: 1}, result
    keys = _keys(bucket, "runs/cl/")
    assert "runs/cl/journal.db" in keys
    for i in range(3):
        assert f"runs/cl/jobs/{i}/stdout.0" in keys and f"runs/cl/jobs/{i}/rc.0" in keys
    assert not [k for k in keys if "/events/" in k], "events are consumed"
    # another machine: no local staging copy, only the bucket
    shutil.rmtree(tmp_path / ".xqdecl-staging")
    code, out, err = _cli("status", str(spec), "--output", "json")
    assert code == 0, err
    assert json.loads(out)["counts"] == {"succeeded": 2, "failed": 1}
    code, out, _ = _cli("status", str(spec))
    assert "warn-2" in out
    code, out, err = _cli("logs", str(spec), "c1")
    assert code == 0 and out == "hello-1\n", err
    code, out, _ = _cli("logs", str(spec), "2", "--stderr")
    assert "warn-2" in out
    # resume from the bucket's journal: only the failed job runs again
    shutil.rmtree(tmp_path / ".xqdecl-staging")
    (tmp_path / "again").write_text("")
    result = xqdecl.run(xqdecl.load_spec(spec), reporter=xqdecl.Reporter(), poll_interval=0.2)
    assert result.counts == {J.SKIPPED: 2, J.SUCCEEDED: 1}, result
    assert "runs/cl/jobs/2/rc.1" in _keys(bucket, "runs/cl/jobs/2/")
