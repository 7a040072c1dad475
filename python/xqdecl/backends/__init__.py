"""Backends by name. Each lives in one module, imported only when used."""

from __future__ import annotations

import importlib

from xqdecl.backends.base import Backend
from xqdecl.errors import SpecError

REGISTRY: dict[str, str] = {
    "local": "xqdecl.backends.local:LocalBackend",
    "slurm": "xqdecl.backends.slurm:SlurmBackend",
    "sge": "xqdecl.backends.sge:SgeBackend",
    "ssh": "xqdecl.backends.ssh:SshBackend",
    "container": "xqdecl.backends.container:ContainerBackend",
    "gbatch": "xqdecl.backends.gbatch:GbatchBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class registered under `name`; a clear error lists the valid names."""
    target = REGISTRY.get(name)
    if target is None:
        raise SpecError(f"unknown scheduler type {name!r}; valid types: {', '.join(REGISTRY)}")
    module, _, attr = target.partition(":")
    try:
        cls: type[Backend] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"scheduler type {name!r} is not available in this build ({exc})") from None
    return cls


__all__ = ["REGISTRY", "Backend", "backend_class"]
