"""Spec errors: each kind with its exact file:line:col and field path, TOML and YAML."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.shared import issues_of
from xqdecl.errors import SpecError
from xqdecl.spec import load_spec, spec_from_dict

DATA = Path(__file__).parent / "data" / "specs"


def test_contract_example_message(here: Path) -> None:
    found = issues_of("""
        [[jobs]]
        cmd = "true"

        [[jobs]]
        name = "b-{sample}"
        cmd = "echo {sample}"
        matrix = { sample = "A" }
    """)
    assert found == [
        "spec.toml:7:21: jobs[1].matrix.sample: expected a list of values, got a string"
        " (or write {range = [start, stop]})"
    ]


def test_fixture_files_report_every_problem_with_positions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA)
    expected = {
        "invalid.toml": [
            "invalid.toml:2:8: name: invalid run name 'has space': use letters, digits,"
            " '_', '.' and '-'",
            "invalid.toml:3:9: forks: must be at least 1, got 0",
            "invalid.toml:4:11: timeout: invalid duration '2x': use seconds or a string like"
            " '90s', '10m', '2h', '1d', '1h30m'",
            "invalid.toml:5:18: error_strategy: expected one of 'ignore', 'retry' or 'halt',"
            " got 'retyr'",
            "invalid.toml:6:1: colour: unknown key 'colour'",
            "invalid.toml:9:1: env.\"A.B\": invalid environment variable name 'A.B'",
            "invalid.toml:13:1: scheduler.memory: unknown option 'memory' for scheduler type"
            " 'slurm' (did you mean 'mem'?)",
            "invalid.toml:15:1: jobs[0].cmd: required field is missing",
            "invalid.toml:20:3: jobs[1].cmd[1]: expected a string, number or boolean,"
            " got a table",
            "invalid.toml:21:22: jobs[1].matrix.r.range: the step of a range cannot be 0",
        ],
        "invalid.yaml": [
            "invalid.yaml:1:7: name: invalid run name 'has space': use letters, digits,"
            " '_', '.' and '-'",
            "invalid.yaml:2:8: forks: must be at least 1, got 0",
            "invalid.yaml:3:10: timeout: invalid duration '2x': use seconds or a string like"
            " '90s', '10m', '2h', '1d', '1h30m'",
            "invalid.yaml:4:17: error_strategy: expected one of 'ignore', 'retry' or 'halt',"
            " got 'retyr'",
            "invalid.yaml:5:1: colour: unknown key 'colour'",
            "invalid.yaml:7:3: env.\"A.B\": invalid environment variable name 'A.B'",
            "invalid.yaml:11:3: scheduler.memory: unknown option 'memory' for scheduler type"
            " 'slurm' (did you mean 'mem'?)",
            "invalid.yaml:13:5: jobs[0].cmd: required field is missing",
            "invalid.yaml:16:9: jobs[1].cmd[1]: expected a string, number or boolean,"
            " got a table",
            "invalid.yaml:18:18: jobs[1].matrix.r.range: the step of a range cannot be 0",
        ],
    }
    for name, lines in expected.items():
        with pytest.raises(SpecError) as caught:
            load_spec(name)
        assert caught.value.issues == lines, name


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("spec.toml", 'a = 1\nb = "x\n', "spec.toml:2:7: syntax error: Illegal character"),
        ("spec.toml", "a = 1\na = 2\n", "spec.toml:2:6: syntax error: Cannot overwrite a value"),
        ("spec.yaml", "a: 1\nb: [1, 2\n", "spec.yaml:3:1: syntax error: "),
        ("spec.yaml", "a: 1\na: 2\n", "spec.yaml:2:1: syntax error: "),
        ("spec.yml", "a:\n\t- x\n", "spec.yml:2:1: syntax error: "),
    ],
)
def test_syntax_errors_have_a_position(here: Path, name: str, text: str, expected: str) -> None:
    Path(name).write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(name)
    assert len(caught.value.issues) == 1
    assert caught.value.issues[0].startswith(expected)


def test_file_problems(here: Path) -> None:
    cases = {"missing.toml": "missing.toml: no such file"}
    (here / "folder.toml").mkdir()
    cases["folder.toml"] = "folder.toml: is a directory, not a spec file"
    (here / "latin.toml").write_bytes(b'name = "caf\xe9"\n')
    cases["latin.toml"] = "latin.toml: not UTF-8 text (invalid byte at offset 11)"
    (here / "empty.yaml").write_text("# nothing\n")
    cases["empty.yaml"] = "empty.yaml: the spec is empty"
    (here / "list.yaml").write_text("- a\n- b\n")
    cases["list.yaml"] = "list.yaml: the spec must be a table of keys, got a list"
    for name, message in cases.items():
        with pytest.raises(SpecError) as caught:
            load_spec(name)
        assert caught.value.issues == [message]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(here: Path) -> None:
    path = here / "secret.toml"
    path.write_text('[[jobs]]\ncmd = "x"\n')
    path.chmod(0)
    with pytest.raises(SpecError, match="permission denied"):
        load_spec("secret.toml")


def test_unknown_extension_is_read_by_content(here: Path) -> None:
    Path("a.spec").write_text('[[jobs]]\ncmd = "true"\n')
    Path("b.conf").write_text("jobs:\n  - cmd: 'true'\n")
    assert load_spec("a.spec").name == "a"
    assert load_spec("b.conf").jobs[0].cmd == "true"
    Path("c.txt").write_text("just some words\n")
    with pytest.raises(SpecError, match=r"c\.txt: cannot tell whether this is TOML or YAML"):
        load_spec("c.txt")


def test_missing_jobs_and_root_problems(here: Path) -> None:
    assert issues_of('name = "x"\n') == [
        "spec.toml: jobs: required: add at least one job group ([[jobs]])"
    ]
    assert issues_of("jobs = []\n") == ["spec.toml:1:8: jobs: at least one job group is needed"]
    assert issues_of('[jobs]\ncmd = "x"\n') == [
        "spec.toml:1:1: jobs: expected a list of job groups ([[jobs]] tables), got a table"
    ]


def test_scheduler_type_errors(here: Path) -> None:
    assert issues_of("""
        [scheduler]
        type = "pbs"
        [[jobs]]
        cmd = "x"
    """) == [
        "spec.toml:2:8: scheduler.type: unknown scheduler type 'pbs'; valid types: local,"
        " slurm, sge, ssh, container, gbatch"
    ]
    assert issues_of("""
        scheduler: {type: container, image: alpine}
        jobs: [{cmd: x}]
    """, "spec.yaml") == ["spec.yaml:1:1: scheduler.runtime: required option is missing"]


def test_unknown_option_per_backend(here: Path) -> None:
    for kind, wrong in [("local", "partition"), ("sge", "mem"), ("gbatch", "zone"),
                        ("slurm", "queue")]:
        found = issues_of(f"""
            [scheduler]
            type = "{kind}"
            {wrong} = "x"
            [[jobs]]
            cmd = "x"
        """)
        assert len(found) == 1
        assert found[0].startswith(
            f"spec.toml:3:1: scheduler.{wrong}: unknown option {wrong!r} for scheduler type"
            f" {kind!r}"
        )


def test_group_scheduler_options_are_checked_with_the_run_type(here: Path) -> None:
    found = issues_of("""
        [scheduler]
        type = "slurm"

        [[jobs]]
        cmd = "x"

        [[jobs]]
        cmd = "y"
        scheduler = { memory = "8G", cpus_per_task = "4" }
    """)
    assert found == [
        "spec.toml:9:15: jobs[1].scheduler.memory: unknown option 'memory' for scheduler"
        " type 'slurm' (did you mean 'mem'?)",
        "spec.toml:9:46: jobs[1].scheduler.cpus_per_task: expected an integer, got a string",
    ]
    assert issues_of("""
        scheduler:
          type: slurm
        jobs:
          - cmd: x
            scheduler:
              type: sge
    """, "spec.yaml") == [
        "spec.yaml:6:13: jobs[0].scheduler.type: the scheduler type is set once for the run"
        " (it is 'slurm'); a group may only change its options"
    ]


def test_cluster_option_values_are_checked_where_they_are_written(here: Path) -> None:
    assert issues_of("""
        [scheduler]
        type = "slurm"
        mem = "4 G"
        directives = ["--exclusive", "--x\\n--y"]

        [[jobs]]
        cmd = "x"
    """) == [
        "spec.toml:3:7: scheduler.mem: '4 G' cannot be a Slurm option value (one word, no spaces)",
        "spec.toml:4:14: scheduler.directives: one non-empty line per directive, got '--x\\n--y'",
    ]
    assert issues_of("""
        [scheduler]
        type = "slurm"

        [[jobs]]
        cmd = "x"
        scheduler = { partition = "" }
    """) == [
        "spec.toml:6:27: jobs[0].scheduler.partition: '' cannot be a Slurm option value"
        " (one word, no spaces)",
    ]
    assert issues_of("""
        scheduler:
          type: sge
          queue: -all.q
          resources: [h_vmem=2G, "mem free"]
          pe: smp
        jobs:
          - cmd: x
    """, "spec.yaml") == [
        "spec.yaml:3:10: scheduler.queue: '-all.q' cannot be an SGE option value"
        " (one word, no spaces)",
        "spec.yaml:4:14: scheduler.resources: 'mem free' cannot be an SGE option value"
        " (one word, no spaces)",
        "spec.yaml:5:7: scheduler.pe: write \"<name> <slots>\" (e.g. \"smp 4\"), got 'smp'",
    ]


def test_placeholder_errors(here: Path) -> None:
    found = issues_of("""
        prescript = "cd {dir}"

        [[jobs]]
        name = "a-{sample}"
        cmd = ["echo", "{smaple}"]
        matrix = { sample = ["A"] }
        env = { X = "{y}" }

        [[jobs]]
        name = "b"
        cmd = "awk '{print $1}' ${HOME}"
    """)
    assert found == [
        "spec.toml:1:13: prescript: unknown placeholder {dir}; known: index, sample"
        " (used by jobs[0])",
        "spec.toml:5:16: jobs[0].cmd[1]: unknown placeholder {smaple} (did you mean {sample}?);"
        " known: index, sample",
        "spec.toml:7:13: jobs[0].env.X: unknown placeholder {y}; known: index, sample",
        "spec.toml:11:7: jobs[1].cmd: invalid placeholder '{print $1}': a placeholder is a"
        " parameter name in braces; write '{{' and '}}' for literal braces",
    ]


def test_shell_variable_hint(here: Path) -> None:
    found = issues_of('[[jobs]]\ncmd = "echo ${HOME}"\n')
    assert found == [
        "spec.toml:2:7: jobs[0].cmd: unknown placeholder {HOME}; known: index;"
        " for a shell variable write ${{HOME}}"
    ]


def test_parameter_errors(here: Path) -> None:
    Path("rows.csv").write_text("id,path\n1,a\n2\n")
    found = issues_of("""
        jobs:
          - cmd: "echo {a}"
            matrix: {a: [1, 2], index: [3], e: []}
            zip:
              p: [1, 2]
              q: [1]
          - cmd: "echo {id}"
            params_file: rows.csv
          - cmd: "echo {id}"
            params_file: nothing.tsv
            matrix: {id: [1]}
    """, "spec.yaml")
    base = os.getcwd()
    assert found == [
        "spec.yaml:3:25: jobs[0].matrix.index: 'index' is reserved for the job's global index",
        "spec.yaml:3:40: jobs[0].matrix.e: no values: the group would have no jobs",
        "spec.yaml:6:10: jobs[0].zip.q: has 1 values but 'p' has 2; zipped lists must have"
        " the same length",
        f"spec.yaml:8:18: jobs[1].params_file: params file {base}/rows.csv: row 3 has 1"
        " fields, the header has 2",
        f"spec.yaml:10:18: jobs[2].params_file: params file not found: {base}/nothing.tsv",
    ]


def test_duplicate_parameter_between_sources(here: Path) -> None:
    Path("rows.tsv").write_text("a\tb\n1\t2\n")
    assert issues_of("""
        [[jobs]]
        cmd = "x"
        params_file = "rows.tsv"
        zip = { a = [1] }
    """) == ["spec.toml:3:15: jobs[0].params_file: parameter 'a' is also defined in zip"]


def test_duplicate_names(here: Path) -> None:
    found = issues_of("""
        [[jobs]]
        name = "job-{n}"
        cmd = "x"
        matrix = { n = [1, 2] }

        [[jobs]]
        name = "same"
        cmd = "y"
        matrix = { n = { range = [0, 10] } }
    """)
    assert found == [
        "spec.toml:7:8: jobs[1].name: job names must be unique after expansion:"
        " 'same' is used by 10 jobs (2, 3, 4, ...)"
    ]
    found = issues_of("""
        jobs:
          - {name: "job-{n}", cmd: x, matrix: {n: [1, 2]}}
          - {cmd: y}
    """, "spec.yaml")
    assert found == [
        "spec.yaml:3:5: jobs[1].name: job names must be unique after expansion:"
        " 'job-2' is used by jobs 1 and 2"
    ]


def test_types_in_yaml_and_toml(here: Path) -> None:
    assert issues_of("""
        forks: "4"
        plugins: mypkg
        env: [A]
        jobs:
          - cmd: {a: 1}
            num_retries: -1
            timeout: true
    """, "spec.yaml") == [
        "spec.yaml:1:8: forks: expected an integer, got a string",
        "spec.yaml:2:10: plugins: expected a list, got a string",
        "spec.yaml:3:6: env: expected a table, got a list",
        "spec.yaml:5:5: jobs[0].cmd: expected a command string or a list of arguments,"
        " got a table",
        "spec.yaml:6:18: jobs[0].num_retries: must be at least 0, got -1",
        "spec.yaml:7:14: jobs[0].timeout: expected a duration (seconds, or a string like"
        " '90s', '10m', '2h', '1h30m'), got a boolean",
    ]


def test_missing_field_points_at_the_parent(here: Path) -> None:
    assert issues_of("""
        [scheduler]
        type = "ssh"

        [[jobs]]
        cmd = "x"
    """) == ["spec.toml:1:1: scheduler.servers: required option is missing"]
    assert issues_of("""
        scheduler:
          type: ssh
          servers:
            - port: 22
        jobs: [{cmd: x}]
    """, "spec.yaml") == ["spec.yaml:4:7: scheduler.servers[0].host: required field is missing"]


def test_spec_from_dict_errors_have_paths_without_lines() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_dict({"jobs": [{"cmd": "x", "matrix": {"a": "b"}}], "forks": 0})
    assert caught.value.issues == [
        "<dict>: forks: must be at least 1, got 0",
        "<dict>: jobs[0].matrix.a: expected a list of values, got a string"
        " (or write {range = [start, stop]})",
    ]
    with pytest.raises(SpecError) as caught:
        spec_from_dict({"jobs": [{"cmd": "{x}"}]}, source="api")
    assert caught.value.issues == ["api: jobs[0].cmd: unknown placeholder {x}; known: index"]


def test_no_pydantic_url_or_internal_text(here: Path) -> None:
    text = "\n".join(issues_of("""
        forks = 1.5
        submission_batch = "many"
        [[jobs]]
        cmd = "x"
        error_strategy = 3
    """))
    assert "pydantic" not in text
    assert "http" not in text
    assert "Input should" not in text


def test_placeholders_checked_despite_other_parameter_problems(here: Path) -> None:
    assert issues_of("""
        [[jobs]]
        cmd = "echo {a} {b} {c}"
        zip = { a = [1, 2], b = [1] }
    """) == [
        "spec.toml:2:7: jobs[0].cmd: unknown placeholder {c}; known: a, b, index",
        "spec.toml:3:25: jobs[0].zip.b: has 1 values but 'a' has 2; zipped lists must have"
        " the same length",
    ]
