"""The runner's side of plugin hooks.

The runner asks `hooks.active` (the hook names some plugin implements) before
doing anything for a hook, so a run without plugins pays nothing per job or
per poll. Notifications raised while a cycle processes changes are queued and
dispatched once per cycle, in order; the two hooks whose answer matters
(`on_job_submitting`, `on_job_killing`) are awaited where they are asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class JobView:
    """What a hook sees of a job (a snapshot taken when the hook was raised)."""

    index: int
    name: str
    cmd: str | list[str]
    metadir: Path
    status: str
    rc: int | None
    trial: int
    jid: str | None
    group: int = 0


class Hooks:
    """No plugins: every hook is inactive. Plugin support subclasses this."""

    #: names of the hooks at least one plugin implements
    active: frozenset[str] = frozenset()

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


def load_hooks(plugins: list[str]) -> Hooks:
    """The hooks of a run: its spec's `plugins` and the `xqdecl` entry points."""
    from xqdecl import plugin

    return plugin.hooks_for(plugins)
