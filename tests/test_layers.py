"""The package is in layers, and imports only point down (docs/internals.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "xqdecl"

#: top to bottom: a layer may import its own modules and those of the layers below it
LAYERS = ["worker", "cli", "engine", "report", "plan", "backends", "plugin", "store", "spec",
          "errors", "_xqdecl"]

#: top modules that must start fast: they may import only these of the package
LIGHT = {"worker": {"xqdecl._xqdecl"}}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "xqdecl" or len(parts) < 2:
        return None  # the package root (lazy re-exports) or another project
    return parts[1]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_every_module_is_in_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        assert (rel.parts[0] if len(rel.parts) > 1 else rel.stem) in LAYERS, rel


def test_imports_point_down() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1 and rel.name == "__init__.py":
            continue
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        rank = LAYERS.index(own)
        for module in _imports(path):
            layer = _layer(module)
            if layer is None or layer == own or layer not in LAYERS:
                continue
            if LAYERS.index(layer) < rank:
                wrong.append(f"{rel} ({own}) imports {module} ({layer})")
    assert not wrong, "\n".join(sorted(wrong))


def test_light_modules_import_only_the_native_module() -> None:
    for name, allowed in LIGHT.items():
        own = {m for m in _imports(PACKAGE / f"{name}.py") if m.split(".")[0] == "xqdecl"}
        extra = {m for m in own if not any(m == a or m.startswith(a + ".") for a in allowed)}
        assert not extra, f"{name} imports {sorted(extra)}"


def test_the_layer_test_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from xqdecl.engine.runner import Runner\n")
    assert "xqdecl.engine.runner" in _imports(bad)
    assert LAYERS.index(_layer("xqdecl.engine.runner") or "") < LAYERS.index("store")
