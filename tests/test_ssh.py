"""The ssh backend against the real loopback sshd (scripts/testbed/ssh.sh)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import xqdecl
from tests.conformance import BackendConformance
from xqdecl.backends.base import BackendContext, Liveness, Submission
from xqdecl.backends.ssh import SshBackend, _Server
from xqdecl.errors import BackendError, ExitCode
from xqdecl.spec import SshOptions
from xqdecl.store import journal as J

pytestmark = pytest.mark.ssh

#: a port nothing listens on (sshd of the testbed is on 2222)
CLOSED = {"host": "127.0.0.1", "port": 1}


def scheduler_of(ssh_server: Any, *servers: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ssh", "servers": list(servers) or [ssh_server.server()],
            "ssh_options": ssh_server.ssh_options()}


class TestSshConformance(BackendConformance):
    @pytest.fixture
    def scheduler(self, ssh_server: Any) -> dict[str, Any]:
        return scheduler_of(ssh_server)


class Collect(xqdecl.Reporter):
    """Keeps what the run tells its user."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def message(self, text: str) -> None:
        self.said.append(text)


def run(spec: xqdecl.Spec, reporter: xqdecl.Reporter | None = None) -> xqdecl.RunResult:
    runner = xqdecl.Runner(spec, poll_interval=0.25, reporter=reporter)
    return asyncio.run(asyncio.wait_for(runner.run(), 120))


def make_spec(workdir: Path, scheduler: dict[str, Any], n: int, cmd: str = "echo {i}",
              **run_opts: Any) -> xqdecl.Spec:
    data = {"name": "sshrun", "workdir": str(workdir / "wd"), "scheduler": scheduler,
            "jobs": [{"cmd": cmd, "matrix": {"i": list(range(n))}}], **run_opts}
    return xqdecl.spec_from_dict(data, base_dir=workdir)


def jids(result: xqdecl.RunResult) -> list[str]:
    db = J.Journal(Path(result.rundir) / "journal.db")
    try:
        return [row.jid or "" for row in db.load().values()]
    finally:
        db.close()


def test_jobs_spread_over_two_servers(tmp_path: Path, ssh_server: Any) -> None:
    other = {**ssh_server.server(), "host": "localhost"}
    spec = make_spec(tmp_path, scheduler_of(ssh_server, ssh_server.server(), other), 8,
                     forks=8)
    result = run(spec)
    assert result.ok, result
    servers = [j.partition(":")[0] for j in jids(result)]
    assert servers.count("0") >= 2 and servers.count("1") >= 2, servers
    assert (Path(result.rundir) / "jobs" / "7" / "stdout.0").read_text() == "7\n"


def test_unreachable_server_jobs_go_to_the_other(tmp_path: Path, ssh_server: Any) -> None:
    spec = make_spec(tmp_path, scheduler_of(ssh_server, CLOSED, ssh_server.server()), 6)
    reporter = Collect()
    result = run(spec, reporter)
    assert result.ok, result
    assert {j.partition(":")[0] for j in jids(result)} == {"1"}
    said = [m for m in reporter.said if "127.0.0.1:1" in m]
    assert len(said) == 1, said  # reported once, naming host:port and ssh's own error
    assert "unreachable" in said[0] and "refused" in said[0].lower()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the unprivileged test user may write into (tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="xq-ssh-user-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unprivileged_user(shared_dir: Path, ssh_server: Any) -> None:
    scheduler = scheduler_of(ssh_server, ssh_server.server(ssh_server.test_user))
    spec = make_spec(shared_dir, scheduler, 2, cmd="id -un")
    old = os.umask(0)  # the runner's folders must be writable for the remote user
    try:
        result = run(spec)
    finally:
        os.umask(old)
    assert result.ok, result
    out = Path(result.rundir) / "jobs" / "0" / "stdout.0"
    assert out.read_text() == f"{ssh_server.test_user}\n"


# -- the backend on its own ------------------------------------------------------------


def backend_for(tmp_path: Path, scheduler: dict[str, Any]) -> SshBackend:
    options = SshOptions.model_validate(scheduler)
    rundir = tmp_path / "run"
    for d in ("events", "jobs", "arrays"):
        (rundir / d).mkdir(parents=True, exist_ok=True)
    ctx = BackendContext(run="run", rundir=rundir, mounted_rundir=str(rundir), forks=8)
    return SshBackend(options, ctx)


def sleeper(backend: SshBackend, index: int, seconds: int = 60) -> Submission:
    meta = backend.ctx.rundir / "jobs" / str(index)
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "job.sh").write_text(f"exec sleep {seconds}\n")
    return Submission(index=index, trial=0, name=f"s{index}", script=meta / "job.sh",
                      group=0, options=backend.options)


