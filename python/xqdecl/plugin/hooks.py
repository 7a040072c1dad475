"""The runner's side of plugin hooks: the hook table, what hooks see, dispatch.

`SPECS` names every hook once, with its parameters, its meaning and what
raises it; `xqdecl.plugin` declares the simplug specs from it, and the runner
reads `STATUS_HOOKS` / `JOBCMD_HOOKS` off it. Hooks see a `JobView` of a job,
or, for `on_init`/`on_shutdown`, a `RunInfo` of the run (made by `run_info`).

The runner asks `hooks.active` (the hook names some plugin implements) before
doing anything for a hook, so a run without plugins pays nothing per job or
per poll. Notifications raised while a cycle processes changes are queued and
dispatched once per cycle, in order; the two hooks whose answer matters
(`on_job_submitting`, `on_job_killing`) are awaited where they are asked.

`PluginHooks` is the dispatcher of one run: a table, built once when the run
starts (see `xqdecl.plugin.hooks_for`), of the functions each hook calls. A
plugin that raises is reported by name and its answer is dropped; the run goes
on. Nothing here is shared between runs.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xqdecl.spec import Spec


@dataclass(frozen=True)
class HookSpec:
    """One hook: its name and parameters (an implementation must use the same
    names), what it means, and how the runner raises it."""

    name: str
    params: tuple[str, ...]
    doc: str
    #: the job status whose arrival raises it (a notification of a job's progress)
    status: str | None = None
    #: it returns shell code for the wrapper, so it is sync (the others may be async)
    snippet: bool = False


_JOB = ("scheduler", "job")

#: every hook, in the order a run meets them
SPECS: tuple[HookSpec, ...] = (
    HookSpec("on_init", ("runner",),
             "The run starts, before any wrapper is rendered or job submitted; "
             "`runner` is the run's RunInfo."),
    HookSpec("on_shutdown", ("runner", "sig"),
             "The run ends; `sig` is the signal name that stopped it (\"SIGINT\", ...) or None."),
    HookSpec("on_job_init", _JOB,
             "Once per job of the run, when the run starts (also for jobs it will skip)."),
    HookSpec("on_job_queued", _JOB,
             "The job waits for a free slot (at the start, and again before each retry).",
             status="queued"),
    HookSpec("on_job_submitting", _JOB,
             "The job is about to be submitted; return False to skip it."),
    HookSpec("on_job_submitted", _JOB, "The scheduler accepted the job (`job.jid` is set).",
             status="submitted"),
    HookSpec("on_job_started", _JOB, "The job started; always raised before its terminal hook.",
             status="running"),
    HookSpec("on_job_polling", ("scheduler", "job", "counter"),
             "Once per poll cycle for each job in flight; `counter` numbers the cycles."),
    HookSpec("on_job_killing", _JOB,
             "The job is about to be cancelled; return False to keep it running."),
    HookSpec("on_job_killed", _JOB, "The job was cancelled.", status="cancelled"),
    HookSpec("on_job_failed", _JOB,
             "A trial of the job failed (also one that will be retried: `job.trial` says which).",
             status="failed"),
    HookSpec("on_job_succeeded", _JOB, "The job succeeded.", status="succeeded"),
    HookSpec("on_jobcmd_init", _JOB,
             "Shell code run in the wrapper after the job's env is exported.", snippet=True),
    HookSpec("on_jobcmd_prep", _JOB,
             "Shell code run right before the command (after the prescript).", snippet=True),
    HookSpec("on_jobcmd_end", _JOB,
             "Shell code run after the command, before its rc is recorded ($XQDECL_JOB_RC).",
             snippet=True),
)
#: every hook name
HOOKS: tuple[str, ...] = tuple(s.name for s in SPECS)
#: which hook a job's new status raises
STATUS_HOOKS: dict[str, str] = {s.status: s.name for s in SPECS if s.status is not None}
#: the hooks that give shell snippets for the wrapper
JOBCMD_HOOKS: frozenset[str] = frozenset(s.name for s in SPECS if s.snippet)
#: the hooks whose first argument is the run's RunInfo
RUN_HOOKS: frozenset[str] = frozenset(s.name for s in SPECS if s.params[0] == "runner")


class JobView:
    """What a hook sees of a job (a snapshot taken when the hook was raised).

    Made with `detail` (a function of the index giving `(cmd, metadir)`), the
    command and metadir are worked out only when a hook reads them: most hooks
    never do, and rendering a command again is the dearest part of a view.
    """

    __slots__ = ("_cmd", "_detail", "_metadir", "group", "index", "jid", "name", "rc",
                 "status", "trial")

    def __init__(self, index: int, name: str, cmd: str | list[str] | None = None,
                 metadir: Path | None = None, status: str = "queued", rc: int | None = None,
                 trial: int = 0, jid: str | None = None, group: int = 0, *,
                 detail: Callable[[int], tuple[str | list[str], Path]] | None = None):
        self.index, self.name, self.status, self.rc = index, name, status, rc
        self.trial, self.jid, self.group = trial, jid, group
        self._cmd, self._metadir, self._detail = cmd, metadir, detail

    def _load(self) -> None:
        if self._detail is not None:
            self._cmd, self._metadir = self._detail(self.index)
            self._detail = None

    @property
    def cmd(self) -> str | list[str]:
        """The command: an argv list, or a string run by bash (placeholders filled)."""
        if self._cmd is None:
            self._load()
        return self._cmd  # type: ignore[return-value]

    @property
    def metadir(self) -> Path:
        """`<rundir>/jobs/<index>`, as the runner sees it."""
        if self._metadir is None:
            self._load()
        return self._metadir  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"JobView(index={self.index}, name={self.name!r}, status={self.status!r}, "
                f"rc={self.rc}, trial={self.trial}, jid={self.jid!r})")


#: the runner's attributes plugins read before RunInfo, kept for a while (each
#: read warns once, DeprecationWarning): what to use instead
DEPRECATED: dict[str, str] = {
    "rd": "use `runner.rundir` (the run directory; `runner.rd.root` is the same path)",
    "rows": "use `runner.counts`, or the job hooks, which get each job as it changes",
    "backend": "the job hooks get the backend as their `scheduler` argument",
    "plan": "the job hooks get each job's command and metadir on `job`",
    "polls": "`on_job_polling` gets the cycle number as its `counter` argument",
    "forks": "use `runner.spec.forks`",
    "fresh": "there is no replacement",
    "retried": "there is no replacement",
}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What `on_init(runner)` and `on_shutdown(runner, sig)` see of the run.

    `counts` maps each job status to how many jobs have it; it is live (it
    follows the run) and read-only. The runner's old attributes that plugins
    used (`DEPRECATED`) still answer, with a DeprecationWarning the first time.
    """

    #: the run's name (the spec's `name`)
    name: str
    #: the run directory, `<workdir>/<name>` (a local staging folder for a cloud workdir)
    rundir: Path
    #: the run's validated spec
    spec: Spec
    counts: Mapping[str, int]
    _source: Any = field(default=None, repr=False, compare=False)
    _warned: set[str] = field(default_factory=set, repr=False, compare=False)

    def __getattr__(self, attr: str) -> Any:
        hint = DEPRECATED.get(attr)
        if hint is None:
            raise AttributeError(f"RunInfo has no attribute {attr!r} (plugins see the run's "
                                 "name, rundir, spec and counts: see docs/plugins.md)")
        if attr not in self._warned:
            self._warned.add(attr)
            warnings.warn(f"runner.{attr} is deprecated: on_init/on_shutdown get a RunInfo "
                          f"(name, rundir, spec, counts); {hint}", DeprecationWarning,
                          stacklevel=2)
        if attr == "rd" and not hasattr(self._source, "rd"):
            from xqdecl.store.layout import RunDir

            return RunDir(self.rundir)
        try:
            return getattr(self._source, attr)
        except AttributeError:
            raise AttributeError(f"runner.{attr} is gone: {hint}") from None


