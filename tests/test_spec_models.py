"""Spec models: defaults, path resolution, durations, per-group overrides, schedulers."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from xqdecl.errors import SpecError
from xqdecl.spec import (
    ContainerOptions,
    JobGroup,
    LocalOptions,
    SgeOptions,
    SlurmOptions,
    Spec,
    SshOptions,
    json_schema,
    load_spec,
    spec_from_dict,
)
from xqdecl.spec.values import parse_duration

DATA = Path(__file__).parent / "data" / "specs"


def one_job(**extra: Any) -> dict[str, Any]:
    return {"jobs": [{"cmd": "true"}], **extra}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_defaults_from_a_file(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "my run!.toml", '[[jobs]]\ncmd = "true"\n'))
    assert spec.name == "my-run"
    assert spec.workdir == str(tmp_path / ".xqdecl")
    assert spec.cwd == str(tmp_path)
    assert spec.base_dir == tmp_path
    assert spec.source == str(tmp_path / "my run!.toml")
    assert (spec.forks, spec.submission_batch, spec.error_strategy) == (None, 8, "ignore")
    assert (spec.num_retries, spec.timeout, spec.prescript, spec.postscript) == (3, None, "", "")
    assert spec.plugins == [] and spec.env == {}
    assert isinstance(spec.scheduler, LocalOptions)
    group = spec.jobs[0]
    assert group.name == "job-{index}"
    assert (group.matrix, group.zip, group.params_file, group.env) == ({}, {}, None, {})
    assert group.timeout is None and group.scheduler is None


def test_defaults_from_a_dict(tmp_path: Path) -> None:
    spec = spec_from_dict(one_job(), base_dir=tmp_path)
    assert spec.name == "run"
    assert spec.source == "<dict>"
    assert spec.workdir == str(tmp_path / ".xqdecl")
    assert spec.cwd == str(tmp_path)


def test_source_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "p.yaml", "jobs: [{cmd: 'true'}]\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(Path("sub/p.yaml"))
    assert spec.source == "sub/p.yaml"
    assert spec.base_dir == tmp_path / "sub"
    assert spec.name == "p"


def test_paths_resolve_against_the_spec_folder(tmp_path: Path) -> None:
    spec = spec_from_dict(
        {
            "workdir": "state",
            "cwd": "work/{sample}",
            "scheduler": {"type": "slurm"},  # not local: its folders need not exist here
            "jobs": [
                {"cmd": "x", "cwd": "../{sample}", "matrix": {"sample": ["a"]}},
                {"cmd": "y", "cwd": "/abs/dir"},
            ],
        },
        base_dir=tmp_path,
    )
    assert spec.workdir == str(tmp_path / "state")
    assert spec.cwd == f"{tmp_path}/work/{{sample}}"
    assert spec.jobs[0].cwd == f"{tmp_path}/../{{sample}}"
    assert spec.jobs[1].cwd == "/abs/dir"
    assert spec.group_settings(1).cwd == "/abs/dir"


@pytest.mark.parametrize("url", ["s3://bucket/runs", "gs://b/x", "az://c/d"])
def test_cloud_workdirs_are_kept(url: str) -> None:
    assert spec_from_dict(one_job(workdir=url)).workdir == url


def test_other_url_schemes_are_refused() -> None:
    with pytest.raises(SpecError, match="unsupported workdir scheme 'http'"):
        spec_from_dict(one_job(workdir="http://x/y"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (2.5, 2.5), ("45", 45.0), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0),
     ("1d", 86400.0), ("1h30m", 5400.0), ("1.5h", 5400.0), (" 2H ", 7200.0),
     ("1d2h3m4s", 93784.0), (None, None)],
)
def test_durations(text: Any, seconds: float | None) -> None:
    assert parse_duration(text) == seconds
    assert spec_from_dict(one_job(timeout=text)).timeout == seconds


@pytest.mark.parametrize("text", ["", "x", "2x", "h", "1h30", "-5", "1e3s", 0, -1, True, [1]])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(SpecError, match="timeout: "):
        spec_from_dict(one_job(timeout=text))


def test_scalars_are_coerced_to_text() -> None:
    spec = spec_from_dict(
        {"env": {"N": 3, "F": 0.5, "T": True, "S": "s"},
         "jobs": [{"cmd": ["echo", 1, 2.5, False], "env": {"B": False},
                   "matrix": {"x": [1, True, "a", 0.01]}}]}
    )
    assert spec.env == {"N": "3", "F": "0.5", "T": "true", "S": "s"}
    assert spec.jobs[0].cmd == ["echo", "1", "2.5", "false"]
    assert spec.jobs[0].matrix["x"] == ["1", "true", "a", "0.01"]
    assert spec.group_settings(0).env == {"N": "3", "F": "0.5", "T": "true", "S": "s", "B": "false"}


def test_group_settings_merge_and_inherit(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "s.toml", """
        timeout = "1h"
        prescript = "module load x"
        postscript = "echo done"
        error_strategy = "retry"
        num_retries = 5
        [env]
        A = "1"
        B = "2"
        [scheduler]
        type = "slurm"
        partition = "short"
        mem = "4G"
        directives = ["--exclusive"]

        [[jobs]]
        cmd = "a"

        [[jobs]]
        cmd = "b"
        timeout = 30
        prescript = ""
        cwd = "sub"
        error_strategy = "halt"
        num_retries = 0
        env = { B = "two", C = "3" }
        scheduler = { mem = "8G", cpus_per_task = 4 }
    """))
    first, second = spec.group_settings(0), spec.group_settings(1)
    assert first.env == {"A": "1", "B": "2"}
    assert (first.timeout, first.prescript, first.postscript) == (3600.0, "module load x",
                                                                  "echo done")
    assert (first.cwd, first.error_strategy, first.num_retries) == (str(tmp_path), "retry", 5)
    assert first.scheduler == spec.scheduler
    assert second.env == {"A": "1", "B": "two", "C": "3"}
    assert (second.timeout, second.prescript, second.postscript) == (30.0, "", "echo done")
    assert (second.cwd, second.error_strategy, second.num_retries) == (
        str(tmp_path / "sub"), "halt", 0)
    options = second.scheduler
    assert isinstance(options, SlurmOptions)
    assert (options.partition, options.mem, options.cpus_per_task) == ("short", "8G", 4)
    assert options.directives == ["--exclusive"]
    assert spec.scheduler.mem == "4G"  # the run's options are left alone


def test_group_scheduler_may_repeat_the_run_type() -> None:
    spec = spec_from_dict({"scheduler": {"type": "sge"},
                           "jobs": [{"cmd": "x", "scheduler": {"type": "sge", "pe": "smp 4"}}]})
    options = spec.group_settings(0).scheduler
    assert isinstance(options, SgeOptions) and options.pe == "smp 4"


def test_scheduler_union_per_type(tmp_path: Path) -> None:
    slurm = spec_from_dict(one_job(scheduler={"type": "slurm", "array_throttle": 10}))
    assert isinstance(slurm.scheduler, SlurmOptions)
    assert (slurm.scheduler.array, slurm.scheduler.sbatch, slurm.scheduler.array_throttle) == (
        True, "sbatch", 10)
    sge = spec_from_dict(one_job(scheduler={"type": "sge", "resources": ["h_vmem=4G"],
                                            "array": False, "qsub": "/opt/sge/bin/qsub"}))
    assert isinstance(sge.scheduler, SgeOptions)
    assert (sge.scheduler.array, sge.scheduler.qsub) == (False, "/opt/sge/bin/qsub")
    ssh = spec_from_dict(
        one_job(scheduler={"type": "ssh", "servers": [{"host": "a"}, "me@b:2222", "c"],
                           "mounted_workdir": "/shared/wd"}),
        base_dir=tmp_path,
    )
    assert isinstance(ssh.scheduler, SshOptions)
    assert [(s.host, s.port, s.user) for s in ssh.scheduler.servers] == [
        ("a", 22, None), ("b", 2222, "me"), ("c", 22, None)]
    assert ssh.scheduler.mounted_workdir == "/shared/wd"
    box = spec_from_dict(one_job(scheduler={"type": "container", "runtime": "podman",
                                            "image": "alpine:3", "volumes": ["/d:/data"]}))
    assert isinstance(box.scheduler, ContainerOptions)
    assert box.scheduler.runtime == "podman"
    gbatch = spec_from_dict(one_job(scheduler={"type": "gbatch", "project": "p",
                                               "job_config": {"taskGroups": [{"x": 1}]}}))
    assert gbatch.scheduler.job_config == {"taskGroups": [{"x": 1}]}  # type: ignore[union-attr]


def test_scheduler_without_type_is_local() -> None:
    spec = spec_from_dict(one_job(scheduler={"mounted_workdir": "/m"}))
    assert isinstance(spec.scheduler, LocalOptions)
    assert spec.scheduler.mounted_workdir == "/m"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type": "container", "runtime": "lxc", "image": "x"},
         "scheduler.runtime: expected one of 'docker', 'podman' or 'apptainer', got 'lxc'"),
        ({"type": "container", "runtime": "docker", "image": "x", "volumes": ["nocolon"]},
         "scheduler.volumes: a volume is written host:container, got 'nocolon'"),
        ({"type": "ssh", "servers": []}, "scheduler.servers: must have at least 1 item(s)"),
        ({"type": "ssh", "servers": [{"host": "a", "port": 0}]},
         "scheduler.servers[0].port: must be at least 1, got 0"),
        ({"type": "slurm", "array": "yes"}, "scheduler.array: expected true or false"),
        ({"type": "slurm", "directives": "--x"}, "scheduler.directives: expected a list"),
    ],
)
def test_scheduler_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_dict(one_job(scheduler=options))
    assert any(message in line for line in caught.value.issues), caught.value.issues


def test_keyfile_resolves_against_the_spec_folder(tmp_path: Path) -> None:
    spec = spec_from_dict(
        one_job(scheduler={"type": "ssh", "servers": [{"host": "h", "keyfile": "keys/id"}]}),
        base_dir=tmp_path,
    )
    assert spec.scheduler.servers[0].keyfile == str(tmp_path / "keys" / "id")  # type: ignore[union-attr]


def test_models_are_frozen_and_with_overrides_revalidates(tmp_path: Path) -> None:
    spec = spec_from_dict(one_job(forks=2, workdir="wd"), base_dir=tmp_path, source="s.toml")
    with pytest.raises(ValueError, match="frozen"):
        spec.forks = 3  # type: ignore[misc]
    changed = spec.with_overrides(forks=5, error_strategy="halt")
    assert (changed.forks, changed.error_strategy, changed.workdir) == (5, "halt", spec.workdir)
    assert changed.group_settings(0).error_strategy == "halt"
    assert changed.source == "s.toml" and changed.base_dir == tmp_path
    with pytest.raises(SpecError, match="forks: must be at least 1"):
        spec.with_overrides(forks=0)


def test_example_configs_load_the_same_from_toml_and_yaml() -> None:
    configs = Path(__file__).parent.parent / "configs"
    toml, yaml = load_spec(configs / "matrix.toml"), load_spec(configs / "matrix.yaml")
    assert toml.model_dump() == yaml.model_dump()
    assert toml.total_jobs() == yaml.total_jobs() > 0


def test_valid_fixture_yaml_and_toml_agree() -> None:
    toml, yaml = load_spec(DATA / "valid.toml"), load_spec(DATA / "valid.yaml")
    assert toml.model_dump() == yaml.model_dump()
    assert [toml.group_settings(g) for g in range(len(toml.jobs))] == [
        yaml.group_settings(g) for g in range(len(yaml.jobs))]


def test_json_schema() -> None:
    schema = json_schema()
    json.dumps(schema)
    assert schema["title"] == "xqdecl spec"
    assert schema["required"] == ["jobs"]
    assert {"name", "workdir", "forks", "timeout", "scheduler", "jobs"} <= set(
        schema["properties"])
    assert schema["additionalProperties"] is False
    text = json.dumps(schema)
    for kind in ("slurm", "sge", "ssh", "container", "gbatch", "local"):
        assert f'"{kind}"' in text
    assert Spec.model_json_schema() is not None


def test_spec_validated_directly_without_context() -> None:
    spec = Spec.model_validate(one_job())
    assert spec.cwd == os.getcwd()
    assert spec.source == "<dict>"


def test_spec_built_in_code() -> None:
    spec = Spec(jobs=[JobGroup(cmd=["echo", "{x}"], matrix={"x": [1, 2]})],
                scheduler=SlurmOptions(partition="a"))
    assert spec.total_jobs() == 2
    assert spec.group_settings(0).scheduler == SlurmOptions(partition="a")
    assert spec.jobs[0].matrix == {"x": ["1", "2"]}
    with pytest.raises(SpecError) as caught:
        Spec(jobs=[JobGroup(cmd="{y}")])
    assert caught.value.issues == ["<dict>: jobs[0].cmd: unknown placeholder {y}; known: index"]


def test_yaml_merge_keys_fall_back_to_the_parent_position(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", """
        scheduler:
          <<: {memory: 8G}
          type: slurm
        jobs: [{cmd: x}]
    """)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.issues == [
        f"{path}:1:1: scheduler.memory: unknown option 'memory' for scheduler type 'slurm'"
        " (did you mean 'mem'?)"
    ]
