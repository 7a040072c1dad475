"""Bad input that used to get through the spec layer: each is now a spec error
with its file:line:col and field path (exit 3, no traceback), or works."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shared import issues_of
from xqdecl.errors import ExitCode, SpecError
from xqdecl.spec import load_spec, render_all, spec_from_dict
from xqdecl.spec.files import MAX_PARAMS_BYTES, MAX_SPEC_BYTES, FileRefused, read_limited
from xqdecl.spec.params import read_params_file

CLI = Callable[..., tuple[int, str, str]]


_BOUNDED = ("import resource, runpy, sys;"
            " resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
            " sys.argv[0] = 'xqdecl'; runpy.run_module('xqdecl.cli', run_name='__main__')")


def validate_bounded(spec: str | Path) -> tuple[int, str, str]:
    """`xqdecl validate` with 1 GiB of memory and 60 s at most: a reader of
    /dev/zero fails fast instead of taking the machine's memory."""
    proc = subprocess.run([sys.executable, "-c", _BOUNDED, "validate", str(spec)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean_spec_error(result: tuple[int, str, str], expected: str) -> None:
    code, _, err = result
    assert code == ExitCode.INVALID_SPEC
    assert expected in err
    assert "Traceback" not in err and "internal error" not in err


# 1. run names ------------------------------------------------------------------


@pytest.mark.parametrize("name", [".", "..", "...."])
def test_run_name_of_only_dots_is_refused(here: Path, name: str) -> None:
    found = issues_of(f'# a run\n\nname = "{name}"\n[[jobs]]\ncmd = "true"\n')
    assert found == [f"spec.toml:3:8: name: invalid run name {name!r}: a name of only dots"
                     " would put the run directory outside the workdir"]


def test_run_names_with_dots_inside_still_work(here: Path) -> None:
    Path("spec.toml").write_text('name = "a..b.c"\n[[jobs]]\ncmd = "true"\n')
    assert load_spec("spec.toml").name == "a..b.c"
    Path(".hidden.toml").write_text('[[jobs]]\ncmd = "true"\n')
    assert load_spec(".hidden.toml").name == ".hidden"


@pytest.mark.parametrize("file", ["..toml", "...yaml"])
def test_invalid_name_from_the_file_stem_is_explained(here: Path, file: str) -> None:
    text = '[[jobs]]\ncmd = "true"\n' if file.endswith("toml") else "jobs:\n  - cmd: 'true'\n"
    Path(file).write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(file)
    [issue] = caught.value.issues
    assert issue.startswith(f"{file}: name: the run name defaults to the spec file's stem")
    assert "set name = " in issue


def test_run_name_of_dots_refused_in_code_too() -> None:
    with pytest.raises(SpecError, match=r"name: invalid run name '\.\.'"):
        spec_from_dict({"name": "..", "jobs": [{"cmd": "x"}]})


def test_validate_refuses_dot_name(write_spec: Callable[..., Path], xq: CLI) -> None:
    spec = write_spec('name = ".."\n[[jobs]]\ncmd = "true"\n')
    assert_clean_spec_error(xq("validate", str(spec)), "spec.toml:1:8: name: invalid run name")


# 2. params files ------------------------------------------------------------------


def _params_spec(path: str) -> str:
    return f'[[jobs]]\ncmd = "echo {{a}}"\nparams_file = "{path}"\n'


@pytest.mark.parametrize(
    ("target", "what"),
    [("/dev/null", "is a character device"), ("fifo", "is a named pipe (FIFO)"),
     ("folder", "is a directory")],
)
def test_params_file_must_be_a_regular_file(here: Path, target: str, what: str) -> None:
    os.mkfifo("fifo")
    os.mkdir("folder")
    found = issues_of(_params_spec(target))
    assert len(found) == 1
    assert found[0].startswith(f"spec.toml:3:15: jobs[0].params_file: params file {what},"
                               " not a regular file: ")


def test_params_file_over_the_cap_is_refused_unread(here: Path) -> None:
    with open("huge.tsv", "wb") as handle:  # sparse: no disk space used
        handle.truncate(MAX_PARAMS_BYTES + 1)
    found = issues_of(_params_spec("huge.tsv"))
    assert found == [f"spec.toml:3:15: jobs[0].params_file: params file is larger than 512 MiB"
                     f" ({MAX_PARAMS_BYTES + 1:,} bytes): {here}/huge.tsv"]


@pytest.mark.parametrize(("target", "what"), [("rows.tsv", "is a named pipe (FIFO)"),
                                               ("/dev/zero", "is a character device")])
def test_endless_params_file_does_not_hang_validate(
        write_spec: Callable[..., Path], tmp_path: Path, target: str, what: str) -> None:
    os.mkfifo(tmp_path / "rows.tsv")
    spec = write_spec(_params_spec(target))
    assert_clean_spec_error(validate_bounded(spec),
                            f"spec.toml:3:15: jobs[0].params_file: params file {what}")


def test_read_limited_never_returns_more_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    assert read_limited(str(path), 11) == b"x" * 11
    with pytest.raises(FileRefused, match="larger than 10 bytes"):
        read_limited(str(path), 10)


def test_tsv_rows_end_only_at_newlines(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("a\tb\r\nx\x0cy\tz\x1e\n", newline="")
    assert read_params_file(str(path)) == (("a", "b"), [("x\x0cy", "z\x1e")])


# 3. the spec file itself ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"),
    [("fifo", "cannot read the spec: it is a named pipe (FIFO), not a regular file"),
     ("zero", "cannot read the spec: it is a character device, not a regular file"),
     ("folder", "is a directory, not a spec file"),
     ("huge", f"cannot read the spec: it is larger than 64 MiB ({MAX_SPEC_BYTES + 1:,} bytes)")],
)
def test_spec_file_must_be_a_bounded_regular_file(tmp_path: Path, make: str,
                                                  expected: str) -> None:
    path = str(tmp_path / "spec.toml")
    if make == "fifo":
        os.mkfifo(path)
    elif make == "zero":
        path = "/dev/zero"
    elif make == "folder":
        os.mkdir(path)
    else:
        with open(path, "wb") as handle:
            handle.truncate(MAX_SPEC_BYTES + 1)
    assert_clean_spec_error(validate_bounded(path), f"{path}: {expected}")


# 4. numbers too large --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("matrix = { x = { range = [0, 1000000000000000000000000000000] } }",
         "5:26: jobs[0].matrix.x.range: range values must be 64-bit integers (from -2**63 to"
         " 2**63-1), got 1000000000000000000000000000000"),
        ("matrix = { x = { range = [-1000000000000000000000000000000, 0] } }",
         "5:26: jobs[0].matrix.x.range: range values must be 64-bit integers"),
        ("matrix = { x = { range = [0, 9000000000000000000] } }",
         "5:26: jobs[0].matrix.x.range: the range has 9,000,000,000,000,000,000 values;"
         " a run has at most 10,000,000 jobs"),
        ("matrix = { x = { range = [9000000000000000000, 0, -1] } }",
         "5:26: jobs[0].matrix.x.range: the range has 9,000,000,000,000,000,000 values"),
        ("num_retries = 100000000000000000000000000",
         "5:15: jobs[0].num_retries: must be at most 2147483647"),
        ("timeout = 1e308", "5:11: jobs[0].timeout: a duration must be at most 365 days"),
        ('timeout = "99999999999999999999d"',
         "5:11: jobs[0].timeout: a duration must be at most 365 days"),
    ],
)
def test_huge_numbers_in_a_group_are_spec_errors(here: Path, line: str, expected: str) -> None:
    found = issues_of(f'forks = 2\n\n\n[[jobs]]\n{line}\ncmd = "echo {{x}}"\n'
                      + ('\nmatrix = { x = [1] }\n' if "matrix" not in line else ""))
    assert len(found) == 1
    assert found[0].startswith(f"spec.toml:{expected}")


