"""What the run hooks see (`RunInfo`, its deprecated runner attributes) and the one
table every hook name comes from."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import xqdecl
from xqdecl import plugin
from xqdecl.plugin import hooks
from xqdecl.plugin.hooks import RunInfo, run_info

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"

SPY = """
import warnings
from xqdecl import plugin

SEEN = {}

@plugin.impl
def on_init(runner):
    SEEN["init"] = (type(runner).__name__, runner.name, runner.rundir, runner.spec.name,
                    dict(runner.counts))
    SEEN["runner"] = runner
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SEEN["rd"] = (runner.rd.root, runner.rd.root)  # read twice: one warning
        SEEN["spec"] = runner.spec  # not deprecated
    SEEN["warnings"] = [(w.category, str(w.message)) for w in caught]

@plugin.impl
async def on_shutdown(runner, sig):
    SEEN["shutdown"] = (runner is SEEN["runner"], sig, dict(runner.counts))
"""


@pytest.fixture
def spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "runinfo_spy_xq.py").write_text(textwrap.dedent(SPY).lstrip())
    monkeypatch.syspath_prepend(str(mods))
    yield
    sys.modules.pop("runinfo_spy_xq", None)


def test_run_hooks_get_a_run_info_whose_counts_are_live(spy: object, tmp_path: Path) -> None:
    spec = tmp_path / "info.toml"
    spec.write_text('name = "info"\nplugins = ["runinfo_spy_xq"]\n'
                    '[[jobs]]\nname = "j{n}"\ncmd = ["true"]\nmatrix = { n = [1, 2, 3] }\n')
    result = xqdecl.run(spec)
    assert result.ok
    seen = sys.modules["runinfo_spy_xq"].SEEN  # type: ignore[attr-defined]
    rundir = Path(result.rundir)
    kind, name, where, spec_name, counts = seen["init"]
    assert (kind, name, where, spec_name) == ("RunInfo", "info", rundir, "info")
    assert counts.get("succeeded", 0) == 0  # on_init comes before any job ran
    same, sig, final = seen["shutdown"]
    assert same and sig is None
    assert final["succeeded"] == 3  # the same object, its counts followed the run
    assert seen["rd"] == (rundir, rundir)
    assert [c for c, _ in seen["warnings"]] == [DeprecationWarning]
    assert "runner.rd is deprecated" in seen["warnings"][0][1]
    assert "runner.rundir" in seen["warnings"][0][1]


def test_a_run_info_is_read_only(tmp_path: Path) -> None:
    spec = xqdecl.load_spec(_spec(tmp_path))
    counts = {"queued": 2, "succeeded": 0}
    info = run_info(spec, tmp_path, counts)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        info.counts["queued"] = 5  # type: ignore[index]
    counts["succeeded"] = 2
    assert info.counts["succeeded"] == 2 and info.rundir == tmp_path and info.name == "ri"


def test_old_runner_attributes_warn_once_and_come_from_the_runner(tmp_path: Path) -> None:
    class OldRunner:
        rows = ["row0"]
        polls = 7

    info = run_info(xqdecl.load_spec(_spec(tmp_path)), tmp_path, {}, source=OldRunner())
    with pytest.warns(DeprecationWarning, match=r"runner\.rows is deprecated"):
        assert info.rows == ["row0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert info.rows == ["row0"]  # said once
    with pytest.warns(DeprecationWarning, match="counter"):
        assert info.polls == 7
    with pytest.warns(DeprecationWarning), pytest.raises(AttributeError, match=r"spec\.forks"):
        _ = info.forks  # deprecated, and this runner does not have it
    with pytest.raises(AttributeError, match="name, rundir, spec and counts"):
        _ = info.queue  # never part of what plugins were promised


def test_rd_without_a_runner_is_the_run_directory(tmp_path: Path) -> None:
    info = run_info(xqdecl.load_spec(_spec(tmp_path)), tmp_path / "run", {})
    with pytest.warns(DeprecationWarning):
        assert info.rd.root == tmp_path / "run"


def test_every_hook_name_comes_from_one_table() -> None:
    specs = {s.name: s for s in hooks.SPECS}
    assert plugin.HOOKS == hooks.HOOKS == tuple(specs)
    declared = plugin.simplug.hooks._specs  # what simplug checks implementations against
    assert set(declared) == set(specs)
    for name, hook in declared.items():
        assert tuple(inspect.signature(hook.spec).parameters) == specs[name].params
        assert inspect.iscoroutinefunction(hook.spec) is not specs[name].snippet
    assert set(hooks.STATUS_HOOKS.values()) <= set(specs)
    assert {"on_jobcmd_init", "on_jobcmd_prep", "on_jobcmd_end"} == hooks.JOBCMD_HOOKS
    assert {"on_init", "on_shutdown"} == hooks.RUN_HOOKS


def test_the_guide_lists_exactly_the_hooks() -> None:
    text = DOCS.read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(on_\w+)\((.*?)\)`", text, re.M)
    assert [name for name, _ in listed] != []
    assert {name: tuple(p.strip() for p in params.split(",")) for name, params in listed} == {
        s.name: s.params for s in hooks.SPECS}


def test_a_run_info_is_what_plugins_import() -> None:
    assert plugin.RunInfo is RunInfo
    assert {"name", "rundir", "spec", "counts"} <= {f.name for f in dataclasses.fields(RunInfo)}


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "ri.toml"
    path.write_text('[[jobs]]\nname = "a"\ncmd = ["true"]\n')
    return path
