"""Plugins: the loader that gives each run its hooks (declared from `xqdecl.plugin.hooks.SPECS`).

A plugin is a module whose functions are decorated with `@xqdecl.plugin.impl`:

```python
from xqdecl import plugin

@plugin.impl
async def on_job_failed(scheduler, job):
    print(f"job {job.name} failed with rc {job.rc}")
```

A run's plugins are the modules its spec names in `plugins` and those
registered under the entry-point group `xqdecl`. The hooks are declared with
simplug under the project name `xqdecl`; its registry is global to the
process, so a run touches it only while it loads: every other plugin is
disabled, the run's plugins are registered (simplug checks their hook names
and signatures), the run's own call table is read off, and the registry is
put back as it was. During the run, hooks are called from that table (see
`xqdecl.plugin.hooks.PluginHooks`), so two runs in one process never see each
other's plugins. docs/plugins.md is the guide for plugin writers.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import threading
from collections.abc import Sequence
from difflib import get_close_matches
from importlib import metadata
from typing import Any

from simplug import (
    AsyncImplOnSyncSpecError,
    HookSignatureDifferentFromSpec,
    NoSuchHookSpec,
    PluginRegistered,
    Simplug,
    SimplugException,
)

from xqdecl.errors import SpecError
from xqdecl.plugin.hooks import (
    HOOKS,
    NO_HOOKS,
    SPECS,
    Hooks,
    HookSpec,
    Impl,
    JobView,
    PluginHooks,
    RunInfo,
)

__all__ = ["ENTRY_POINT_GROUP", "HOOKS", "JobView", "RunInfo", "hooks_for", "impl", "simplug"]

#: the entry-point group plugins register under (in a package's pyproject.toml:
#: `[project.entry-points.xqdecl] name = "module"`)
ENTRY_POINT_GROUP = "xqdecl"

simplug = Simplug("xqdecl")
#: the decorator marking a function as the implementation of the hook it is named after
impl = simplug.impl

_LOCK = threading.Lock()  # the simplug registry is process-global


def _declare(hook: HookSpec) -> None:
    """Declare one hook of `SPECS` to simplug (once: a reload finds it declared).

    simplug checks an implementation's parameter names against the spec's
    signature, and takes an async spec to allow `def` and `async def` alike; the
    snippet hooks are sync (wrappers are rendered without awaiting anything).
    """
    try:
        getattr(simplug.hooks, hook.name)
        return
    except NoSuchHookSpec:
        pass

    if hook.snippet:
        def spec(*args: Any) -> Any:
            return None
    else:
        async def spec(*args: Any) -> Any:
            return None

    spec.__name__ = spec.__qualname__ = hook.name
    spec.__doc__ = hook.doc
    spec.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
         for name in hook.params])
    simplug.spec(spec, warn_sync_impl_on_async=False)


for _hook in SPECS:
    _declare(_hook)


# -- loading --------------------------------------------------------------------------------
class _Candidate:
    """A plugin object found for this run, and where it came from (for messages)."""

    __slots__ = ("label", "loc", "name", "obj")

    def __init__(self, obj: Any, label: str, name: str | None = None, loc: tuple = ()):
        self.obj, self.label, self.name, self.loc = obj, label, name, loc


def hooks_for(plugins: Sequence[str], spec: Any = None) -> Hooks:
    """The hooks of a run whose spec lists `plugins` (plus the entry points).

    `-name` in `plugins` leaves out the entry-point plugin `name`. Raises
    SpecError naming the plugin when one cannot be imported or registered.
    """
    wanted = [p for p in plugins if not p.startswith("-")]
    dropped = {p[1:] for p in plugins if p.startswith("-")}
    found = _from_entry_points(dropped)
    for i, name in enumerate(plugins):
        if not name.startswith("-"):
            found.append(_Candidate(_import(name, i, spec), f"plugin {name!r}", loc=("plugins", i)))
    if not wanted and not found:
        return NO_HOOKS
    unique: list[_Candidate] = []
    for cand in found:  # a module both installed and listed is still one plugin
        if all(cand.obj is not other.obj for other in unique):
            unique.append(cand)
    return _table(unique, spec)


def _from_entry_points(dropped: set[str]) -> list[_Candidate]:
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in dropped:
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            raise SpecError(
                f"the plugin {ep.name!r} (entry point {ep.value!r} of group "
                f"{ENTRY_POINT_GROUP!r}) cannot be loaded: {_reason(exc)}; "
                f"uninstall it, or leave it out with plugins = [\"-{ep.name}\"]"
            ) from None
        out.append(_Candidate(obj, f"plugin {ep.name!r} (entry point {ep.value})", ep.name))
    return out


def _import(name: str, index: int, spec: Any) -> Any:
    """Import plugin module `name`; a module beside the spec file is found too."""
    try:
        return _import_module(name, spec)
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        if name == missing or name.startswith(missing + "."):
            raise _spec_error(spec, ("plugins", index),
                              f"cannot import the plugin module {name!r}: no module named "
                              f"{missing!r} (is it installed, or on PYTHONPATH?)") from None
        raise _spec_error(spec, ("plugins", index),
                          f"the plugin module {name!r} cannot be imported: "
                          f"{_reason(exc)}") from None
    except Exception as exc:
        raise _spec_error(spec, ("plugins", index),
                          f"the plugin module {name!r} cannot be imported: "
                          f"{_reason(exc)}") from None


def _import_module(name: str, spec: Any) -> Any:
    if not name or any(not part.isidentifier() for part in name.split(".")):
        raise ValueError("not a module name (expected dotted identifiers like 'pkg.mod')")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.split(".")[0]
        base = getattr(spec, "base_dir", None)
        if base is None or exc.name != top or str(base) in sys.path:
            raise
    sys.path.insert(0, str(base))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(base))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NoSuchHookSpec):
        close = get_close_matches(str(exc), HOOKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"@plugin.impl on {str(exc)!r}, which is not a hook{hint}"
    return f"{type(exc).__name__}: {exc}"


def _spec_error(spec: Any, loc: tuple, message: str) -> SpecError:
    """A SpecError at `loc` of the spec file (with its line when it can be found)."""
    from xqdecl.spec.issues import format_issues
    from xqdecl.spec.loader import parse_text, read_text

    source = getattr(spec, "source", None) or "<spec>"
    data: Any = None
    positions: dict = {}
    with contextlib.suppress(Exception):  # built in code, or the file is gone: no line
        data, positions = parse_text(read_text(source), None, source)
    return SpecError(format_issues(source, [(loc, message)], data, positions))


def _table(found: list[_Candidate], spec: Any) -> Hooks:
    """Register `found` (only them enabled), read their implementations, restore."""
    with _LOCK, simplug.plugins_context([]):  # [] means: every other plugin disabled
        names = []
        for cand in found:
            try:
                simplug.register((cand.obj, cand.name) if cand.name else cand.obj)
            except (HookSignatureDifferentFromSpec, AsyncImplOnSyncSpecError) as exc:
                raise _problem(spec, cand, _explain(exc)) from None
            except PluginRegistered:
                raise _problem(spec, cand, "another plugin of this run has the same name; "
                               "give one a different `name` attribute") from None
            except SimplugException as exc:
                raise _problem(spec, cand, f"{type(exc).__name__}: {exc}") from None
            names.append(_name_of(cand))
        enabled = simplug.get_enabled_plugins()
        ordered = sorted((enabled[n] for n in names), key=_priority)
        table: dict[str, list[Impl]] = {}
        for wrapper in ordered:
            for hook in HOOKS:
                found_impl = wrapper.hook(hook)
                if found_impl is None:
                    continue
                fn = found_impl.impl
                is_async = inspect.iscoroutinefunction(fn)
                if found_impl.has_self:
                    fn = _bound(fn, wrapper.plugin)
                table.setdefault(hook, []).append((wrapper.name, fn, is_async))
    return PluginHooks(table, [w.name for w in ordered])


def _priority(wrapper: Any) -> int:
    """A plugin's `priority` attribute (smaller runs first; default 0, then load order)."""
    value = getattr(wrapper.plugin, "priority", 0)
    return value if isinstance(value, int) else 0


def _bound(fn: Any, obj: Any) -> Any:
    def call(*args: Any) -> Any:
        return fn(obj, *args)

    return call


def _name_of(cand: _Candidate) -> str:
    if cand.name:
        return cand.name
    name = getattr(cand.obj, "name", None)
    if isinstance(name, str):
        return name
    return getattr(cand.obj, "__name__", type(cand.obj).__name__).lower()


def _explain(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, AsyncImplOnSyncSpecError):
        return f"{text} (the on_jobcmd_* hooks return their snippet directly)"
    return f"hook signature differs from the spec: {text}"


def _problem(spec: Any, cand: _Candidate, message: str) -> SpecError:
    if cand.loc:
        return _spec_error(spec, cand.loc, f"{cand.label}: {message}")
    return SpecError(f"{cand.label}: {message}")

