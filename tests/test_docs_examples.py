"""Every example spec in the docs is validated, and run when it can run here.

A fenced ```toml or ```yaml block whose first line is a `# spec:` comment is a
complete spec:

    # spec: FILE [run] [exit=N] [invalid]

It is written to FILE in a folder of its own document (so relative paths
between a doc's examples work), then `xqdecl validate` must accept it (or,
with `invalid`, reject it with exit 3); with `run`, `xqdecl run` must end with
exit N (default 0). A fenced block whose info string has `file=NAME` (e.g.
```` ```text file=samples.tsv ````) is a data file written beside the specs.
Any other toml/yaml block that has `[[jobs]]`/`jobs:` must say `# fragment`
on its first line, so no whole spec in the docs escapes the tests.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

Xq = Callable[..., tuple[int, str, str]]


@pytest.fixture
def xq(capfd: pytest.CaptureFixture[str]) -> Xq:
    """The CLI in this process (the docs have many quick specs: no interpreter
    start-up per call): (exit code, stdout, stderr)."""
    from xqdecl.cli import main

    def call(*args: str, timeout: float = 0) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main(list(args))
        out, err = capfd.readouterr()
        return code, out, err

    return call

DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    found = []
    for m in FENCE.finditer(text):
        info = m.group(1).strip()
        lang = info.split()[0] if info else ""
        found.append(Block(doc, text.count("\n", 0, m.start()) + 1, lang, info, m.group(2)))
    return found


def specs(doc: Path) -> list[tuple[Block, str, list[str]]]:
    out = []
    for b in blocks(doc):
        first = b.text.split("\n", 1)[0].strip()
        if b.lang in ("toml", "yaml") and first.startswith("# spec:"):
            words = shlex.split(first[len("# spec:"):])
            out.append((b, words[0], words[1:]))
    return out


def _docs_with_specs() -> list[Path]:
    return [d for d in DOCS if specs(d)]


def test_the_docs_have_examples() -> None:
    names = {d.name for d in _docs_with_specs()}
    assert {"README.md", "guide.md", "from-xqute.md", "editors.md"} <= names
    assert len(specs(REPO / "docs" / "guide.md")) >= 10


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_no_untested_whole_spec(doc: Path) -> None:
    for b in blocks(doc):
        if b.lang not in ("toml", "yaml"):
            continue
        first = b.text.split("\n", 1)[0].strip()
        if first.startswith(("# spec:", "# fragment")):
            continue
        whole = "[[jobs]]" in b.text or re.search(r"^jobs:", b.text, re.M)
        assert not whole, f"{b.where}: a whole spec without '# spec:' (or mark it '# fragment')"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("doc", _docs_with_specs(), ids=lambda d: d.name)
def test_doc_examples(doc: Path, xq: Xq, tmp_path: Path) -> None:
    for b in blocks(doc):
        m = re.search(r"\bfile=(\S+)", b.info)
        if m:
            (tmp_path / m.group(1)).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / m.group(1)).write_text(b.text)
    found = specs(doc)
    for b, name, _ in found:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(b.text)
    for b, name, opts in found:
        path = str(tmp_path / name)
        code, _, err = xq("validate", path)
        if "invalid" in opts:
            assert code == 3, f"{b.where}: expected to be invalid"
            continue
        assert code == 0, f"{b.where}: {err}"
        if "run" in opts:
            want = next((int(o[5:]) for o in opts if o.startswith("exit=")), 0)
            code, _, err = xq("run", path, timeout=300)
            assert code == want, f"{b.where}: exit {code}, expected {want}\n{err}"


@pytest.mark.parametrize(
    "spec", sorted(p for p in (REPO / "docs" / "examples").rglob("*")
                   if p.suffix in (".toml", ".yaml", ".yml")),
    ids=lambda p: p.name,
)
def test_example_files_validate(spec: Path, xq: Xq) -> None:
    code, _, err = xq("validate", str(spec))
    assert code == 0, err
