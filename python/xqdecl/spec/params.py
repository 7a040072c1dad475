"""The parameters of a job group: its axes and their product.

A group's parameters come from up to three sources, each made into axes:
every `matrix` key is one axis, the `zip` lists together are one axis, and
the rows of `params_file` are one axis. The group's jobs are the cartesian
product of its axes in that order, the last axis varying fastest. Axes are
sequences of steps (a value, or a tuple of values for zip and rows); a range
axis makes its values on demand, so a large range costs no memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from xqdecl.spec.files import MAX_PARAMS_BYTES, FileRefused, read_limited
from xqdecl.spec.template import PARAM_NAME, Loc

if TYPE_CHECKING:
    from xqdecl.spec.models import JobGroup

Issue = tuple[Loc, str]
Values = tuple[str, ...]
#: One step of an axis: a value, or a tuple of values for a zip or a params file row.
Step = str | Values

#: When the lengths of a group's axes add up to at most this, the product is
#: made by `itertools.product` (fast; it keeps each axis's values, not their
#: product); longer axes are walked lazily instead.
EAGER_AXES = 1_000_000


class ValuesAxis(Sequence[Step]):
    """An axis of explicit values: strings (`width` 1) or tuples of `width` values."""

    __slots__ = ("_items", "width")

    def __init__(self, items: Sequence[Step], width: int = 1):
        self._items = tuple(items)
        self.width = width

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self._items[i]

    def __iter__(self) -> Iterator[Step]:
        return iter(self._items)


class RangeAxis(Sequence[Step]):
    """An axis over `range(start, stop, step)`; values made as they are read."""

    __slots__ = ("_range",)
    width = 1

    def __init__(self, values: range):
        self._range = values

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return str(self._range[i])

    def __iter__(self) -> Iterator[Step]:
        return map(str, self._range)


Axis = ValuesAxis | RangeAxis


class GroupParams:
    """The parameter names of a group (in axis order), its axes and their product.

    A combination is a tuple with one step per axis; `dicts()` turns each into
    the job's `{name: value}` through a function generated once for the
    group's shape (a dict display is several times faster than `dict(zip())`).
    """

    __slots__ = ("_make", "_make_indexed", "axes", "count", "keys", "sources")

    def __init__(self, keys: tuple[str, ...], axes: tuple[Axis, ...],
                 sources: tuple[Loc, ...] = ()):
        self.keys = keys
        self.axes = axes
        self.sources = sources  # per axis, the spec path its values come from
        self.count = math.prod(len(axis) for axis in axes)
        self._make, self._make_indexed = _builders(keys, [axis.width for axis in axes])

    def combos(self) -> Iterator[tuple[Step, ...]]:
        """Every combination of steps, in job order (the last axis fastest)."""
        if not self.axes:
            return iter([()])
        if sum(len(axis) for axis in self.axes) <= EAGER_AXES:
            return itertools.product(*self.axes)
        return _walk(self.axes, 0, ())

    def dicts(self) -> Iterator[dict[str, str]]:
        """The parameters of every job of the group, in job order."""
        return map(self._make, self.combos())

    def indexed_dicts(self, start: int) -> Iterator[dict[str, str]]:
        """Like `dicts`, each also holding `index` (counting from `start`)."""
        return map(self._make_indexed, itertools.count(start), self.combos())

    def at(self, position: int) -> dict[str, str]:
        """The parameters of the job at `position` within the group."""
        steps: list[Step] = []
        for axis in reversed(self.axes):
            position, step = divmod(position, len(axis))
            steps.append(axis[step])
        return self._make(tuple(reversed(steps)))


def _builders(keys: tuple[str, ...], widths: list[int]) -> tuple[Any, Any]:
    """`make(combo)` and `make_indexed(index, combo)` building a job's dict."""
    fields: list[str] = []
    names = iter(keys)
    for a, width in enumerate(widths):
        if width == 1:
            fields.append(f"{next(names)!r}: c[{a}]")
        else:
            fields.extend(f"{next(names)!r}: c[{a}][{j}]" for j in range(width))
    body = ", ".join(fields)
    indexed = ", ".join([*fields, "'index': str(i)"])
    scope = {"str": str}
    return eval(f"lambda c: {{{body}}}", scope), eval(f"lambda i, c: {{{indexed}}}", scope)


def _walk(axes: tuple[Axis, ...], k: int, prefix: tuple[Step, ...]) -> Iterator[tuple[Step, ...]]:
    axis = axes[k]
    if k == len(axes) - 1:
        for step in axis:
            yield (*prefix, step)
    else:
        for step in axis:
            yield from _walk(axes, k + 1, (*prefix, step))


