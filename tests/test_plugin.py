"""Plugin hooks in real runs on the local backend: order, veto, keep, snippets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import xqdecl
from tests.conftest import REPO
from xqdecl.engine import Reporter, Runner

Xq = Callable[..., tuple[int, str, str]]
EXAMPLES = REPO / "examples" / "plugins"
JOB_HOOKS = ("on_job_init", "on_job_queued", "on_job_submitting", "on_job_submitted",
             "on_job_started", "on_job_polling", "on_job_killing", "on_job_killed",
             "on_job_failed", "on_job_succeeded")


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The example plugin module, importable as `xqdecl_demo`."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delenv("XQDECL_DEMO_SKIP", raising=False)
    monkeypatch.delenv("XQDECL_DEMO_KEEP", raising=False)
    import xqdecl_demo

    yield xqdecl_demo
    sys.modules.pop("xqdecl_demo", None)


class Collect(Reporter):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def per_job(calls: list[tuple[str, int | None, str | None]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for hook, index, _ in calls:
        if index is not None:
            out.setdefault(index, []).append(hook)
    return out


def without_polls(hooks: list[str]) -> list[str]:
    return [h for h in hooks if h != "on_job_polling"]


def spec_file(tmp_path: Path, body: str, plugins: str = '["xqdecl_demo"]') -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(f"plugins = {plugins}\n" + textwrap.dedent(body).lstrip())
    return path


# -- the example config, through the CLI ------------------------------------------------------
def test_demo_config_calls_every_hook_in_order(xq: Xq, tmp_path: Path) -> None:
    spec = tmp_path / "plugin-demo.toml"
    spec.write_text((REPO / "configs" / "plugin-demo.toml").read_text())
    env = {"PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
           "XQDECL_DEMO_SKIP": "skip-*"}
    code, _, err = xq("run", str(spec), env=env)
    assert code == 0, err
    code, out, _ = xq("status", str(spec), "--output", "json")
    status = {j["name"]: j["status"] for j in json.loads(out)["jobs"]}
    assert status == {"ok-1": "succeeded", "ok-2": "succeeded", "flaky": "succeeded",
                      "skip-me": "skipped"}
    log = (tmp_path.parent / ".xqdecl" / "plugin-demo" / "demo-hooks.log").read_text()
    lines = [line.split() for line in log.splitlines()]
    assert lines[0][0] == "on_init" and lines[-1][:2] == ["on_shutdown", "-"]
    jobs: dict[int, list[tuple[str, str]]] = {}
    for hook, index, *rest in lines[1:-1]:
        if hook != "on_job_polling":
            jobs.setdefault(int(index), []).append((hook, rest[1]))  # (hook, trial)
    ok = ["on_job_init", "on_job_queued", "on_job_submitting", "on_job_submitted",
          "on_job_started", "on_job_succeeded"]
    assert [h for h, _ in jobs[0]] == ok and [h for h, _ in jobs[1]] == ok
    assert jobs[2] == [(h, "0") for h in ok[:5]] + [("on_job_failed", "0")] + [
        (h, "1") for h in ok[1:]]
    assert [h for h, _ in jobs[3]] == ok[:3]  # skipped: nothing after on_job_submitting
    # the snippets ran in place, in both trials: init, prescript, prep, command, end, postscript
    code, out, _ = xq("logs", str(spec), "flaky")
    assert out.splitlines() == ["[demo] init flaky (trial 1)", "[demo] prescript",
                                "[demo] prep", "command of flaky", "[demo] end rc=0",
                                "[demo] postscript"]
    first = tmp_path.parent / ".xqdecl" / "plugin-demo" / "jobs" / "2" / "stdout.0"
    assert "[demo] end rc=1" in first.read_text().splitlines()


def test_snippets_land_where_the_seed_puts_them(demo: object, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, """
        prescript = "echo pre"
        [env]
        MARK = "m"
        [[jobs]]
        name = "only"
        cmd = ["echo", "cmd"]
    """)
    result = xqdecl.run(spec)
    assert result.ok
    script = (Path(result.rundir) / "jobs" / "0" / "job.sh").read_text().splitlines()
    at = {text: i for i, text in enumerate(script)}
    init = at['echo "[demo] init $XQDECL_JOB_NAME (trial $XQDECL_TRIAL)"']
    prep = at['echo "[demo] prep"']
    end = at['echo "[demo] end rc=$XQDECL_JOB_RC"']
    assert at["export MARK=m"] < init < at["echo pre"] < prep == at["exec -- echo cmd"] - 1
    rc_line = next(i for i, t in enumerate(script) if "rc.$_xq_t.tmp" in t)
    assert next(i for i, t in enumerate(script) if t.startswith("_xq_finish()")) < end < rc_line
    out = (Path(result.rundir) / "jobs" / "0" / "stdout.0").read_text().splitlines()
    assert out == ["[demo] init only (trial 0)", "pre", "[demo] prep", "cmd", "[demo] end rc=0"]


# -- hook order, in process ---------------------------------------------------------------------
def test_started_precedes_the_end_even_between_polls(demo: object, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, """
        forks = 8
        [[jobs]]
        name = "j{i}"
        cmd = "exit {rc}"
        zip = { i = [0, 1, 2, 3, 4, 5], rc = [0, 0, 0, 3, 0, 4] }
    """)
    result = xqdecl.run(spec, poll_interval=1.5)  # every job ends between two polls
    assert result.exit_code == 1
    calls = demo.CALLS  # type: ignore[attr-defined]
    assert calls[0][0] == "on_init" and calls[-1][0] == "on_shutdown"
    jobs = per_job(calls)
    assert sorted(jobs) == list(range(6))
    for index, hooks in jobs.items():
        end = "on_job_failed" if index in (3, 5) else "on_job_succeeded"
        assert without_polls(hooks) == ["on_job_init", "on_job_queued", "on_job_submitting",
                                        "on_job_submitted", "on_job_started", end], index


def test_polling_hook_sees_running_jobs_only_after_started(demo: object,
                                                          tmp_path: Path) -> None:
    spec = spec_file(tmp_path, """
        [[jobs]]
        name = "slow"
        cmd = ["sleep", "1.5"]
    """)
    assert xqdecl.run(spec, poll_interval=0.1).ok
    hooks = per_job(demo.CALLS)[0]  # type: ignore[attr-defined]
    polls = [i for i, h in enumerate(hooks) if h == "on_job_polling"]
    assert len(polls) >= 3
    assert hooks.index("on_job_started") < polls[0] and polls[-1] < hooks.index(
        "on_job_succeeded")
    statuses = {s for h, _, s in demo.CALLS if h == "on_job_polling"}  # type: ignore[attr-defined]
    assert statuses == {"running"}


def test_submitting_false_skips_and_the_run_ends(demo: object, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XQDECL_DEMO_SKIP", "*")
    spec = spec_file(tmp_path, """
        [[jobs]]
        name = "never-{n}"
        cmd = ["touch", "ran-{n}"]
        matrix = { n = [1, 2, 3] }
    """)
    result = xqdecl.run(spec)
    assert result.exit_code == 0 and result.counts == {"skipped": 3}
    assert not list(tmp_path.glob("ran-*"))
    for hooks in per_job(demo.CALLS).values():  # type: ignore[attr-defined]
        assert hooks == ["on_job_init", "on_job_queued", "on_job_submitting"]


def test_killing_false_keeps_the_job_running(demo: object, tmp_path: Path, xq: Xq,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XQDECL_DEMO_KEEP", "keep")
    spec = spec_file(tmp_path, """
        [[jobs]]
        name = "{n}"
        cmd = "sleep 3; touch done-{n}"
        matrix = { n = ["keep", "kill"] }
    """)

    async def scenario() -> xqdecl.RunResult:
        runner = Runner(xqdecl.load_spec(spec), poll_interval=0.1)
        task = asyncio.ensure_future(runner.run())
        deadline = time.monotonic() + 20
        while runner.counts.get("running", 0) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        runner.request_stop()
        return await task

    result = asyncio.run(scenario())
    assert result.exit_code == 130
    deadline = time.monotonic() + 15
    while not (tmp_path / "done-keep").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "done-keep").exists()  # the kept job ran to its end
    assert not (tmp_path / "done-kill").exists()
    jobs = per_job(demo.CALLS)  # type: ignore[attr-defined]
    assert without_polls(jobs[0])[-1] == "on_job_killing"  # kept: never killed
    assert without_polls(jobs[1])[-2:] == ["on_job_killing", "on_job_killed"]
    rows = {r["name"]: r for r in _status_rows(xq, spec)}
    assert rows["kill"]["status"] == "cancelled"
    assert rows["keep"]["status"] in ("running", "succeeded")  # the next run re-attaches


def _status_rows(xq: Xq, spec: Path) -> list[dict]:
    code, out, err = xq("status", str(spec), "--output", "json")
    assert code == 0, err
    return json.loads(out)["jobs"]


def test_sync_and_async_implementations_both_run(demo: object, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, """
        [[jobs]]
        name = "one"
        cmd = ["true"]
    """)
    assert xqdecl.run(spec).ok
    hooks = [h for h, _, _ in demo.CALLS]  # type: ignore[attr-defined]
    # on_job_started and on_job_succeeded are `async def` in the demo, the others `def`
    assert {"on_job_started", "on_job_succeeded", "on_job_submitted", "on_job_init"} <= set(
        hooks)
    reporter = Collect()
    assert xqdecl.run(spec, fresh=True, reporter=reporter).ok
    assert not [m for m in reporter.messages if "plugin" in m]
