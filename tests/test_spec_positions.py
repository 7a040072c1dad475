"""The TOML position finder and the YAML positions, checked against real documents."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import tomli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from xqdecl.spec.positions import paths_of, toml_positions, yaml_tree

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def at(text: str, point: tuple[int, int] | None, width: int = 20) -> str:
    assert point is not None
    line, col = point
    return text.splitlines()[line - 1][col - 1 : col - 1 + width]


def test_handwritten_document() -> None:
    text = textwrap.dedent('''\
        # [not a table] = 1
        "name" = 'x' # comment
        prescript = """
        [fake]
        a = "b" """
        arr = [
          1, # one
          { a = [2], "b.c" = 3 },
        ]
        dotted . key = true
        [a.b]
        c = 1
        [[jobs]]
        cmd = "x"
        [jobs.env]
        K = "v"
        [[jobs]]
        cmd = ["y",
          "z"]
        matrix = {
          s = [1, 2],
        }
    ''')
    pos = toml_positions(text, tomli.loads(text))
    assert pos
    assert pos[("name",)].key == (2, 1) and pos[("name",)].value == (2, 10)
    assert pos[("prescript",)].value == (3, 13)
    assert pos[("arr", 1, "b.c")].key == (8, 14)
    assert pos[("dotted", "key")].key == (10, 10)
    assert pos[("a", "b", "c")].key == (12, 1)
    assert pos[("jobs", 0)].key == (13, 1)
    assert pos[("jobs", 0, "env", "K")].value == (16, 5)
    assert pos[("jobs", 1, "cmd", 1)].value == (19, 3)
    assert pos[("jobs", 1, "matrix", "s", 1)].value == (21, 11)
    assert "fake" not in {loc[0] for loc in pos}


def test_unsure_scan_gives_no_positions() -> None:
    text = 'a = 1\n'
    assert toml_positions(text, {"a": 1, "b": 2}) == {}


# ---------------------------------------------------------------- generated TOML

_keys = st.sampled_from(["a", "b", "cmd", "x-y", "k_1", "a.b", "with space", "é", 'q"t'])
_strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                   max_size=6)
_scalars = st.one_of(st.integers(-5, 10**6), st.booleans(), _strings,
                     st.floats(allow_nan=False, allow_infinity=False, width=32))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=12,
)
_documents = st.dictionaries(_keys, _values, min_size=1, max_size=5)


def _key(name: str, draw: Any) -> str:
    if _BARE.fullmatch(name) and draw(st.booleans()):
        return name
    if "'" not in name and draw(st.booleans()):
        return f"'{name}'"
    return json.dumps(name, ensure_ascii=False)


def _inline(value: Any, draw: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        style = draw(st.sampled_from(["basic", "literal", "multi"]))
        if style == "literal" and "'" not in value and "\n" not in value:
            return f"'{value}'"
        if style == "multi" and '"' not in value and "\\" not in value:
            return f'"""\n{value}"""'
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        sep = draw(st.sampled_from([", ", ",\n  ", ", # note\n  "]))
        return "[" + sep.join(_inline(v, draw) for v in value) + "]"
    items = [f"{_key(k, draw)} = {_inline(v, draw)}" for k, v in value.items()]
    return "{ " + ", ".join(items) + " }"


def _table(path: list[str], table: dict[str, Any], draw: Any, out: list[str]) -> None:
    later: list[tuple[str, Any]] = []
    for name, value in table.items():
        is_tables = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        if (isinstance(value, dict) or is_tables) and draw(st.booleans()):
            later.append((name, value))
        else:
            out.append(f"{_key(name, draw)} = {_inline(value, draw)}  # c")
    for name, value in later:
        sub = [*path, _key(name, draw)]
        if isinstance(value, dict):
            out.append("[" + ".".join(sub) + "]")
            _table(sub, value, draw, out)
        else:
            for item in value:
                out.append("[[" + " . ".join(sub) + "]]")
                _table(sub, item, draw, out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_documents, data=st.data())
def test_generated_documents_get_exact_positions(document: dict[str, Any], data: Any) -> None:
    out: list[str] = []
    _table([], document, data.draw, out)
    text = "\n".join(out) + "\n"
    parsed = tomli.loads(text)
    positions = toml_positions(text, parsed)
    assert set(positions) == set(paths_of(parsed))
    for loc, entry in positions.items():
        if entry.key is not None:
            start = at(text, entry.key, 1)
            assert start in "[\"'" or _BARE.match(at(text, entry.key)), (loc, text)
        if entry.value is not None:
            value = parsed
            for part in loc:
                value = value[part]
            head = at(text, entry.value, 1)
            if isinstance(value, str):
                assert head in "\"'", (loc, text)
            elif isinstance(value, list):
                assert head == "[", (loc, text)
            elif isinstance(value, dict):
                assert head == "{", (loc, text)


def test_yaml_positions_and_plain_values() -> None:
    text = textwrap.dedent("""\
        base: &b
          mem: 4G
        n: 1.5
        t: true
        jobs:
          - cmd: [a, "b"]
            extra: *b
          - {cmd: c}
    """)
    data, positions = yaml_tree(YAML(typ="rt").load(text))
    assert data == {"base": {"mem": "4G"}, "n": 1.5, "t": True,
                    "jobs": [{"cmd": ["a", "b"], "extra": {"mem": "4G"}}, {"cmd": "c"}]}
    assert type(data["n"]) is float and type(data["t"]) is bool
    assert positions[("jobs", 0, "cmd", 1)].value == (6, 14)
    assert positions[("jobs", 1)].value == (8, 5)
    assert positions[("jobs", 1, "cmd")].key == (8, 6)
    assert positions[("n",)].value == (3, 4)