class ParamsFileError(ValueError):
    """A params file that cannot be read or does not make a table."""


def read_params_file(path: str) -> tuple[Values, list[Values]]:
    """Header and rows of a CSV (`.csv`, RFC 4180 quoting) or TSV (`.tsv`, `.txt`,
    anything else; values taken verbatim, quotes included) file."""
    try:
        text = read_limited(path, MAX_PARAMS_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        raise ParamsFileError(f"params file not found: {path}") from None
    except FileRefused as exc:
        raise ParamsFileError(f"params file {exc}: {path}") from None
    except UnicodeDecodeError as exc:
        raise ParamsFileError(f"params file is not UTF-8 text (byte {exc.start}): {path}") from None
    except OSError as exc:
        raise ParamsFileError(f"cannot read params file {path}: {exc.strerror}") from None
    if path.lower().endswith(".csv"):
        try:
            records = [row for row in csv.reader(io.StringIO(text)) if row]
        except csv.Error as exc:
            raise ParamsFileError(f"cannot parse params file {path}: {exc}") from None
    else:  # TSV has no quoting: every character between tabs is part of the value
        lines = text.replace("\r\n", "\n").split("\n")  # only a line break ends a row
        records = [line.split("\t") for line in lines if line]
    if not records:
        raise ParamsFileError(f"params file is empty (no header row): {path}")
    header = tuple(name.strip() for name in records[0])
    for name in header:
        if not PARAM_NAME.fullmatch(name):
            raise ParamsFileError(
                f"params file {path}: column {name!r} is not a valid parameter name"
                " (letters, digits and _, not starting with a digit)"
            )
    rows = [tuple(row) for row in records[1:]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ParamsFileError(
                f"params file {path}: row {number} has {len(row)} fields,"
                f" the header has {len(header)}"
            )
    return header, rows


def group_params(group: JobGroup, where: Loc) -> tuple[GroupParams, list[Issue], bool]:
    """The axes of `group`, the problems found building them, and whether every
    parameter name is known (False when the params file could not be read)."""
    issues: list[Issue] = []
    keys: list[str] = []
    axes: list[Axis] = []
    sources: list[Loc] = []
    seen: dict[str, str] = {}
    complete = True

    def add_key(name: str, source: str, loc: Loc) -> None:
        if name == "index":
            issues.append((loc, "'index' is reserved for the job's global index"))
        elif not PARAM_NAME.fullmatch(name):
            issues.append((loc, f"invalid parameter name {name!r}"
                                " (letters, digits and _, not starting with a digit)"))
        elif name in seen:
            issues.append((loc, f"parameter {name!r} is also defined in {seen[name]}"))
        seen.setdefault(name, source)
        keys.append(name)

    for name, axis in group.matrix.items():
        loc = (*where, "matrix", name)
        add_key(name, "matrix", (*loc, "[key]"))
        sources.append(loc)
        if isinstance(axis, list):
            axes.append(ValuesAxis(axis))
            if not axis:
                issues.append((loc, "no values: the group would have no jobs"))
        else:
            axes.append(RangeAxis(axis.values))
            if not axis.values:
                issues.append((loc, f"empty range {axis.range}: the group would have no jobs"))
    if group.zip:
        lengths = {name: len(values) for name, values in group.zip.items()}
        first, expected = next(iter(lengths.items()))
        for name in group.zip:
            add_key(name, "zip", (*where, "zip", name, "[key]"))
            if lengths[name] != expected:
                issues.append(((*where, "zip", name),
                               f"has {lengths[name]} values but {first!r} has {expected};"
                               " zipped lists must have the same length"))
        if expected == 0:
            issues.append(((*where, "zip"), "no values: the group would have no jobs"))
        width = len(group.zip)
        sources.append((*where, "zip"))
        if width == 1:
            axes.append(ValuesAxis(next(iter(group.zip.values()))))
        else:
            axes.append(ValuesAxis(list(zip(*group.zip.values(), strict=False)), width))
    if group.params_file is not None:
        loc = (*where, "params_file")
        try:
            header, rows = read_params_file(group.params_file)
        except ParamsFileError as exc:
            issues.append((loc, str(exc)))
            complete = False
        else:
            for name in header:
                add_key(name, "params_file", loc)
            if not rows:
                issues.append((loc, f"params file has no rows: {group.params_file}"))
            sources.append(loc)
            if len(header) == 1:
                axes.append(ValuesAxis([row[0] for row in rows]))
            else:
                axes.append(ValuesAxis(rows, len(header)))
    return GroupParams(tuple(keys), tuple(axes), tuple(sources)), issues, complete