def test_submit_returns_at_once_and_cancel_kills(tmp_path: Path, ssh_server: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    other = {**ssh_server.server(), "host": "localhost"}
    backend = backend_for(tmp_path, scheduler_of(ssh_server, ssh_server.server(), other))
    scripts: list[str] = []
    original = _Server.run

    async def counting(self: _Server, script: str, timeout: float) -> Any:
        scripts.append(script)
        return await original(self, script, timeout)

    monkeypatch.setattr(_Server, "run", counting)

    async def go() -> None:
        try:
            [first] = await backend.submit([sleeper(backend, 0)])  # connects both servers
            scripts.clear()
            t0 = time.monotonic()
            subs = [sleeper(backend, i) for i in range(1, 11)]
            # the runner hands over the whole fill in one call (whole_fill)
            done = await backend.submit(subs)
            assert sorted(d.index for d in done) == list(range(1, 11))
            assert time.monotonic() - t0 < 30  # never waits for the 60 s jobs
            assert len(scripts) == 2  # one ssh call per server for the whole fill
            ids = [d.jid for d in done if d.jid]
            assert len(ids) == 10
            ids.append(first.jid or "")
            scripts.clear()
            states = await backend.query(ids)
            assert len(scripts) == 2  # one call per server for every job in flight
            assert {s.liveness for s in states.values()} == {Liveness.RUNNING}
            assert len(states) == 11  # detached: they outlived the ssh sessions
            # a recycled pid (same pid, another start time) is not our job
            pid_only = ids[0].rpartition(".")[0] + ".1"
            assert pid_only not in await backend.query([pid_only])
            await backend.cancel(ids)
            after = await backend.query(ids)  # gone, or a zombie nobody reaped yet: done
            assert {s.liveness for s in after.values()} <= {Liveness.DONE}
        except BaseException:
            await backend.kill_now(list(backend._servers[0].jobs | backend._servers[1].jobs))
            raise
        finally:
            await backend.close()

    asyncio.run(go())
    assert backend._dir.startswith("/tmp/xq-ssh-") and not Path(backend._dir).exists()


def test_reattach_from_start_info(tmp_path: Path, ssh_server: Any) -> None:
    scheduler = scheduler_of(ssh_server)
    first = backend_for(tmp_path, scheduler)
    meta = tmp_path / "run" / "jobs" / "0"
    meta.mkdir(parents=True)
    (meta / "job.sh").write_text(
        'printf "%s %s %s\\n" "$HOSTNAME" "$$" "$EPOCHREALTIME" > "$(dirname "$0")/start.0"\n'
        "sleep 60\n"
    )
    sub = Submission(index=0, trial=0, name="r", script=meta / "job.sh", group=0,
                     options=first.options)

    async def go() -> None:
        second = backend_for(tmp_path, scheduler)
        try:
            [done] = await first.submit([sub])
            deadline = time.monotonic() + 30
            while not (meta / "start.0").exists():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            info = (meta / "start.0").read_text()
            assert await second.reattach(None, info) == done.jid
            assert await second.reattach(done.jid, "") == done.jid
            assert await second.reattach(None, info.replace(info.split()[0], "elsewhere")) is None
            await second.kill_now([done.jid or ""])
            assert await second.reattach(done.jid, info) is None
        finally:
            await first.close()
            await second.close()

    asyncio.run(go())


def test_no_reachable_server_is_a_backend_error(tmp_path: Path, ssh_server: Any) -> None:
    backend = backend_for(tmp_path, scheduler_of(ssh_server, CLOSED))

    async def go() -> None:
        try:
            with pytest.raises(BackendError, match=r"127\.0\.0\.1:1: .*refused"):
                await backend.submit([sleeper(backend, 0)])
            with pytest.raises(BackendError, match="unreachable"):
                await backend.query(["0:123.456"])
        finally:
            await backend.close()

    asyncio.run(go())


def test_run_with_no_reachable_server_exits_4(tmp_path: Path, ssh_server: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from xqdecl.engine import submitter as runner

    monkeypatch.setattr(runner, "MAX_BACKEND_FAILURES", 2)
    spec = make_spec(tmp_path, scheduler_of(ssh_server, CLOSED), 2)
    result = run(spec)
    assert result.exit_code == ExitCode.BACKEND
    assert "127.0.0.1:1" in result.message and "no ssh server is reachable" in result.message
