"""The parameters of a job group: its axes and their product.

A group's parameters come from up to three sources, each made into axes:
every `matrix` key is one axis, the `zip` lists together are one axis, and
the rows of `params_file` are one axis. The group's jobs are the cartesian
product of its axes in that order, the last axis varying fastest. Axes are
sequences of value tuples; a range axis makes its values on demand, so a
large range costs no memory, and the product is walked lazily.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xqdecl.spec.template import PARAM_NAME, Loc

if TYPE_CHECKING:
    from xqdecl.spec.models import JobGroup

Issue = tuple[Loc, str]
Values = tuple[str, ...]


class ValuesAxis(Sequence[Values]):
    """An axis of explicit values (one tuple per step; wider for zip and rows)."""

    __slots__ = ("_items",)

    def __init__(self, items: Sequence[Values]):
        self._items = tuple(items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self._items[i]

    def __iter__(self) -> Iterator[Values]:
        return iter(self._items)


class RangeAxis(Sequence[Values]):
    """An axis over `range(start, stop, step)`; values made as they are read."""

    __slots__ = ("_range",)

    def __init__(self, values: range):
        self._range = values

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return (str(self._range[i]),)

    def __iter__(self) -> Iterator[Values]:
        return ((str(x),) for x in self._range)


@dataclass(frozen=True, slots=True)
class GroupParams:
    """The parameter names of a group (in axis order) and its axes."""

    keys: tuple[str, ...]
    axes: tuple[Sequence[Values], ...]

    @property
    def count(self) -> int:
        """Number of jobs: the product of the axis lengths (1 without axes)."""
        return math.prod(len(axis) for axis in self.axes)

    def combos(self) -> Iterator[Values]:
        """Every combination of values, in job order."""
        if not self.axes:
            return iter([()])
        return _walk(self.axes, 0, ())

    def at(self, position: int) -> Values:
        """The values of the job at `position` within the group."""
        parts: list[Values] = []
        for axis in reversed(self.axes):
            position, step = divmod(position, len(axis))
            parts.append(axis[step])
        return tuple(value for part in reversed(parts) for value in part)


def _walk(axes: tuple[Sequence[Values], ...], k: int, prefix: Values) -> Iterator[Values]:
    axis = axes[k]
    if k == len(axes) - 1:
        if prefix:
            for values in axis:
                yield prefix + values
        else:
            yield from axis
    else:
        for values in axis:
            yield from _walk(axes, k + 1, prefix + values)


class ParamsFileError(ValueError):
    """A params file that cannot be read or does not make a table."""


def read_params_file(path: str) -> tuple[Values, list[Values]]:
    """Header and rows of a CSV (`.csv`) or TSV (`.tsv`, `.txt`, else) file."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ParamsFileError(f"params file not found: {path}") from None
    except IsADirectoryError:
        raise ParamsFileError(f"params file is a directory: {path}") from None
    except UnicodeDecodeError as exc:
        raise ParamsFileError(f"params file is not UTF-8 text (byte {exc.start}): {path}") from None
    except OSError as exc:
        raise ParamsFileError(f"cannot read params file {path}: {exc.strerror}") from None
    delimiter = "," if path.lower().endswith(".csv") else "\t"
    try:
        records = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    except csv.Error as exc:
        raise ParamsFileError(f"cannot parse params file {path}: {exc}") from None
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


def group_params(group: JobGroup, where: Loc) -> tuple[GroupParams, list[Issue]]:
    """The axes of `group`, and the problems found building them."""
    issues: list[Issue] = []
    keys: list[str] = []
    axes: list[Sequence[Values]] = []
    seen: dict[str, str] = {}

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
        if isinstance(axis, list):
            axes.append(ValuesAxis([(value,) for value in axis]))
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
        axes.append(ValuesAxis(list(zip(*group.zip.values(), strict=False))))
    if group.params_file is not None:
        loc = (*where, "params_file")
        try:
            header, rows = read_params_file(group.params_file)
        except ParamsFileError as exc:
            issues.append((loc, str(exc)))
        else:
            for name in header:
                add_key(name, "params_file", loc)
            if not rows:
                issues.append((loc, f"params file has no rows: {group.params_file}"))
            axes.append(ValuesAxis(rows))
    return GroupParams(tuple(keys), tuple(axes)), issues
