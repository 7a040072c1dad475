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


def _check_env_name(name: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise PydanticCustomError(
            "env_name", "invalid environment variable name {name}", {"name": repr(name)}
        )
    return name


EnvName = Annotated[str, AfterValidator(_check_env_name)]
EnvMap = dict[EnvName, Scalar]

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
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
    value = os.path.expanduser(value)
    joined = os.path.join(os.fspath(base), value)
    if "{" in value:
        return joined
    return os.path.normpath(joined)


def check_workdir(value: str, base: Path) -> str:
    """A local workdir made absolute; cloud URLs (s3, gs, az) kept as written."""
    if not value.strip():
        raise PydanticCustomError("workdir_empty", "the workdir must not be empty")
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
    return join_path(base, value)
