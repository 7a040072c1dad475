"""The run layer: the job table, the loop that drives it, and how a run ends.

`Runner` is imported on first use, so the output layer can import `Reporter`
and `RunResult` without loading the loop and its backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xqdecl.engine.result import Reporter, RunResult

if TYPE_CHECKING:
    from xqdecl.engine.runner import Runner


def __getattr__(name: str) -> Any:
    if name == "Runner":
        from xqdecl.engine.runner import Runner

        return Runner
    raise AttributeError(f"module 'xqdecl.engine' has no attribute {name!r}")


__all__ = ["Reporter", "RunResult", "Runner"]
