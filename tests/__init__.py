"""xqdecl test suite (a package so that `tests.testbed` is importable)."""
