"""Real services for the tests: Slurm, SGE, a loopback sshd and podman.

`require(service)` checks (once per test session) that the service answers and,
when it does not, runs `scripts/testbed/<service>.sh` to start it; when that
fails too, the test is skipped with the reason. `XQDECL_TESTBED_START=0` turns
starting off (only check). The session-scoped fixtures `slurm`, `sge`,
`ssh_server` and `podman` call `require` and give the service's facts.

State lives under `$XQDECL_TESTBED` (default /tmp/xqdecl-testbed); each set-up
script writes `<service>/info` there (KEY=VALUE lines) for these fixtures.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts" / "testbed"
SERVICES = ("slurm", "sge", "ssh", "podman")


def state_dir() -> Path:
    return Path(os.environ.get("XQDECL_TESTBED", "/tmp/xqdecl-testbed"))


@dataclass(frozen=True)
class Service:
    """A service that is up, with the facts its set-up script recorded."""

    name: str
    dir: Path
    info: dict[str, str] = field(default_factory=dict)
    started_in: float = 0.0  # seconds spent starting it in this session (0: was up)


@dataclass(frozen=True)
class SlurmCluster:
    node: str
    cpus: int
    partition: str
    dir: Path


@dataclass(frozen=True)
class SgeCell:
    host: str
    queue: str
    slots: int
    dir: Path


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str  # root
    test_user: str  # an unprivileged account that accepts the same key
    keyfile: Path
    known_hosts: Path
    ssh_config: Path

    def ssh_options(self) -> list[str]:
        """`ssh` arguments that trust this server's host key and never prompt."""
        return [
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
        ]  # fmt: skip

    def server(self, user: str | None = None) -> dict[str, object]:
        """One entry of the ssh backend's `servers` option."""
        return {
            "host": self.host,
            "port": self.port,
            "user": user or self.user,
            "keyfile": str(self.keyfile),
        }


@dataclass(frozen=True)
class Podman:
    runtime: str  # "podman"
    image: str  # a local image with busybox and bash
    version: str


_results: dict[str, Service | str] = {}  # service -> Service, or why it is not there


def _start_timeout() -> float:
    return float(os.environ.get("XQDECL_TESTBED_START_TIMEOUT", "110"))


def _script(service: str, *args: str, timeout: float) -> tuple[bool, str]:
    """Run a testbed script; (succeeded, the lines that say why not)."""
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPTS / f"{service}.sh"), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, f"{service}.sh {' '.join(args)} took more than {timeout:.0f} s"
    except OSError as exc:
        return False, f"cannot run {service}.sh: {exc}"
    if proc.returncode == 0:
        return True, ""
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    said = [ln for ln in lines if "COULD NOT START" in ln] or lines[-3:]
    return False, " | ".join(said) or f"{service}.sh exited {proc.returncode}"


def _read_info(service: str) -> dict[str, str]:
    path = state_dir() / service / "info"
    info: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key.strip()] = value.strip()
    return info


def ensure(service: str) -> Service | str:
    """The service if it is up (started if need be), else the reason it is not."""
    if service not in SERVICES:
        raise ValueError(f"unknown testbed service {service!r}; known: {', '.join(SERVICES)}")
    if service in _results:
        return _results[service]
    started_in = 0.0
    ok, why = _script(service, "--check", timeout=60)
    if not ok and os.environ.get("XQDECL_TESTBED_START", "1") != "0":
        t0 = time.monotonic()
        ok, why = _script(service, timeout=_start_timeout())
        started_in = time.monotonic() - t0
    elif not ok:
        why += " (XQDECL_TESTBED_START=0: not starting it)"
    result: Service | str = why
    if ok:
        result = Service(service, state_dir() / service, _read_info(service), started_in)
    _results[service] = result
    return result


def require(service: str) -> Service:
    """The service, up; skips the calling test when it cannot be had."""
    result = ensure(service)
    if isinstance(result, str):
        pytest.skip(f"{service} could not start: {result}")
    return result


@pytest.fixture(scope="session")
def slurm() -> SlurmCluster:
    svc = require("slurm")
    return SlurmCluster(
        node=svc.info.get("node", ""),
        cpus=int(svc.info.get("cpus", "1")),
        partition=svc.info.get("partition", "debug"),
        dir=svc.dir,
    )


@pytest.fixture(scope="session")
def sge() -> SgeCell:
    svc = require("sge")
    return SgeCell(
        host=svc.info.get("host", ""),
        queue=svc.info.get("queue", "all.q"),
        slots=int(svc.info.get("slots", "1")),
        dir=svc.dir,
    )


@pytest.fixture(scope="session")
def ssh_server() -> SshServer:
    svc = require("ssh")
    d = svc.dir
    return SshServer(
        host=svc.info.get("host", "127.0.0.1"),
        port=int(svc.info.get("port", "2222")),
        user=svc.info.get("user", "root"),
        test_user=svc.info.get("test_user", "xqtest"),
        keyfile=Path(svc.info.get("keyfile", d / "id_ed25519")),
        known_hosts=Path(svc.info.get("known_hosts", d / "known_hosts")),
        ssh_config=Path(svc.info.get("ssh_config", d / "ssh_config")),
    )


@pytest.fixture(scope="session")
def podman() -> Podman:
    svc = require("podman")
    return Podman(
        runtime=svc.info.get("runtime", "podman"),
        image=svc.info.get("image", "docker.io/library/alpine:latest"),
        version=svc.info.get("version", ""),
    )
