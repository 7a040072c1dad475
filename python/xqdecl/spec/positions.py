"""Where each value of a spec file is written: line and column by path.

`Positions` maps a path (`("jobs", 1, "matrix", "sample")`) to the 1-based
line/column of its key and of its value. For YAML they come from ruamel's
`lc` data while the document is turned into plain Python values. tomli gives
no positions, so `toml_positions` scans the text itself: headers (`[a.b]`,
`[[jobs]]` with per-array counters), dotted keys, inline tables and arrays.
The scan is checked against the parsed document: unless it found exactly the
document's paths it is discarded, so an error is printed without a line
rather than with a wrong one.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.scalarbool import ScalarBoolean

from xqdecl.spec.template import Loc

Point = tuple[int, int]


class Entry:
    """Key and value positions of one path (either may be unknown)."""

    __slots__ = ("key", "value")

    def __init__(self) -> None:
        self.key: Point | None = None
        self.value: Point | None = None


Positions = dict[Loc, Entry]


def paths_of(data: Any, prefix: Loc = ()) -> Iterator[Loc]:
    """Every path of a parsed document (not the root itself)."""
    items: Any = ()
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    for key, value in items:
        loc = (*prefix, key)
        yield loc
        yield from paths_of(value, loc)


# --------------------------------------------------------------------- TOML

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\",
            "e": "\x1b"}
_HEX = {"x": 2, "u": 4, "U": 8}


class _TomlScan:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.pos: Positions = {}
        self.arrays: dict[Loc, int] = {}
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def point(self, i: int) -> Point:
        line = bisect.bisect_right(self.starts, i)
        return line, i - self.starts[line - 1] + 1

    def mark(self, loc: Loc, key: int | None = None, value: int | None = None,
             first: bool = False) -> None:
        entry = self.pos.setdefault(loc, Entry())
        if key is not None and not (first and entry.key):
            entry.key = self.point(key)
        if value is not None:
            entry.value = self.point(value)

    def peek(self, text: str) -> bool:
        return self.s.startswith(text, self.i)

    def spaces(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def blanks(self) -> None:
        """Skip spaces, newlines and comments."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                return

    def run(self) -> Positions:
        table: Loc = ()
        while True:
            self.blanks()
            if self.i >= len(self.s):
                return self.pos
            if self.peek("["):
                table = self.header()
            else:
                self.keyval(table)

    def header(self) -> Loc:
        start = self.i
        array = self.peek("[[")
        self.i += 2 if array else 1
        keys = self.key()
        self.spaces()
        self.i += 2 if array else 1
        loc: Loc = ()
        for n, (name, at) in enumerate(keys):
            loc = (*loc, name)
            last = n == len(keys) - 1
            if last and array:
                index = self.arrays.get(loc, 0)
                self.arrays[loc] = index + 1
                self.mark(loc, key=start, first=True)
                loc = (*loc, index)
                self.mark(loc, key=start)
            elif last:
                self.mark(loc, key=start)
            else:
                self.mark(loc, key=at, first=True)
                if loc in self.arrays:
                    loc = (*loc, self.arrays[loc] - 1)
        return loc

    def keyval(self, table: Loc) -> None:
        loc = table
        for name, at in self.key():
            loc = (*loc, name)
            self.mark(loc, key=at, first=True)
        self.spaces()
        if not self.peek("="):
            raise ValueError(f"expected '=' at {self.point(self.i)}")
        self.i += 1
        self.spaces()
        self.mark(loc, value=self.i)
        self.value(loc)

    def key(self) -> list[tuple[str, int]]:
        parts: list[tuple[str, int]] = []
        while True:
            self.spaces()
            at = self.i
            parts.append((self.simple_key(), at))
            self.spaces()
            if not self.peek("."):
                return parts
            self.i += 1

    def simple_key(self) -> str:
        if self.peek('"'):
            return self.basic_string()
        if self.peek("'"):
            end = self.s.index("'", self.i + 1)
            text = self.s[self.i + 1 : end]
            self.i = end + 1
            return text
        match = _BARE.match(self.s, self.i)
        if not match:
            raise ValueError(f"expected a key at {self.point(self.i)}")
        self.i = match.end()
        return match.group(0)

    def basic_string(self) -> str:
        out: list[str] = []
        self.i += 1
        while self.s[self.i] != '"':
            c = self.s[self.i]
            if c == "\\":
                code = self.s[self.i + 1]
                if code in _HEX:
                    width = _HEX[code]
                    out.append(chr(int(self.s[self.i + 2 : self.i + 2 + width], 16)))
                    self.i += 2 + width
                    continue
                out.append(_ESCAPES[code])
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        self.i += 1
        return "".join(out)

    def value(self, loc: Loc) -> None:
        s = self.s
        if self.peek('"""') or self.peek("'''"):
            quote = s[self.i]
            self.i += 3
            while True:
                if quote == '"' and s[self.i] == "\\":
                    self.i += 2
                elif s.startswith(quote * 3, self.i):
                    end = self.i
                    while end < len(s) and s[end] == quote and end - self.i < 5:
                        end += 1
                    self.i = end
                    return
                else:
                    self.i += 1
        elif self.peek('"'):
            self.basic_string()
        elif self.peek("'"):
            self.i = s.index("'", self.i + 1) + 1
        elif self.peek("["):
            self.i += 1
            index = 0
            while True:
                self.blanks()
                if self.peek("]"):
                    self.i += 1
                    return
                self.mark((*loc, index), value=self.i)
                self.value((*loc, index))
                index += 1
                self.blanks()
                if self.peek(","):
                    self.i += 1
        elif self.peek("{"):
            self.i += 1
            while True:
                self.blanks()
                if self.peek("}"):
                    self.i += 1
                    return
                self.keyval(loc)
                self.blanks()
                if self.peek(","):
                    self.i += 1
        else:
            start = self.i
            while self.i < len(s) and s[self.i] not in ",]}#\r\n":
                self.i += 1
            if self.i == start:
                raise ValueError(f"expected a value at {self.point(start)}")


