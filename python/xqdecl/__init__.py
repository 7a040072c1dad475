"""xqdecl: a declarative job runner.

```python
import xqdecl
spec = xqdecl.load_spec("pipeline.toml")
result = xqdecl.run(spec, forks=8)      # blocking; or: await xqdecl.arun(spec)
print(result.exit_code, result.counts)
```
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from xqdecl._xqdecl import __version__
from xqdecl.errors import BackendError, ExitCode, SpecError, XqdeclError
from xqdecl.runner import Reporter, Runner, RunResult
from xqdecl.spec import Spec, load_spec, spec_from_dict

_RUN_OPTIONS = ("fresh", "reporter", "poll_interval")


async def arun(spec: Spec | str | os.PathLike[str], **overrides: Any) -> RunResult:
    """Run every job of `spec` to the end (in the running event loop).

    `overrides` may replace run-level spec keys (e.g. `forks=8`) and pass the
    runner's options `fresh`, `reporter`, `poll_interval`.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    options = {k: overrides.pop(k) for k in list(overrides) if k in _RUN_OPTIONS}
    if overrides:
        spec = spec.with_overrides(**overrides)
    return await Runner(spec, **options).run()


def __getattr__(name: str) -> Any:
    if name == "plugin":  # `xqdecl.plugin.impl` without importing simplug for every command
        import importlib

        return importlib.import_module("xqdecl.plugin")
    raise AttributeError(f"module 'xqdecl' has no attribute {name!r}")


def run(spec: Spec | str | os.PathLike[str], **overrides: Any) -> RunResult:
    """Blocking form of `arun`."""
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
