"""xqdecl: a declarative job runner."""

from xqdecl._xqdecl import __version__

__all__ = ["__version__"]
