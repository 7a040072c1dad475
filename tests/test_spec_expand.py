"""Expansion: job order and indexes, zip, params files, counts, rendering, large ranges."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path
from typing import Any

import pytest

from xqdecl.errors import SpecError
from xqdecl.spec import (
    ExpandedJob,
    Template,
    count_jobs,
    expand,
    group_counts,
    job_at,
    render_all,
    render_job,
    spec_from_dict,
)
from xqdecl.spec import params as params_module
from xqdecl.spec.params import GroupParams, RangeAxis, ValuesAxis

DATA = Path(__file__).parent / "data" / "specs"


def params(spec: Any, group: int | None = None) -> list[dict[str, str]]:
    return [job.params for job in expand(spec, group)]


def test_no_parameters_is_one_job() -> None:
    spec = spec_from_dict({"jobs": [{"cmd": "a"}, {"cmd": "b"}]})
    assert list(expand(spec)) == [ExpandedJob(0, 0, {}), ExpandedJob(1, 1, {})]
    assert count_jobs(spec) == 2


def test_matrix_order_last_key_fastest_and_global_indexes() -> None:
    spec = spec_from_dict({"jobs": [
        {"cmd": "a", "matrix": {"x": [1, 2], "y": ["a", "b", "c"]}},
        {"cmd": "b", "matrix": {"n": {"range": [10, 4, -3]}}},
    ]})
    jobs = list(expand(spec))
    assert [job.index for job in jobs] == list(range(8))
    assert [job.group for job in jobs] == [0] * 6 + [1] * 2
    assert [tuple(job.params.values()) for job in jobs[:6]] == list(
        itertools.product(["1", "2"], ["a", "b", "c"]))
    assert params(spec, 1) == [{"n": "10"}, {"n": "7"}]
    assert [job.index for job in expand(spec, 1)] == [6, 7]
    assert (count_jobs(spec), count_jobs(spec, 0), count_jobs(spec, 1)) == (8, 6, 2)
    assert group_counts(spec) == spec.group_counts() == [6, 2]
    assert spec.total_jobs() == 8


def test_matrix_zip_and_rows_are_crossed_in_that_order() -> None:
    spec = spec_from_dict({"jobs": [{
        "cmd": "x",
        "matrix": {"m": ["M1", "M2"]},
        "zip": {"a": [1, 2], "b": ["x", "y"]},
        "params_file": "rows.tsv",
    }]}, base_dir=DATA)
    assert params(spec) == [
        {"m": m, "a": a, "b": b, "id": "t1", "path": "/d/t1"}
        for m in ("M1", "M2") for a, b in (("1", "x"), ("2", "y"))
    ]
    assert count_jobs(spec) == 4


def test_params_file_csv_and_tsv() -> None:
    spec = spec_from_dict({"jobs": [
        {"name": "c{id}", "cmd": "x", "params_file": "rows.csv"},
        {"name": "t{id}", "cmd": "x", "params_file": "rows.tsv"},
    ]}, base_dir=DATA)
    assert params(spec) == [
        {"id": "s1", "path": "/data/s 1.fq"},
        {"id": "s2", "path": "/data/s,2.fq"},
        {"id": "t1", "path": "/d/t1"},
    ]
    assert spec.jobs[0].params_file == str(DATA / "rows.csv")


def test_params_file_txt_is_tab_separated(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a\tb\n1,2\t3\n\n")
    spec = spec_from_dict({"jobs": [{"cmd": "x", "params_file": "p.txt"}]}, base_dir=tmp_path)
    assert params(spec) == [{"a": "1,2", "b": "3"}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "params file is empty (no header row)"),
        ("a,b\n", "params file has no rows"),
        ("a,a\n1,2\n", "parameter 'a' is also defined in params_file"),
        ("my col\n1\n", "column 'my col' is not a valid parameter name"),
        ("index\n1\n", "'index' is reserved"),
    ],
)
def test_params_file_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "p.csv").write_text(content)
    with pytest.raises(SpecError) as caught:
        spec_from_dict({"jobs": [{"cmd": "x", "params_file": "p.csv"}]}, base_dir=tmp_path)
    assert message in caught.value.issues[0]
    assert caught.value.issues[0].startswith("<dict>: jobs[0].params_file: ")


def test_zip_length_mismatch() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_dict({"jobs": [{"cmd": "x", "zip": {"a": [1, 2, 3], "b": [1], "c": [1, 2]}}]})
    assert caught.value.issues == [
        "<dict>: jobs[0].zip.b: has 1 values but 'a' has 3; zipped lists must have the same"
        " length",
        "<dict>: jobs[0].zip.c: has 2 values but 'a' has 3; zipped lists must have the same"
        " length",
    ]


def test_empty_axes_are_errors() -> None:
    for matrix in ({"a": []}, {"a": {"range": [5, 5]}}, {"a": {"range": [0, 5, -1]}}):
        with pytest.raises(SpecError, match="the group would have no jobs"):
            spec_from_dict({"jobs": [{"cmd": "x", "matrix": matrix}]})


def test_job_at_matches_expand() -> None:
    spec = spec_from_dict({"jobs": [
        {"cmd": "a", "matrix": {"x": [1, 2, 3], "r": {"range": [0, 7, 3]}},
         "zip": {"p": [1, 2], "q": [3, 4]}},
        {"cmd": "b"},
        {"cmd": "c", "matrix": {"y": ["u", "v"]}},
    ]})
    jobs = list(expand(spec))
    assert [job_at(spec, i) for i in range(len(jobs))] == jobs
    for bad in (-1, len(jobs)):
        with pytest.raises(IndexError):
            job_at(spec, bad)


def test_render_job_fills_every_template(tmp_path: Path) -> None:
    spec = spec_from_dict({
        "prescript": "cd {dir}",
        "postscript": "echo {index}",
        "env": {"RUN": "r-{index}"},
        "cwd": "work/{dir}",
        "scheduler": {"type": "slurm"},  # not local: its folders need not exist here
        "jobs": [
            {"name": "n-{dir}", "cmd": "ls {dir} > {dir}.txt", "env": {"D": "{dir}"},
             "matrix": {"dir": ["a b", "$(rm -rf ~)", "{x}"]}},
            {"name": "argv-{v}", "cmd": ["printf", "%s", "{v}", "{{v}}"],
             "matrix": {"v": ["it's", "{index}"]}, "prescript": "", "cwd": "/w"},
        ],
    }, base_dir=tmp_path)
    first, second, third, fourth, fifth = render_all(spec)
    assert first.name == "n-a b"
    assert first.cmd == "ls 'a b' > 'a b'.txt"
    assert second.cmd == f"ls {shlex.quote('$(rm -rf ~)')} > {shlex.quote('$(rm -rf ~)')}.txt"
    assert third.name == "n-{x}" and third.cmd == "ls '{x}' > '{x}'.txt"  # substituted once
    assert first.prescript == "cd 'a b'" and first.postscript == "echo 0"
    assert first.env == {"RUN": "r-0", "D": "a b"}
    assert first.cwd == f"{tmp_path}/work/a b"
    assert fourth.cmd == ["printf", "%s", "it's", "{v}"]
    assert fifth.cmd == ["printf", "%s", "{index}", "{v}"] and fifth.name == "argv-{index}"
    assert (fourth.prescript, fourth.postscript, fourth.cwd) == ("", "echo 3", "/w")
    assert fourth.env == {"RUN": "r-3"}
    assert render_job(spec, job_at(spec, 4)) == fifth


def test_literal_braces_in_the_spec_folder_are_not_placeholders(tmp_path: Path) -> None:
    folder = tmp_path / "{odd}"
    (folder / "a").mkdir(parents=True)
    spec = spec_from_dict({"jobs": [{"cmd": "x", "cwd": "{d}", "matrix": {"d": ["a"]}}]},
                          base_dir=folder)
    assert render_job(spec, job_at(spec, 0)).cwd == f"{folder}/a"


def test_template_usable_on_its_own() -> None:
    template = Template("{a}-{{b}}-{a}{c}", "jobs[2].cmd[1]")
    assert template.names == ("a", "c")
    assert template.loc == ("jobs", 2, "cmd", 1)
    assert template.render({"a": "1", "c": "x y"}) == "1-{b}-1x y"
    assert template.render({"a": "1", "c": "x y"}, quote=True) == "1-{b}-1'x y'"


def test_large_range_expands_and_names_are_checked() -> None:
    spec = spec_from_dict({"jobs": [
        {"name": "sweep-{seed}-{lr}", "cmd": "train --seed {seed} --lr {lr}",
         "matrix": {"seed": {"range": [0, 50_000]}, "lr": [0.1, 0.01]}},
    ]})
    assert count_jobs(spec) == 100_000
    last = None
    for last in expand(spec):  # noqa: B007 - walking the generator is the test
        pass
    assert last == ExpandedJob(99_999, 0, {"seed": "49999", "lr": "0.01"})
    with pytest.raises(SpecError, match=r"'same' is used by 100000 jobs \(0, 1, 2, \.\.\.\)"):
        spec_from_dict({"jobs": [{"name": "same", "cmd": "x",
                                  "matrix": {"n": {"range": [0, 100_000]}}}]})


def test_huge_range_costs_no_memory_up_front() -> None:
    axes = GroupParams(("i", "s", "t"), (RangeAxis(range(10**12)),
                                         ValuesAxis([("a", "A"), ("b", "B")], width=2)))
    assert axes.count == 2 * 10**12
    assert next(axes.combos()) == ("0", ("a", "A"))
    assert next(axes.dicts()) == {"i": "0", "s": "a", "t": "A"}
    assert next(axes.indexed_dicts(5)) == {"i": "0", "s": "a", "t": "A", "index": "5"}
    assert axes.at(2 * 10**12 - 1) == {"i": str(10**12 - 1), "s": "b", "t": "B"}


def test_lazy_walk_and_product_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    axes = GroupParams(("a", "b", "c", "d"), (
        ValuesAxis(["x", "y"]), RangeAxis(range(3)), ValuesAxis([("1", "2"), ("3", "4")], 2)))
    eager = list(axes.dicts())
    monkeypatch.setattr(params_module, "EAGER_AXES", 0)
    assert list(axes.dicts()) == eager
    assert [axes.at(i) for i in range(axes.count)] == eager
    assert eager[:3] == [{"a": "x", "b": "0", "c": "1", "d": "2"},
                         {"a": "x", "b": "0", "c": "3", "d": "4"},
                         {"a": "x", "b": "1", "c": "1", "d": "2"}]


def test_too_many_jobs() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_dict({"jobs": [{"cmd": "x"}, {"cmd": "x {i} {j}", "matrix": {
            "i": {"range": [0, 10**6]}, "j": {"range": [0, 10**6]}}}]})
    assert caught.value.issues == [
        "<dict>: jobs[1]: the run would have 1,000,000,000,001 jobs; at most 10,000,000"
        " are supported"
    ]


def test_tsv_values_are_verbatim(tmp_path: Path) -> None:
    (tmp_path / "p.tsv").write_text('v\tw\n" ; x ; "\t\'a\'\n"q"\t\n')
    spec = spec_from_dict({"jobs": [{"cmd": "x", "params_file": "p.tsv"}]}, base_dir=tmp_path)
    assert params(spec) == [{"v": '" ; x ; "', "w": "'a'"}, {"v": '"q"', "w": ""}]
