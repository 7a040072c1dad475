"""xqdecl: a declarative job runner.

```python
import xqdecl
spec = xqdecl.load_spec("pipeline.toml")
result = xqdecl.run(spec, forks=8)      # blocking; or: await xqdecl.arun(spec)
print(result.exit_code, result.counts)
```
"""

# The `xqdecl` console script imports this package first: a Ctrl-C or SIGTERM
# while it starts must end it with one line and exit 130, not a traceback from
# the middle of an import, so these lines come before any other import.
import contextlib as _contextlib
import os as _os
import signal as _signal
import sys as _sys


def _stop_at_once(signum: int, frame: object) -> None:
    """The command is still starting: nothing to clean up, say so and end."""
    with _contextlib.suppress(OSError):
        _os.write(2, b"xqdecl: interrupted\n")
    _os._exit(130)


def _starting_command() -> bool:
    main = getattr(_sys.modules.get("__main__"), "__file__", None) or ""
    return _os.path.basename(main) == "xqdecl"


if _starting_command():
    _signal.signal(_signal.SIGINT, _stop_at_once)
    _signal.signal(_signal.SIGTERM, _stop_at_once)

import importlib  # noqa: E402
import os  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from xqdecl.errors import BackendError, ExitCode, SpecError, XqdeclError  # noqa: E402

if TYPE_CHECKING:
    from xqdecl.engine import Reporter, Runner, RunResult
    from xqdecl.spec import Spec, load_spec, spec_from_dict

_RUN_OPTIONS = ("fresh", "reporter", "poll_interval")

#: names imported on first use, so `import xqdecl` (and the CLI's first lines,
#: where a Ctrl-C must already be handled) costs next to nothing
_LAZY = {
    "__version__": "xqdecl._xqdecl",
    "Reporter": "xqdecl.engine", "Runner": "xqdecl.engine", "RunResult": "xqdecl.engine",
    "Spec": "xqdecl.spec", "load_spec": "xqdecl.spec", "spec_from_dict": "xqdecl.spec",
}


async def arun(spec: "Spec | str | os.PathLike[str]", **overrides: Any) -> "RunResult":
    """Run every job of `spec` to the end (in the running event loop).

    `overrides` may replace run-level spec keys (e.g. `forks=8`) and pass the
    runner's options `fresh`, `reporter`, `poll_interval`.
    """
    from xqdecl.engine import Runner
    from xqdecl.spec import Spec, load_spec

    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    options = {k: overrides.pop(k) for k in list(overrides) if k in _RUN_OPTIONS}
    if overrides:
        spec = spec.with_overrides(**overrides)
    return await Runner(spec, **options).run()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "plugin":  # `xqdecl.plugin.impl` without importing simplug for every command
        return importlib.import_module("xqdecl.plugin")
    raise AttributeError(f"module 'xqdecl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def run(spec: "Spec | str | os.PathLike[str]", **overrides: Any) -> "RunResult":
    """Blocking form of `arun`."""
    import asyncio

    return asyncio.run(arun(spec, **overrides))


__all__ = [
    "BackendError",
    "ExitCode",
    "Reporter",
    "RunResult",
    "Runner",
    "Spec",
    "SpecError",
    "XqdeclError",
    "__version__",
    "arun",
    "load_spec",
    "plugin",
    "run",
    "spec_from_dict",
]