@pytest.mark.parametrize("key", ["forks", "submission_batch", "num_retries"])
def test_huge_run_counts_are_spec_errors(here: Path, key: str) -> None:
    found = issues_of(f'{key} = 100000000000000000000000000\n[[jobs]]\ncmd = "true"\n')
    assert found == [f"spec.toml:1:{len(key) + 4}: {key}: must be at most 2147483647,"
                     " got 100000000000000000000000000"]


def test_range_overflow_through_the_cli(write_spec: Callable[..., Path], xq: CLI) -> None:
    spec = write_spec('[[jobs]]\ncmd = "echo {x}"\n'
                      "matrix = { x = { range = [0, 1000000000000000000000000000000] } }\n")
    assert_clean_spec_error(xq("validate", str(spec)), "spec.toml:3:26: jobs[0].matrix.x.range:")


def test_big_but_fitting_ranges_still_work() -> None:
    spec = spec_from_dict({"jobs": [{"cmd": "echo {x}", "matrix": {
        "x": {"range": [2**63 - 3, 2**63 - 1]}}}]})
    assert [job.cmd for job in render_all(spec)] == [f"echo {2**63 - 3}", f"echo {2**63 - 2}"]


# 5. NUL and control characters ---------------------------------------------------------


def test_nul_in_templates(here: Path) -> None:
    found = issues_of(r'''
        prescript = "a\u0000"
        [[jobs]]
        name = "a\u0000b"
        cmd = ["echo", "x\u0000"]
        env = { A = "x\u0000y" }
        postscript = "p\u0000"
    ''')
    nul = "holds a NUL character; a NUL cannot be passed to a job"
    assert found == [
        f"spec.toml:1:13: prescript: {nul}",
        "spec.toml:3:8: jobs[0].name: holds a NUL character; a job name must be one line"
        " of printable text without '/'",
        f"spec.toml:4:16: jobs[0].cmd[1]: {nul}",
        f"spec.toml:5:13: jobs[0].env.A: {nul}",
        f"spec.toml:6:14: jobs[0].postscript: {nul}",
    ]


