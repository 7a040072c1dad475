"""Fuzzing load_spec: any text, random or mutated from valid specs, ends as a Spec or a
SpecError with one-line issues naming the file, never another exception."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xqdecl.errors import SpecError
from xqdecl.spec import Spec, load_spec

DATA = Path(__file__).parent / "data" / "specs"
CONFIGS = Path(__file__).parent.parent / "configs"
SEEDS = [
    (DATA / "valid.toml").read_text(),
    (DATA / "valid.yaml").read_text(),
    (DATA / "invalid.toml").read_text(),
    (DATA / "invalid.yaml").read_text(),
    (CONFIGS / "matrix.toml").read_text(),
    (CONFIGS / "matrix.yaml").read_text(),
]
SPECIAL = "{}[]=:,.\"'\\\n\t #*&!%@|>-?0123456789abcdefxyz_é\x00"

FUZZ = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    for name in ("rows.csv", "rows.tsv"):
        shutil.copy(DATA / name, path / name)
    shutil.copy(CONFIGS / "samples.tsv", path / "samples.tsv")
    return path


def check(folder: Path, name: str, text: str | bytes) -> None:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        spec = load_spec(path)
    except SpecError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.startswith(str(path)), issue
            assert "\n" not in issue, issue
            assert "internal error" not in issue, issue
        return
    assert isinstance(spec, Spec)
    assert spec.total_jobs() >= 1


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "truncate"]))
        at = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.text(alphabet=SPECIAL, min_size=1, max_size=6)) + text[at:]
        elif kind == "replace" and at < len(text):
            text = text[:at] + draw(st.sampled_from(SPECIAL)) + text[at + 1 :]
        elif kind == "dup_line":
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(draw(st.integers(0, len(lines))), lines[i])
                text = "".join(lines)
        else:
            text = text[:at]
    return text


@FUZZ
@given(text=mutated(), suffix=st.sampled_from([".toml", ".yaml", ".yml", ".spec"]))
def test_mutated_specs(folder: Path, text: str, suffix: str) -> None:
    check(folder, "mutated" + suffix, text)


@FUZZ
@given(text=st.text(alphabet=SPECIAL, max_size=60),
       suffix=st.sampled_from([".toml", ".yaml", ".txt"]))
def test_random_text(folder: Path, text: str, suffix: str) -> None:
    check(folder, "random" + suffix, text)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=40), suffix=st.sampled_from([".toml", ".yaml"]))
def test_random_bytes(folder: Path, raw: bytes, suffix: str) -> None:
    check(folder, "bytes" + suffix, raw)


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]\n",
        "a: &a {b: *a}\njobs: [{cmd: x}]\n",
        "x: " + "[" * 3000 + "]" * 3000 + "\n",
        "x = " + "[" * 3000 + "]" * 3000 + "\n",
        "? [a, b]\n: c\n",
        "jobs:\n  - cmd: !!python/object:os.system x\n",
        "jobs: [{cmd: x, env: {A: 2001-12-14}, matrix: {d: [2001-12-14t21:59:43Z]}}]\n",
        "jobs: [{cmd: x, matrix: {a: !!set {x, y}}}]\n",
        'l: &l ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(f"l{i}: &l{i} [*l{i - 1 if i else ''}" + f",*l{i - 1 if i else ''}" * 8 + "]\n"
                  for i in range(9)),
    ],
)
def test_nasty_documents(folder: Path, text: str) -> None:
    check(folder, "nasty.yaml" if ":" in text.split("\n")[0] or "?" in text else "nasty.toml",
          text)
