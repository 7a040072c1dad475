"""The runner's side of plugin hooks.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


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

#: which hook a job's new status raises
STATUS_HOOKS = {
    "queued": "on_job_queued",
    "submitted": "on_job_submitted",
    "running": "on_job_started",
    "succeeded": "on_job_succeeded",
    "failed": "on_job_failed",
    "cancelled": "on_job_killed",
}
JOBCMD_HOOKS = frozenset({"on_jobcmd_init", "on_jobcmd_prep", "on_jobcmd_end"})

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
