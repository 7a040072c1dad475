"""Backends by name, from the one list `xqdecl.spec.schedulers.BACKENDS`.

Each backend lives in one module, imported only when used (importing them all
would slow down `xqdecl validate`); its class is generic over its options
model, which names it.
"""

from __future__ import annotations

import importlib
from typing import Any

from xqdecl.backends.base import Backend
from xqdecl.errors import SpecError
from xqdecl.spec.schedulers import BACKENDS, type_name

#: type name -> "module:Class"
REGISTRY: dict[str, str] = {type_name(model): target for model, target in BACKENDS}


def backend_class(name: str) -> type[Backend[Any]]:
    """The class registered under `name`; a clear error lists the valid names."""
    target = REGISTRY.get(name)
    if target is None:
        raise SpecError(f"unknown scheduler type {name!r}; valid types: {', '.join(REGISTRY)}")
    module, _, attr = target.partition(":")
    try:
        cls: type[Backend[Any]] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"scheduler type {name!r} is not available in this build ({exc})") from None
    if cls.name != name:  # the list and the class disagree: a programming error
        raise TypeError(f"{target} is generic over the options of {cls.name!r}, not {name!r}")
    return cls


__all__ = ["REGISTRY", "Backend", "backend_class"]
