"""Value types shared by the spec models: scalars, durations, names and paths.

Each type is an `Annotated` alias carrying its own validator and JSON Schema,
so the models stay declarative and `xqdecl schema` describes what a user may
write rather than what Python stores.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

#: Names of runs: also used in file names, so kept to a safe alphabet.
RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: Most jobs one run may have (each has a metadir and a journal row).
MAX_JOBS = 10_000_000
#: Largest integer a count or limit may be (fits every C int a backend passes it to).
MAX_INT = 2**31 - 1
#: Longest duration (a timeout longer than a year is no limit at all: leave it out).
MAX_DURATION = 365 * 86400.0
#: Range bounds are 64-bit integers.
RANGE_BOUND = 2**63
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CLOUD_SCHEMES = ("s3", "gs", "az")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)[dhms]")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def kind(value: object) -> str:
    """How a value reads in a spec file: 'a string', 'a table', ..."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dt.date | dt.time):
        return "a date/time"
    return f"a {type(value).__name__}"


def scalar_text(value: Any) -> str:
    """Text of a scalar spec value: strings as they are, numbers as written,
    booleans as `true`/`false`. Anything else is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise PydanticCustomError(
        "scalar_type",
        "expected a string, number or boolean, got {got}",
        {"got": kind(value)},
    )


Scalar = Annotated[
    str,
    BeforeValidator(scalar_text),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]


def parse_duration(value: Any) -> float | None:
    """Seconds from `90`, `2.5`, `"45"`, `"90s"`, `"10m"`, `"2h"`, `"1d"`, `"1h30m"`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PydanticCustomError(
            "duration_type",
            "expected a duration (seconds, or a string like '90s', '10m', '2h', '1h30m'),"
            " got {got}",
            {"got": kind(value)},
        )
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif text and "".join(_DURATION.findall(text)) == text:
            seconds = sum(float(part[:-1]) * _UNITS[part[-1]] for part in _DURATION.findall(text))
        else:
            raise PydanticCustomError(
                "duration_parsing",
                "invalid duration {value}: use seconds or a string like '90s', '10m',"
                " '2h', '1d', '1h30m'",
                {"value": repr(value)},
            )
    else:
        seconds = float(value)
    if not seconds > 0 or seconds == float("inf"):
        raise PydanticCustomError(
            "duration_range", "a duration must be positive and finite, got {value}",
            {"value": repr(value)},
        )
    if seconds > MAX_DURATION:
        raise PydanticCustomError(
            "duration_range", "a duration must be at most 365 days, got {value}",
            {"value": repr(value)},
        )
    return seconds


Duration = Annotated[
    float | None,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d*)?[dhms]?\s*)+$"},
            ],
            "description": "seconds, or a string like '90s', '10m', '2h', '1d', '1h30m'",
        }
    ),
]


#: Variables every job gets from xqdecl (the spec cannot set them).
XQDECL_VARIABLES = frozenset({
    "XQDECL_JOB_INDEX", "XQDECL_JOB_NAME", "XQDECL_RUN", "XQDECL_JOB_METADIR",
    "XQDECL_TRIAL", "XQDECL_JOB_RC",
})
#: Variables bash will not let a script set.
BASH_READONLY = frozenset({"BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID"})
#: Prefix of the wrapper script's own variables.
WRAPPER_PREFIX = "_xq_"


def _check_env_name(name: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise PydanticCustomError(
            "env_name", "invalid environment variable name {name}", {"name": repr(name)}
        )
    if name in XQDECL_VARIABLES:
        raise PydanticCustomError(
            "env_name", "{name} is set by xqdecl for every job; the spec cannot set it",
            {"name": name})
    if name in BASH_READONLY:
        raise PydanticCustomError(
            "env_name", "{name} is read-only in bash; a job cannot be given it", {"name": name})
    if name.startswith(WRAPPER_PREFIX):
        raise PydanticCustomError(
            "env_name", "names starting with {prefix} are kept for xqdecl's wrapper script",
            {"prefix": WRAPPER_PREFIX})
    return name


EnvName = Annotated[str, AfterValidator(_check_env_name)]
EnvMap = dict[EnvName, Scalar]

PositiveInt = Annotated[StrictInt, Field(ge=1, le=MAX_INT)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]


def check_run_name(name: str) -> str:
    """A run name is its run directory's name, right under the workdir: so never
    `.`, `..` or any name of only dots."""
    if not name.strip("."):
        raise PydanticCustomError(
            "run_name", "invalid run name {name}: a name of only dots would put the run"
            " directory outside the workdir", {"name": repr(name)},
        )
    return name


def no_nul(value: str) -> str:
    """`value`, or an error if it holds a NUL (no path, argument or variable can)."""
    if "\0" in value:
        raise PydanticCustomError("nul", "holds a NUL character, which no path or"
                                  " argument can hold")
    return value


RunName = Annotated[str, Field(pattern=RUN_NAME.pattern), AfterValidator(check_run_name)]
NoNulStr = Annotated[str, AfterValidator(no_nul)]
Flag = StrictBool


def base_dir(info: ValidationInfo) -> Path:
    """The folder relative paths resolve against (the spec file's folder)."""
    context = info.context or {}
    return Path(context.get("base_dir") or Path.cwd())


def join_path(base: Path, value: str) -> str:
    """`value` made absolute against `base` without touching the disk.

    Paths holding placeholders are joined but not normalised, since a `..`
    after a placeholder must keep its meaning once the value is filled in.
    """
    value = os.path.expanduser(no_nul(value))
    joined = os.path.join(os.fspath(base), value)
    if "{" in value:
        return joined
    return os.path.normpath(joined)


def check_workdir(value: str, base: Path) -> str:
    """A local workdir made absolute; cloud URLs (s3, gs, az) kept as written."""
    if not value.strip():
        raise PydanticCustomError("workdir_empty", "the workdir must not be empty")
    no_nul(value)
    url = _URL.match(value)
    if url:
        if url.group(1).lower() not in CLOUD_SCHEMES:
            raise PydanticCustomError(
                "workdir_scheme",
                "unsupported workdir scheme {scheme}: use a local path, s3://, gs:// or az://",
                {"scheme": repr(url.group(1))},
            )
        return value
    if "{" in value:
        raise PydanticCustomError("workdir_template", "the workdir cannot hold placeholders")
    path = join_path(base, value)
    if os.path.exists(path) and not os.path.isdir(path):
        raise PydanticCustomError("workdir_file", "the workdir {path} is not a directory",
                                  {"path": path})
    return path
