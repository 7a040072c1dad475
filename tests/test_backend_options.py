"""Backends typed by their options: one list of backends, the cadence as validated
`[scheduler]` options (environment variables override them, read at run time),
and the one function every scheduler command goes through."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import xqdecl
from xqdecl.backends import REGISTRY, backend_class, command
from xqdecl.backends.base import BackendContext, Timing
from xqdecl.backends.command import run_command
from xqdecl.backends.slurm import SlurmBackend
from xqdecl.errors import SchedulerError, SpecError
from xqdecl.spec import SgeOptions, SlurmOptions
from xqdecl.spec.schedulers import BACKENDS, SCHEDULER_MODELS


def ctx(tmp_path: Path) -> BackendContext:
    return BackendContext(run="r", rundir=tmp_path, mounted_rundir=str(tmp_path), forks=4)


def spec(tmp_path: Path, scheduler: dict[str, object],
         group: dict[str, object] | None = None) -> xqdecl.Spec:
    return xqdecl.spec_from_dict({"name": "t", "workdir": str(tmp_path / "wd"),
                                  "scheduler": scheduler,
                                  "jobs": [{"cmd": ["true"], **(group or {})}]},
                                 base_dir=tmp_path)


# -- one list -----------------------------------------------------------------------------
def test_every_backend_class_is_generic_over_its_listed_model() -> None:
    assert list(REGISTRY) == list(SCHEDULER_MODELS) == [
        "local", "slurm", "sge", "ssh", "container", "gbatch"]
    for model, _ in BACKENDS:
        cls = backend_class(model.model_fields["type"].default)
        assert cls.options_type is model
        assert not hasattr(cls, "options_model")


def test_unknown_type_lists_the_valid_ones() -> None:
    with pytest.raises(SpecError, match="valid types: local, slurm, sge, ssh, container, gbatch"):
        backend_class("pbs")


def test_options_of_another_backend_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="SlurmBackend takes SlurmOptions, not SgeOptions"):
        SlurmBackend(SgeOptions(), ctx(tmp_path))  # type: ignore[arg-type]


def test_plan_words_come_from_the_typed_options(tmp_path: Path) -> None:
    backend = SlurmBackend(SlurmOptions(), ctx(tmp_path))
    said = backend.describe_group(10, SlurmOptions(array_throttle=3))
    assert "native array job(s) of 10 tasks" in said and "at most 3 running" in said
    assert backend.describe_group(10, SlurmOptions(array=False)) == (
        "one submission per job, at most 4 in flight")


# -- the cadence ------------------------------------------------------------------------------
def test_cadence_defaults_spec_options_and_environment(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XQDECL_CANCEL_GRACE", "XQDECL_SLURM_TIMEOUT", "XQDECL_COMMAND_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert Timing.resolve(SlurmBackend, SlurmOptions()) == Timing(
        query_interval=10.0, sweep_interval=30.0, lost_grace=60.0, command_timeout=60.0,
        cancel_grace=12.0)
    options = spec(tmp_path, {"type": "slurm", "query_interval": "30s", "lost_grace": "2m",
                              "command_timeout": 90, "cancel_grace": "5s"}).scheduler
    backend = SlurmBackend(options, ctx(tmp_path))  # type: ignore[arg-type]
    assert (backend.query_interval, backend.lost_grace, backend.command_timeout,
            backend.cancel_grace, backend.sweep_interval) == (30.0, 120.0, 90.0, 5.0, 30.0)
    # environment variables override the spec, read when the backend is built
    monkeypatch.setenv("XQDECL_COMMAND_TIMEOUT", "45")
    monkeypatch.setenv("XQDECL_CANCEL_GRACE", "0")
    backend = SlurmBackend(options, ctx(tmp_path))  # type: ignore[arg-type]
    assert (backend.command_timeout, backend.cancel_grace) == (45.0, 0.0)
    monkeypatch.setenv("XQDECL_SLURM_TIMEOUT", "1m")  # the older per-backend name wins
    assert SlurmBackend(options, ctx(tmp_path)).command_timeout == 60.0  # type: ignore[arg-type]


def test_unreadable_environment_value_is_a_clear_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XQDECL_LOST_GRACE", "soon")
    with pytest.raises(SpecError, match="environment variable XQDECL_LOST_GRACE: invalid dur"):
        SlurmBackend(SlurmOptions(), ctx(tmp_path))


def test_cadence_options_are_checked_and_set_once_for_the_run(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"scheduler.query_interval: invalid duration"):
        spec(tmp_path, {"type": "local", "query_interval": "often"})
    with pytest.raises(SpecError, match=r"scheduler.cancel_grace: a duration must be positive"):
        spec(tmp_path, {"type": "local", "cancel_grace": -1})
    with pytest.raises(SpecError, match=r"jobs\[0\].scheduler.lost_grace: set once for the run"):
        spec(tmp_path, {"type": "slurm"}, {"scheduler": {"lost_grace": "10s"}})


# -- one way to run a scheduler command --------------------------------------------------
def test_run_command_answers_and_raises_typed_errors() -> None:
    async def go() -> None:
        done = await run_command(["bash", "-c", "cat; echo err >&2; exit 3"], 10, stdin=b"in")
        assert done == (3, "in", "err\n") and done.said() == "err"
        assert str(done.error("thing")) == "thing failed: err"
        with pytest.raises(SchedulerError, match="false failed: exit status 1"):
            await run_command(["false"], 10, check=True)
        with pytest.raises(SchedulerError, match="cannot run /no/such/sbatch"):
            await run_command(["/no/such/sbatch"], 10)
        with pytest.raises(SchedulerError, match=r"sleep did not answer within 0\.3 s"):
            await run_command(["sleep", "30"], 0.3)

    asyncio.run(go())


def test_run_command_output_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "MAX_OUT", 1000)
    monkeypatch.setattr(command, "MAX_ERR", 100)

    async def go() -> None:
        done = await run_command(["bash", "-c", "head -c 5000 /dev/zero | tr '\\0' e >&2"], 10)
        assert done.err == "e" * 100
        with pytest.raises(SchedulerError, match="printed more than"):
            await run_command(["head", "-c", "5000", "/dev/zero"], 10)

    asyncio.run(go())


def test_detached_command_returns_when_it_exits() -> None:
    # like `ssh -f`: a process it leaves behind holds the output open
    async def go() -> None:
        done = await run_command(["bash", "-c", "sleep 30 & echo started >&2"], 10, detached=True)
        assert done.rc == 0 and done.err == "started\n"

    asyncio.run(go())