@pytest.mark.parametrize("literal", ["a/b-{index}", r"a\nb-{index}", r"a\u001bb-{index}"])
def test_job_name_text_must_be_one_safe_line(here: Path, literal: str) -> None:
    found = issues_of(f'[[jobs]]\nname = "{literal}"\ncmd = "true"\n')
    assert len(found) == 1
    assert found[0].startswith("spec.toml:2:8: jobs[0].name: holds ")
    assert found[0].endswith("a job name must be one line of printable text without '/'")


def test_bad_values_are_reported_where_they_are_written(here: Path) -> None:
    Path("p.tsv").write_text("id\tdir\nx\tok\ny\ta/b\n")
    found = issues_of(r'''
        [[jobs]]
        name = "j-{s}-{id}-{dir}"
        cmd = ["echo", "{t}"]
        matrix = { s = ["ok", "tab\there"], t = ["1", "x\u0000"] }
        params_file = "p.tsv"

        [[jobs]]
        name = "k-{a}"
        cmd = "echo {b}"
        zip = { a = ["1", "2\n3"], b = ["u", "\u0000v"] }
    ''')
    name_rule = "and a job name must be one line of printable text without '/'"
    nul_rule = "and a NUL cannot be passed to a job"
    assert found == [
        "spec.toml:4:23: jobs[0].matrix.s[1]: value 'tab\\there' holds a control character"
        f" ('\\t'); it is put into jobs[0].name, {name_rule}",
        "spec.toml:4:47: jobs[0].matrix.t[1]: value 'x\\x00' holds a NUL character;"
        f" it is put into jobs[0].cmd[1], {nul_rule}",
        "spec.toml:5:15: jobs[0].params_file: row 3, column 'dir': value 'a/b' holds '/';"
        f" it is put into jobs[0].name, {name_rule}",
        "spec.toml:10:19: jobs[1].zip.a[1]: value '2\\n3' holds a line break;"
        f" it is put into jobs[1].name, {name_rule}",
        "spec.toml:10:38: jobs[1].zip.b[1]: value '\\x00v' holds a NUL character;"
        f" it is put into jobs[1].cmd, {nul_rule}",
    ]


def test_slash_in_values_outside_names_is_fine() -> None:
    spec = spec_from_dict({"jobs": [{"name": "n-{index}", "cmd": ["cat", "{f}"],
                                     "env": {"F": "{f}"}, "matrix": {"f": ["a/b", "c\nd"]}}]})
    assert [job.cmd for job in render_all(spec)] == [["cat", "a/b"], ["cat", "c\nd"]]


def test_nul_in_run_level_env_is_said_once(here: Path) -> None:
    found = issues_of('[env]\nA = "\\u0000"\n[[jobs]]\ncmd = "a"\n[[jobs]]\ncmd = "b"\n')
    assert found == ["spec.toml:2:5: env.A: holds a NUL character; a NUL cannot be passed"
                     " to a job"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [('workdir = "w\\u0000"', "spec.toml:1:11: workdir: holds a NUL character"),
     ('plugins = ["m\\u0000"]', "spec.toml:1:12: plugins[0]: holds a NUL character"),
     ('cwd = "\\u0000"', "spec.toml:1:7: cwd: holds a NUL character")],
)
def test_nul_in_run_paths(here: Path, line: str, expected: str) -> None:
    found = issues_of(f'{line}\n[[jobs]]\ncmd = "true"\n')
    assert len(found) == 1 and found[0].startswith(expected)


def test_nul_in_params_file_path(here: Path) -> None:
    found = issues_of('[[jobs]]\ncmd = "true"\nparams_file = "p\\u0000"\n')
    assert found == ["spec.toml:3:15: jobs[0].params_file: holds a NUL character, which no"
                     " path or argument can hold"]


