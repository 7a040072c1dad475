"""Plugins (placeholder until the simplug-based loader lands): no plugins."""

from __future__ import annotations

from xqdecl.errors import SpecError
from xqdecl.hooks import NO_HOOKS, Hooks


def hooks_for(plugins: list[str]) -> Hooks:
    if plugins:
        raise SpecError(f"plugins are not supported yet: {', '.join(plugins)}")
    return NO_HOOKS