def run_info(spec: Spec, rundir: str | Path, counts: Mapping[str, int],
             source: Any = None) -> RunInfo:
    """The RunInfo of a run: `counts` is the runner's live count per status (read
    through a read-only view); `source` (the runner) answers the deprecated
    attributes for plugins that still read them."""
    return RunInfo(spec.name, Path(rundir), spec, MappingProxyType(counts), source)


class Hooks:
    """No plugins: every hook is inactive. Plugin support subclasses this."""

    #: names of the hooks at least one plugin implements
    active: frozenset[str] = frozenset()

    def bind(self, scheduler: Any, report: Callable[[str], None] | None = None) -> None:
        """Called once the run's backend exists: the `scheduler` every hook receives,
        and where problems with plugins are reported."""

    async def call(self, name: str, *args: Any) -> list[Any]:
        """Call hook `name` on every plugin that has it; their results, in order."""
        return []

    def snippets(self, name: str, *args: Any) -> list[str]:
        """Shell snippets for the wrapper (`on_jobcmd_init/prep/end`)."""
        return []

    def close(self) -> None:
        """Forget the plugins of this run (nothing leaks into the next run)."""


NO_HOOKS = Hooks()


#: one implementation: (plugin name, function, whether it must be awaited)
Impl = tuple[str, Callable[..., Any], bool]


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _where(exc: BaseException) -> str:
    """`file:line` of the innermost frame of a plugin's exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


class PluginHooks(Hooks):
    """The hooks of one run: `table` maps a hook name to its implementations."""

    def __init__(self, table: Mapping[str, Sequence[Impl]], plugins: Sequence[str] = ()):
        self._table = {name: tuple(impls) for name, impls in table.items() if impls}
        self.active = frozenset(self._table)
        self.plugins = tuple(plugins)  # names of the run's plugins, in call order
        self.scheduler: Any = None
        self._report: Callable[[str], None] = _stderr
        #: (plugin, hook) -> how many times it raised (or answered nonsense)
        self.errors: dict[tuple[str, str], int] = {}

    def bind(self, scheduler: Any, report: Callable[[str], None] | None = None) -> None:
        self.scheduler = scheduler
        if report is not None:
            self._report = report

    async def call(self, name: str, *args: Any) -> list[Any]:
        results = []
        for plugin, fn, is_async in self._table.get(name, ()):
            try:
                out = fn(*args)
                if is_async:
                    out = await out
            except Exception as exc:
                self._failed(plugin, name, args, f"raised {type(exc).__name__}: {exc}"
                             f"{_where(exc)}")
                continue
            if out is not None:
                results.append(out)
        return results

    def snippets(self, name: str, *args: Any) -> list[str]:
        args = (self.scheduler, *args)
        out = []
        for plugin, fn, _ in self._table.get(name, ()):
            try:
                text = fn(*args)
            except Exception as exc:
                self._failed(plugin, name, args, f"raised {type(exc).__name__}: {exc}"
                             f"{_where(exc)}; its snippet is left out")
                continue
            if text is None or text == "":
                continue
            if not isinstance(text, str):
                self._failed(plugin, name, args, f"returned {type(text).__name__}, "
                             "not a string of shell code; it is left out")
                continue
            out.append(text)
        return out

    def _failed(self, plugin: str, hook: str, args: tuple[Any, ...], what: str) -> None:
        key = (plugin, hook)
        count = self.errors.get(key, 0) + 1
        self.errors[key] = count
        if count > 1:
            return  # said once; close() gives the count
        job = next((a for a in args if isinstance(a, JobView)), None)
        about = f" for job {job.index} ({job.name})" if job is not None else ""
        self._report(f"warning: plugin {plugin!r}: hook {hook}{about} {what} "
                     "(the run goes on)")

    def close(self) -> None:
        for (plugin, hook), count in self.errors.items():
            if count > 1:
                self._report(f"warning: plugin {plugin!r}: hook {hook} failed {count} times "
                             "in this run")
        self.errors.clear()
        self._table = {}
        self.active = frozenset()
        self.scheduler = None


def load_hooks(plugins: Sequence[str], spec: Any = None) -> Hooks:
    """The hooks of a run: its spec's `plugins` and the `xqdecl` entry points.

    `spec` (when given) places errors at their line of the spec file and lets
    a plugin module sitting beside the spec file be found.
    """
    from xqdecl import plugin

    return plugin.hooks_for(plugins, spec)
