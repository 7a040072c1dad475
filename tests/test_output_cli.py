"""The commands' output through the real CLI: status (live and after), logs,
JSON from every command, quiet mode, init."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

Xq = Callable[..., tuple[int, str, str]]
Write = Callable[..., Path]


@pytest.fixture
def xq(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Xq:
    """The CLI in this process (no interpreter start-up per call): (code, stdout, stderr).
    Runs that must be watched from outside are started as subprocesses."""
    from xqdecl.cli import main

    def call(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
        capfd.readouterr()
        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            code = main(list(args))
        out, err = capfd.readouterr()
        return code, out, err

    return call


def _json(xq: Xq, *args: str, code: int = 0) -> dict:
    rc, out, err = xq(*args, "--output", "json")
    assert rc == code, (rc, out, err)
    return json.loads(out)


def status_schema() -> dict:
    """The JSON Schema of `status --output json`, as docs/json-output.md gives it."""
    text = (REPO / "docs" / "json-output.md").read_text()
    block = text.split("<!-- schema: status -->", 1)[1].split("```json", 1)[1]
    return json.loads(block.split("```", 1)[0])


def check_status(data: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, status_schema())


def test_status_while_live_then_kill_then_after(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        name = "live"
        forks = 2
        [[jobs]]
        name = "quick-{n}"
        cmd = "exit 0"
        matrix = { n = [1, 2] }
        [[jobs]]
        name = "slow-{n}"
        cmd = ["sleep", "60"]
        matrix = { n = [1, 2, 3] }
    """)
    proc = subprocess.Popen([sys.executable, "-m", "xqdecl.cli", "run", str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    try:
        deadline = time.monotonic() + 90
        while True:
            st = _json(xq, "status", str(spec))
            if st.get("live") and st["counts"].get("running", 0) == 2:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, st
            time.sleep(0.3)
        check_status(st)
        assert st["holder"] and st["total"] == 5 and st["exit_code"] is None
        assert sum(st["counts"].values()) == 5
        assert [g["total"] for g in st["groups"]] == [2, 3]
        assert {j["name"] for j in st["jobs"] if j["status"] == "running"} <= {
            "slow-1", "slow-2", "slow-3"}
        code, out, _ = xq("status", str(spec))
        assert code == 0 and "running (" in out and "#1 slow-{n}" in out
        killed = _json(xq, "kill", str(spec))
        assert killed["run"] == "live" and killed["runner"] == st["holder"]
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    st = _json(xq, "status", str(spec))
    check_status(st)
    assert st["live"] is False and st["holder"] is None and st["exit_code"] == 130
    assert st["counts"]["succeeded"] == 2 and st["counts"]["cancelled"] >= 2
    code, out, _ = xq("status", str(spec))
    assert "ended with exit code 130" in out


def test_logs_by_index_name_trial_and_json(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        error_strategy = "retry"
        num_retries = 2
        [[jobs]]
        name = "flaky"
        cmd = "echo out-$XQDECL_TRIAL; echo err-$XQDECL_TRIAL >&2; [ $XQDECL_TRIAL -ge 2 ]"
    """)
    code, _, err = xq("run", str(spec))
    assert code == 0, err
    assert xq("logs", str(spec), "flaky")[1] == "out-2\n"
    assert xq("logs", str(spec), "0", "--trial", "0")[1] == "out-0\n"
    assert xq("logs", str(spec), "0", "--stderr", "--trial", "1")[1] == "err-1\n"
    data = _json(xq, "logs", str(spec), "flaky", "--stderr", "--trial", "1")
    assert data["text"] == "err-1\n" and data["trial"] == 1 and data["stream"] == "stderr"
    assert data["index"] == 0 and data["status"] == "succeeded"
    code, out, err = xq("logs", str(spec), "flaky", "--trial", "7")
    assert code == 2 and "trials are 0 to 2" in err and "Traceback" not in err
    code, out, err = xq("logs", str(spec), "nope", "--output", "json")
    assert code == 2 and "nope" in err
    assert json.loads(out)["exit_code"] == 2
    st = _json(xq, "status", str(spec))
    check_status(st)
    assert st["jobs"][0]["trials"] == 3 and st["groups"][0]["retried"] == 1


def test_every_command_speaks_json(xq: Xq, write_spec: Write, tmp_path: Path) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "j{n}"
        cmd = "echo hi-{n}; exit {n}"
        matrix = { n = [0, 1] }
    """)
    assert _json(xq, "validate", str(spec))["jobs"] == 2
    assert _json(xq, "plan", str(spec))["jobs"] == 2
    assert _json(xq, "run", str(spec), "--dry-run")["submitted"] == 0
    ran = _json(xq, "run", str(spec), code=1)
    assert ran["exit_code"] == 1 and ran["failed"][0]["name"] == "j1"
    st = _json(xq, "status", str(spec))
    check_status(st)
    assert st["failures"][0]["rc"] == 1 and st["failed_total"] == 1
    assert _json(xq, "logs", str(spec), "j0")["text"] == "hi-0\n"
    assert _json(xq, "kill", str(spec))["cancelled"] == 0
    assert _json(xq, "schema")["title"] == "xqdecl spec"
    rep = _json(xq, "report", str(spec))
    assert Path(rep["report"]).is_file() and rep["counts"] == {"succeeded": 1, "failed": 1}
    made = _json(xq, "init", str(tmp_path / "new.toml"))
    assert made["written"] == [str(tmp_path / "new.toml")]
    bad = _json(xq, "validate", str(tmp_path / "missing.toml"), code=3)
    assert bad["exit_code"] == 3 and "missing.toml" in bad["error"]


def test_quiet_and_plain_cli_output(xq: Xq, write_spec: Write) -> None:
    spec = write_spec("""
        [[jobs]]
        name = "a-{n}"
        cmd = ["true"]
        matrix = { n = [1, 2, 3] }
        [[jobs]]
        name = "b"
        cmd = "echo b-broke >&2; exit 5"
    """)
    code, out, err = xq("run", str(spec), "--output", "quiet")
    assert (code, out, err) == (1, "", "")
    code, out, err = xq("run", str(spec), "--fresh")
    assert code == 1 and out == ""
    assert "\x1b[" not in err  # not a terminal: no escape sequences
    assert "run spec: 4 jobs" in err and "#0 " in err and "#1 " in err
    assert "b-broke" in err and "xqdecl logs SPEC 3 --stderr" in err
    code, out, err = xq("status", str(spec), "--output", "quiet")
    assert (code, out, err) == (0, "", "")


def test_init_writes_a_starter_that_validates_and_runs(xq: Xq, tmp_path: Path) -> None:
    code, _, err = xq("init", cwd=tmp_path)
    assert code == 0, err
    spec = tmp_path / "xqdecl.toml"
    text = spec.read_text()
    assert text.count("\n#") > 10  # commented
    before = text
    code, _, err = xq("init", cwd=tmp_path)
    assert code == 2 and "already exists" in err and spec.read_text() == before
    assert _json(xq, "validate", str(spec))["jobs"] == 4
    assert _json(xq, "run", str(spec))["counts"] == {"succeeded": 4}
    code, out, _ = xq("logs", str(spec), "greet-xqdecl-2")
    assert out == "hello, xqdecl (job 3)\n"

    yaml_spec = tmp_path / "sub" / "pipeline.yaml"
    yaml_spec.parent.mkdir()
    code, _, err = xq("init", str(yaml_spec), "--schema")
    assert code == 0, err
    first = yaml_spec.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./xqdecl.schema.json"
    assert _json(xq, "validate", str(yaml_spec))["jobs"] == 4
    schema = json.loads((yaml_spec.parent / "xqdecl.schema.json").read_text())
    assert schema == _json(xq, "schema")

    toml_spec = tmp_path / "with-schema.toml"
    assert xq("init", str(toml_spec), "--schema")[0] == 0
    assert toml_spec.read_text().startswith("#:schema ./xqdecl.schema.json\n")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(tomllib.loads(toml_spec.read_text()), schema)
