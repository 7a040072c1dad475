"""Finding plugins (spec, entry points), their errors, and runs that do not leak."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import xqdecl
from xqdecl import plugin
from xqdecl.engine import Reporter
from xqdecl.errors import SpecError
from xqdecl.plugin.hooks import NO_HOOKS, PluginHooks

Xq = Callable[..., tuple[int, str, str]]
MakeModule = Callable[[str, str], Path]

RECORDER = """
from pathlib import Path
from xqdecl import plugin

LOG = Path(__file__).with_suffix(".calls")

def _log(text):
    with open(LOG, "a") as fh:
        fh.write(text + "\\n")

@plugin.impl
def on_job_started(scheduler, job):
    _log(f"{__name__} started {job.index}")

@plugin.impl
async def on_job_succeeded(scheduler, job):
    _log(f"{__name__} succeeded {job.index}")
"""


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeModule]:
    """Write importable modules into tmp_path/mods; they are forgotten afterwards."""
    mods = tmp_path / "mods"
    mods.mkdir()
    monkeypatch.syspath_prepend(str(mods))
    made: list[str] = []

    def make(name: str, text: str) -> Path:
        path = mods / f"{name}.py"
        path.write_text(textwrap.dedent(text).lstrip())
        made.append(name)
        return path

    yield make
    for name in made:
        sys.modules.pop(name, None)


class Collect(Reporter):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def spec_file(tmp_path: Path, plugins: list[str], n: int = 2, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    listed = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f"plugins = [{listed}]\n[[jobs]]\nname = \"j{{n}}\"\ncmd = [\"true\"]\n"
                    f"matrix = {{ n = {{ range = [0, {n}] }} }}\n")
    return path


def calls(path: Path) -> list[str]:
    log = path.with_suffix(".calls")
    return log.read_text().splitlines() if log.exists() else []


def registry_state() -> list[tuple[str, bool]]:
    return [(n, w.enabled) for n, w in plugin.simplug.get_all_plugins().items()]


# -- import and spec errors -----------------------------------------------------------------
def test_xqdecl_plugin_impl_is_reachable_from_the_package() -> None:
    code = ("import xqdecl; assert callable(xqdecl.plugin.impl); "
            "from xqdecl import plugin; print(plugin.ENTRY_POINT_GROUP)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "xqdecl"


def test_unimportable_plugin_is_a_spec_error_with_its_line(xq: Xq, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "x"\nplugins = ["os", "no_such_xq_plugin.sub"]\n'
                    '[[jobs]]\nname = "a"\ncmd = ["true"]\n')
    code, _, err = xq("run", str(spec))
    assert code == 3
    assert f"{spec}:2:18: plugins[1]: cannot import the plugin module" in err
    assert "'no_such_xq_plugin'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("import no_such_dependency_xq\n", "No module named 'no_such_dependency_xq'"),
        ("1 / 0\n", "ZeroDivisionError"),
        ("from xqdecl import plugin\n@plugin.impl\ndef on_job_start(scheduler, job): pass\n",
         "did you mean 'on_job_started'?"),
        ("from xqdecl import plugin\n@plugin.impl\ndef on_job_started(sched, job): pass\n",
         "hook signature differs from the spec"),
        ("from xqdecl import plugin\n@plugin.impl\nasync def on_jobcmd_init(scheduler, job):"
         "\n    return 'echo'\n", "on_jobcmd_* hooks return their snippet directly"),
    ],
)
def test_a_broken_plugin_module_is_named(make_module: MakeModule, tmp_path: Path,
                                         text: str, expected: str) -> None:
    make_module("broken_xq_plugin", text)
    spec = spec_file(tmp_path, ["broken_xq_plugin"])
    before = registry_state()
    with pytest.raises(SpecError) as err:
        xqdecl.run(spec)
    message = str(err.value)
    assert f"{spec}:1:" in message and "plugins[0]" in message
    assert "broken_xq_plugin" in message and expected in message
    assert registry_state() == before


def test_a_plugin_beside_the_spec_is_found(tmp_path: Path) -> None:
    (tmp_path / "beside_xq_plugin.py").write_text(RECORDER)
    spec = spec_file(tmp_path, ["beside_xq_plugin"], n=1)
    try:
        assert xqdecl.run(spec).ok
    finally:
        sys.modules.pop("beside_xq_plugin", None)
    assert str(tmp_path) not in sys.path
    assert calls(tmp_path / "beside_xq_plugin.py") == [
        "beside_xq_plugin started 0", "beside_xq_plugin succeeded 0"]


# -- a plugin that raises ----------------------------------------------------------------------
BOOM = """
from xqdecl import plugin

@plugin.impl
def on_job_submitting(scheduler, job):
    raise RuntimeError("veto machinery broke")

@plugin.impl
def on_job_started(scheduler, job):
    raise ZeroDivisionError("division by zero")

@plugin.impl
async def on_job_succeeded(scheduler, job):
    raise KeyError("missing")

@plugin.impl
def on_jobcmd_init(scheduler, job):
    raise ValueError("no snippet today")