def toml_positions(text: str, data: dict[str, Any]) -> Positions:
    """Positions of the paths of a TOML document, or {} if the scan is unsure."""
    try:
        found = _TomlScan(text).run()
    except (ValueError, IndexError, KeyError, RecursionError):
        return {}
    if set(found) != set(paths_of(data)):
        return {}
    return found


# --------------------------------------------------------------------- YAML


class YamlShapeError(ValueError):
    """A YAML document that cannot become plain spec data."""


#: Most values a YAML document may expand to (aliases counted at each use).
MAX_YAML_VALUES = 2_000_000
#: Deepest nesting of flow collections (`[`, `{`) accepted before parsing.
MAX_FLOW_DEPTH = 100
_BRACKETS = re.compile(r"[\[\]{}]")


def check_flow_depth(text: str, limit: int = MAX_FLOW_DEPTH) -> None:
    """Refuse absurdly nested flow collections before the parser recurses into them.

    Brackets inside strings are counted too, so this overestimates; the limit
    is far above what a spec needs."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match.group(0) in "[{" else -1
        if depth > limit:
            raise YamlShapeError(f"values nested too deeply (more than {limit} levels)")
        depth = max(depth, 0)


def _expanded_size(node: Any, limit: int) -> int:
    """How many values `node` holds once every alias is expanded (capped at limit+1)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(item: Any) -> int:
        if not isinstance(item, dict | list):
            return 1
        known = sizes.get(id(item))
        if known is not None:
            return known
        if id(item) in active:
            raise YamlShapeError("a YAML alias refers to a value that contains it")
        active.add(id(item))
        total = 1
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            total += size(child)
            if total > limit:
                break
        active.discard(id(item))
        sizes[id(item)] = total
        return total

    return size(node)


def yaml_tree(node: Any, limit: int = MAX_YAML_VALUES) -> tuple[Any, Positions]:
    """Plain Python data and positions of a ruamel round-trip document."""
    if _expanded_size(node, limit) > limit:
        raise YamlShapeError(f"the document holds more than {limit:,} values once its aliases"
                             " are expanded")
    positions: Positions = {}
    active: set[int] = set()

    def convert(item: Any, loc: Loc) -> Any:
        if isinstance(item, dict | list):
            if id(item) in active:
                raise YamlShapeError("a YAML alias refers to a value that contains it")
            active.add(id(item))
            try:
                return convert_container(item, loc)
            finally:
                active.discard(id(item))
        return plain_scalar(item)

    def convert_container(item: Any, loc: Loc) -> Any:
        lc = getattr(getattr(item, "lc", None), "data", None) or {}
        if isinstance(item, list):
            out_list = []
            for index, value in enumerate(item):
                at = lc.get(index)
                if at:
                    positions.setdefault((*loc, index), Entry()).value = (at[0] + 1, at[1] + 1)
                out_list.append(convert(value, (*loc, index)))
            return out_list
        out: dict[Any, Any] = {}
        for key, value in item.items():
            name = plain_key(key)
            at = lc.get(key)
            if at:
                entry = positions.setdefault((*loc, name), Entry())
                entry.key = (at[0] + 1, at[1] + 1)
                entry.value = (at[2] + 1, at[3] + 1)
            out[name] = convert(value, (*loc, name))
        return out

    return convert(node, ()), positions


def plain_key(key: Any) -> Any:
    """A mapping key as plain data; keys that are collections are refused."""
    value = plain_scalar(key)
    if isinstance(value, list | dict) or not _hashable(value):
        raise YamlShapeError(f"unsupported mapping key {key!r}: keys must be plain text")
    return value


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def plain_scalar(value: Any) -> Any:
    """ruamel's scalar subclasses (ScalarInt, ScalarFloat, ...) as built-in types."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, ScalarBoolean | bool):
        return bool(value)
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, TaggedScalar):
        return str(value.value)
    return value  # dates, sets, ...: left for validation to name