# 6. environment names that would break the wrapper ---------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [("XQDECL_JOB_METADIR", "XQDECL_JOB_METADIR is set by xqdecl for every job"),
     ("_xq_m", "names starting with _xq_ are kept for xqdecl's wrapper script"),
     ("SHELLOPTS", "SHELLOPTS is read-only in bash")],
)
def test_reserved_env_names(here: Path, key: str, message: str) -> None:
    found = issues_of(f'[[jobs]]\ncmd = "true"\nenv = {{ {key} = "x" }}\n')
    assert len(found) == 1
    assert found[0].startswith(f"spec.toml:3:9: jobs[0].env.{key}: {message}")


# 7. working folders on the local backend ------------------------------------------------


def test_missing_run_cwd_is_said_once(here: Path) -> None:
    found = issues_of('cwd = "nope"\n[[jobs]]\ncmd = "a"\n[[jobs]]\ncmd = "b"\n')
    assert found == [f"spec.toml:1:7: cwd: the working folder does not exist: {here}/nope"]


def test_cwd_that_is_a_file(here: Path) -> None:
    Path("file").write_text("")
    found = issues_of('[[jobs]]\ncmd = "a"\ncwd = "file"\n')
    assert found == [f"spec.toml:3:7: jobs[0].cwd: the working folder is not a directory:"
                     f" {here}/file"]


def test_templated_cwd_names_the_missing_value(here: Path) -> None:
    for name in ("a", "c"):
        (here / "d" / name).mkdir(parents=True)
    Path("p.tsv").write_text("id\tsub\n1\ta\n2\ta\n3\tc\n4\tb\n")
    found = issues_of('''
        cwd = "d/{sub}"
        [[jobs]]
        cmd = "true"
        params_file = "p.tsv"
        matrix = { k = { range = [0, 1000] } }
    ''')
    assert found == [f"spec.toml:1:7: cwd: the working folder does not exist: {here}/d/b"
                     " (for sub='b' in jobs[0])"]


def test_cwd_by_index_and_existing_folders(here: Path) -> None:
    for i in range(3):
        (here / f"w{i}").mkdir()
    spec = spec_from_dict({"cwd": "w{index}", "jobs": [{"cmd": "x", "matrix": {"k": [1, 2, 3]}}]},
                          base_dir=here)
    assert [job.cwd for job in render_all(spec)] == [f"{here}/w{i}" for i in range(3)]
    with pytest.raises(SpecError, match=r"w3 \(for index='3' in jobs\[1\]\)"):
        spec_from_dict({"cwd": "w{index}", "jobs": [{"cmd": "x", "matrix": {"k": [1, 2, 3]}},
                                                    {"cmd": "y"}]}, base_dir=here)


def test_cwd_is_not_checked_for_other_backends(here: Path) -> None:
    spec = spec_from_dict({"cwd": "/no/such/folder", "scheduler": {"type": "slurm"},
                           "jobs": [{"cmd": "x"}]})
    assert spec.group_settings(0).cwd == "/no/such/folder"


def test_validate_refuses_missing_cwd(write_spec: Callable[..., Path], xq: CLI) -> None:
    spec = write_spec('[[jobs]]\ncmd = "true"\ncwd = "missing"\n')
    assert_clean_spec_error(xq("validate", str(spec)),
                            "spec.toml:3:7: jobs[0].cwd: the working folder does not exist")


# 8. the same class elsewhere --------------------------------------------------------------


def test_workdir_that_is_a_file(here: Path) -> None:
    Path("state").write_text("")
    found = issues_of('workdir = "state"\n[[jobs]]\ncmd = "true"\n')
    assert found == [f"spec.toml:1:11: workdir: the workdir {here}/state is not a directory"]


def test_status_and_logs_still_work_once_the_cwd_is_gone(tmp_path: Path) -> None:
    """The missing-cwd check is for running jobs: reading a finished run's state
    must not fail because its working folder was removed since."""
    import shutil

    work = tmp_path / "work"
    work.mkdir()
    spec = tmp_path / "spec.toml"
    spec.write_text('cwd = "work"\n[[jobs]]\ncmd = "echo hi"\n')

    def xq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xqdecl.cli", *args], text=True,
                              capture_output=True, timeout=120)

    assert xq("run", str(spec)).returncode == 0
    shutil.rmtree(work)
    assert xq("validate", str(spec)).returncode == 3  # running it now would fail: said so
    st = xq("status", str(spec), "--output", "json")
    assert st.returncode == 0, st.stderr
    logs = xq("logs", str(spec), "0")
    assert logs.returncode == 0 and logs.stdout == "hi\n", logs.stderr
