"""Spec problems as the user reads them: `file:line:col: path: message`.

An issue is a path (pydantic's location, e.g. `("jobs", 1, "matrix", "sample")`)
and a message. Pydantic's locations also hold union tags (`"slurm"`,
`"argv"`) and a `"[key]"` marker for dict keys; `clean_loc` drops them by
walking the raw data. `describe` turns pydantic's error types into plain
sentences, and `format_issues` adds the file position from `Positions`,
falling back to the nearest parent that has one.
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel, ValidationError

from xqdecl.errors import SpecError
from xqdecl.spec.positions import Point, Positions
from xqdecl.spec.schedulers import SCHEDULER_MODELS
from xqdecl.spec.template import Loc
from xqdecl.spec.values import kind

Issue = tuple[Loc, str]
KEY = "[key]"
_MISSING = object()
_SIMPLE = re.compile(r"[A-Za-z0-9_-]+")
_TAGS = {"list", "range", "string", "argv", *SCHEDULER_MODELS}


class SpecIssues(SpecError):
    """Problems found after field validation, with their paths (`items`)."""

    def __init__(self, items: list[Issue], source: str = "<dict>"):
        self.items = items
        super().__init__(format_issues(source, items, None, {}))


def format_path(loc: Loc) -> str:
    """`("jobs", 1, "env", "A.B")` -> `jobs[1].env."A.B"`."""
    out = ""
    for part in loc:
        if part == KEY:
            continue
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = part if isinstance(part, str) and _SIMPLE.fullmatch(part) else _quote(part)
            out += f".{text}" if out else text
    return out


def _quote(part: object) -> str:
    text = str(part)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def clean_loc(loc: Loc, data: Any) -> tuple[Loc, bool]:
    """`loc` without pydantic's union tags; and whether it names a key."""
    out: list[str | int] = []
    current: Any = data
    is_key = False
    for part in loc:
        if part == KEY:
            is_key = True
            continue
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
        elif isinstance(part, str) and (part in _TAGS or not isinstance(current, dict)):
            continue
        else:
            current = _MISSING
        out.append(part)
    return tuple(out), is_key


def value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _model_at(loc: Loc, data: Any) -> type[BaseModel] | None:
    """The model whose keys are valid at `loc` (for 'did you mean')."""
    from xqdecl.spec.models import JobGroup, RangeSpec, Spec
    from xqdecl.spec.schedulers import SshServer

    run_type = value_at(data, ("scheduler", "type"))
    if run_type is _MISSING:
        run_type = "local"
    scheduler = SCHEDULER_MODELS.get(run_type) if isinstance(run_type, str) else None
    shape = tuple("#" if isinstance(part, int) else part for part in loc)
    if len(shape) == 4 and shape[:3] == ("jobs", "#", "matrix"):
        return RangeSpec
    shapes: dict[tuple[Any, ...], type[BaseModel] | None] = {
        (): Spec,
        ("jobs", "#"): JobGroup,
        ("scheduler",): scheduler,
        ("jobs", "#", "scheduler"): scheduler,
        ("scheduler", "servers", "#"): SshServer,
        ("jobs", "#", "scheduler", "servers", "#"): SshServer,
    }
    return shapes.get(shape)


def _unknown_key(loc: Loc, data: Any) -> str:
    key = loc[-1] if loc else "?"
    model = _model_at(loc[:-1], data)
    in_scheduler = "scheduler" in loc[:-1]
    valid = sorted(n for n in model.model_fields if n != "type") if model else []
    if in_scheduler and model is not None:
        scheduler_type = model.model_fields["type"].default
        text = f"unknown option {key!r} for scheduler type {scheduler_type!r}"
    else:
        text = f"unknown key {key!r}"
    hint = get_close_matches(str(key), valid, n=1)
    if hint:
        text += f" (did you mean {hint[0]!r}?)"
    elif valid and in_scheduler:
        text += "; valid options: " + ", ".join(valid)
    return text