@plugin.impl
def on_jobcmd_end(scheduler, job):
    return 42
"""


def test_a_raising_plugin_is_reported_by_name_and_the_run_goes_on(
        make_module: MakeModule, tmp_path: Path) -> None:
    make_module("boom_xq_plugin", BOOM)
    rec = make_module("rec_xq_plugin", RECORDER)
    spec = spec_file(tmp_path, ["boom_xq_plugin", "rec_xq_plugin"], n=3)
    reporter = Collect()
    result = xqdecl.run(spec, reporter=reporter)
    assert result.ok and result.counts == {"succeeded": 3}  # submitting raised: no objection
    # the plugin after the raising one still got every call
    assert sorted(calls(rec)) == sorted(
        [f"rec_xq_plugin started {i}" for i in range(3)]
        + [f"rec_xq_plugin succeeded {i}" for i in range(3)])
    warned = [m for m in reporter.messages if "'boom_xq_plugin'" in m]
    text = "\n".join(warned)
    for hook, what in [("on_job_submitting", "raised RuntimeError: veto machinery broke"),
                       ("on_job_started", "raised ZeroDivisionError: division by zero"),
                       ("on_job_succeeded", "raised KeyError: 'missing'"),
                       ("on_jobcmd_init", "raised ValueError: no snippet today"),
                       ("on_jobcmd_end", "returned int, not a string")]:
        # the first failure is named in full, for whichever job reached the hook first
        assert re.search(rf"hook {hook} for job (\d) \(j\1\) {re.escape(what)}", text), text
        assert f"hook {hook} failed 3 times in this run" in text
    assert "boom_xq_plugin.py:" in text  # where in the plugin it raised
    # neither hook gave a snippet (a raise, a number): the job needed no wrapper, and
    # the executor ran it directly, so no job.sh was written for it
    assert not (Path(result.rundir) / "jobs" / "0" / "job.sh").exists()


def test_a_raising_plugin_through_the_cli_exits_normally(xq: Xq, make_module: MakeModule,
                                                         tmp_path: Path) -> None:
    make_module("boom_xq_plugin", BOOM)
    spec = spec_file(tmp_path, ["boom_xq_plugin"], n=1)
    code, _, err = xq("run", str(spec), env={"PYTHONPATH": str(tmp_path / "mods")})
    assert code == 0, err
    assert "plugin 'boom_xq_plugin': hook on_job_started for job 0 (j0) raised" in err
    assert "Traceback" not in err


# -- entry points ---------------------------------------------------------------------------------
def make_dist(root: Path, entry_points: str) -> None:
    dist = root / "xq_ep_demo-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xq-ep-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())


EP_PLUGIN = RECORDER + '''

class Counter:
    """An object plugin: its hooks take `self`."""
    name = "counter"

    def __init__(self):
        self.seen = []

    @plugin.impl
    def on_job_queued(self, scheduler, job):
        self.seen.append(job.index)

COUNTER = Counter()
'''


def test_entry_point_plugins_are_loaded_and_can_be_left_out(
        make_module: MakeModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = make_module("ep_xq_plugin", EP_PLUGIN)
    make_dist(tmp_path / "mods", """
        [xqdecl]
        rec = ep_xq_plugin
        counter = ep_xq_plugin:COUNTER
    """)
    spec = spec_file(tmp_path, [], n=2)
    assert xqdecl.run(spec).ok
    assert sorted(calls(mod)) == ["ep_xq_plugin started 0", "ep_xq_plugin started 1",
                                  "ep_xq_plugin succeeded 0", "ep_xq_plugin succeeded 1"]
    counter = sys.modules["ep_xq_plugin"].COUNTER
    assert counter.seen == [0, 1]
    # listed in the spec as well: still one plugin, called once per hook
    mod.with_suffix(".calls").unlink()
    spec = spec_file(tmp_path, ["ep_xq_plugin"], n=1, name="again.toml")
    assert xqdecl.run(spec).ok
    assert calls(mod) == ["ep_xq_plugin started 0", "ep_xq_plugin succeeded 0"]
    # "-name" leaves an installed plugin out of this run
    mod.with_suffix(".calls").unlink()
    spec = spec_file(tmp_path, ["-rec", "-counter"], n=1, name="without.toml")
    hooks = plugin.hooks_for(["-rec", "-counter"])
    assert hooks is NO_HOOKS
    assert xqdecl.run(spec).ok
    assert calls(mod) == [] and counter.seen == [0, 1, 0]  # only the "again" run


def test_a_broken_entry_point_is_named(make_module: MakeModule, tmp_path: Path) -> None:
    make_dist(tmp_path / "mods", "[xqdecl]\nghost = no_such_xq_ep_module\n")
    with pytest.raises(SpecError) as err:
        plugin.hooks_for([])
    message = str(err.value)
    assert "'ghost'" in message and "no_such_xq_ep_module" in message
    assert 'plugins = ["-ghost"]' in message
    assert plugin.hooks_for(["-ghost"]) is NO_HOOKS


# -- runs in one process do not leak into each other ---------------------------------------------
def test_two_runs_in_one_process_see_only_their_plugins(make_module: MakeModule,
                                                        tmp_path: Path) -> None:
    a = make_module("leak_a_xq", RECORDER)
    b = make_module("leak_b_xq", RECORDER)
    before = registry_state()
    assert xqdecl.run(spec_file(tmp_path, ["leak_a_xq"], n=1, name="a.toml")).ok
    assert registry_state() == before
    assert xqdecl.run(spec_file(tmp_path, ["leak_b_xq"], n=1, name="b.toml")).ok
    assert registry_state() == before
    assert xqdecl.run(spec_file(tmp_path, [], n=1, name="none.toml")).ok
    assert calls(a) == ["leak_a_xq started 0", "leak_a_xq succeeded 0"]
    assert calls(b) == ["leak_b_xq started 0", "leak_b_xq succeeded 0"]
    # a plugin someone registered in the process by hand is not part of any run
    plugin.simplug.register(sys.modules["leak_a_xq"])
    try:
        hooks = plugin.hooks_for(["leak_b_xq"])
        assert isinstance(hooks, PluginHooks) and hooks.plugins == ("leak_b_xq",)
        assert plugin.simplug.get_enabled_plugin_names() == ["leak_a_xq"]
    finally:
        plugin.simplug.hooks._registry.pop("leak_a_xq")


def test_active_names_exactly_the_implemented_hooks(make_module: MakeModule) -> None:
    make_module("only_failed_xq", """
        from xqdecl import plugin

        @plugin.impl
        def on_job_failed(scheduler, job):
            pass
    """)
    hooks = plugin.hooks_for(["only_failed_xq"])
    assert hooks.active == frozenset({"on_job_failed"})
    hooks.close()
    assert hooks.active == frozenset()
    assert plugin.hooks_for([]).active == frozenset()


def test_a_run_without_plugins_raises_no_hooks(tmp_path: Path) -> None:
    from xqdecl.engine import Runner

    runner = Runner(xqdecl.load_spec(spec_file(tmp_path, [], n=1)))
    assert runner.hooks is NO_HOOKS and not runner.fx.active


def test_the_job_view_carries_what_the_contract_lists(make_module: MakeModule,
                                                      tmp_path: Path) -> None:
    make_module("view_xq_plugin", """
        from xqdecl import plugin

        SEEN = []

        @plugin.impl
        def on_job_succeeded(scheduler, job):
            SEEN.append((scheduler.name, job.index, job.name, job.cmd, job.metadir,
                         job.status, job.rc, job.trial, bool(job.jid), job.group))
    """)
    spec = tmp_path / "spec.toml"
    spec.write_text('plugins = ["view_xq_plugin"]\n[[jobs]]\nname = "v-{x}"\n'
                    'cmd = ["echo", "{x}"]\nmatrix = { x = ["a b"] }\n'
                    '[[jobs]]\nname = "s"\ncmd = "echo {index}"\n')
    result = xqdecl.run(spec)
    assert result.ok
    seen = sorted(sys.modules["view_xq_plugin"].SEEN)
    rundir = Path(result.rundir)
    assert seen == [
        ("local", 0, "v-a b", ["echo", "a b"], rundir / "jobs" / "0", "succeeded", 0, 0, True, 0),
        ("local", 1, "s", "echo 1", rundir / "jobs" / "1", "succeeded", 0, 0, True, 1),
    ]


def test_a_plugin_raising_while_the_run_stops_leaves_no_job_behind(
        make_module: MakeModule, tmp_path: Path) -> None:
    import asyncio
    import time

    from xqdecl.engine import Runner

    make_module("stop_boom_xq", """
        from xqdecl import plugin

        @plugin.impl
        def on_init(runner):
            raise RuntimeError("init")

        @plugin.impl
        async def on_job_polling(scheduler, job, counter):
            raise RuntimeError("poll")

        @plugin.impl
        def on_job_killing(scheduler, job):
            raise RuntimeError("kill")

        @plugin.impl
        async def on_shutdown(runner, sig):
            raise RuntimeError("shutdown")
    """)
    spec = tmp_path / "spec.toml"
    spec.write_text('plugins = ["stop_boom_xq"]\n[[jobs]]\nname = "s"\n'
                    'cmd = "sleep 3; touch done"\n')
    reporter = Collect()

    async def scenario() -> xqdecl.RunResult:
        runner = Runner(xqdecl.load_spec(spec), reporter=reporter, poll_interval=0.1)
        task = asyncio.ensure_future(runner.run())
        deadline = time.monotonic() + 20
        while runner.polls < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        runner.request_stop()
        return await task

    result = asyncio.run(scenario())
    assert result.exit_code == 130 and result.counts == {"cancelled": 1}
    text = "\n".join(reporter.messages)
    for hook in ("on_init", "on_job_polling", "on_job_killing", "on_shutdown"):
        assert f"plugin 'stop_boom_xq': hook {hook}" in text, text
    time.sleep(4)
    assert not (tmp_path / "done").exists()  # an exception in on_job_killing: killed
    assert xqdecl.run(spec).ok  # the lock was released; the cancelled job runs again