_EXPECT = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
    "int_from_float": "an integer", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
    "cmd_type": "a command string or a list of arguments",
}


def describe(error: Any, loc: Loc, data: Any) -> str:
    """A plain sentence for one pydantic error."""
    kind_ = error["type"]
    got = kind(error.get("input"))
    ctx = error.get("ctx") or {}
    if kind_ == "missing":
        if loc == ("jobs",):
            return "required: add at least one job group ([[jobs]])"
        if loc[-2:-1] == ("scheduler",):
            return "required option is missing"
        return "required field is missing"
    if kind_ == "extra_forbidden":
        return _unknown_key(loc, data)
    if kind_ == "list_type" and loc == ("jobs",):
        return f"expected a list of job groups ([[jobs]] tables), got {got}"
    if kind_ == "axis_type":
        return f"expected a list of values, got {got} (or write {{range = [start, stop]}})"
    if kind_ in _EXPECT:
        return f"expected {_EXPECT[kind_]}, got {got}"
    if kind_ == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {error.get('input')!r}"
    if kind_ == "union_tag_invalid":
        return (f"unknown scheduler type {ctx.get('tag')!r}; valid types: "
                + ", ".join(SCHEDULER_MODELS))
    if kind_ == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {error.get('input')!r}"
    if kind_ == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {error.get('input')!r}"
    if kind_ == "too_short":
        if loc == ("jobs",):
            return "at least one job group is needed"
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind_ == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind_ == "string_too_short":
        return "must not be empty"
    if kind_ in ("string_pattern_mismatch", "run_name") and loc == ("name",):
        if value_at(data, loc) is _MISSING:
            return (f"the run name defaults to the spec file's stem {error.get('input')!r},"
                    " which is not a valid run name: set name = \"...\" in the spec"
                    " (letters, digits, '_', '.' and '-', not only dots)")
        if kind_ == "run_name":
            return str(error["msg"])
        return (f"invalid run name {error.get('input')!r}: use letters, digits,"
                " '_', '.' and '-'")
    if kind_ == "value_error":
        return str(ctx.get("error", error["msg"]))
    message = str(error["msg"])
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def pydantic_issues(exc: ValidationError, data: Any, prefix: Loc = ()) -> list[Issue]:
    """One issue per pydantic error, with clean paths and plain messages."""
    issues: list[Issue] = []
    for error in exc.errors(include_url=False):
        raw = (*prefix, *error["loc"])
        if error["type"] == "union_tag_invalid":
            raw = (*raw, "type")
        loc, is_key = clean_loc(raw, data)
        message = describe(error, loc, data)
        is_key = is_key or error["type"] == "extra_forbidden"
        issues.append(((*loc, KEY) if is_key else loc, message))
    return issues


def position(loc: Loc, data: Any, positions: Positions) -> Point | None:
    """Where to point for `loc`: its value (or key), else its nearest parent's key."""
    want_key = bool(loc) and loc[-1] == KEY
    if want_key:
        loc = loc[:-1]
    entry = positions.get(loc)
    if entry is not None:
        if want_key or isinstance(value_at(data, loc), dict):
            return entry.key or entry.value
        return entry.value or entry.key
    while loc:
        loc = loc[:-1]
        entry = positions.get(loc)
        if entry is not None:
            return entry.key or entry.value
    return None


def format_issues(source: str, issues: list[Issue], data: Any, positions: Positions) -> list[str]:
    """`file:line:col: path: message` lines, sorted by position, duplicates dropped."""
    rows: list[tuple[tuple[int, int], str]] = []
    seen: set[str] = set()
    for loc, message in issues:
        point = position(loc, data, positions)
        path = format_path(loc)
        where = f"{source}:{point[0]}:{point[1]}" if point else source
        line = f"{where}: {path}: {message}" if path else f"{where}: {message}"
        if line not in seen:
            seen.add(line)
            rows.append((point or (1 << 30, 0), line))
    rows.sort(key=lambda row: row[0])
    return [line for _, line in rows]
