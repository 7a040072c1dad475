"""Reading spec files (TOML or YAML) into validated `Spec`s.

Every way a spec can be wrong ends as one `SpecError` whose `issues` are
`file:line:col: path: message` lines: an unreadable file, a syntax error, a
field pydantic rejects, or a whole-spec check. The file is named as the
user gave it.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import tomli
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from xqdecl.errors import SpecError
from xqdecl.spec.files import MAX_SPEC_BYTES, FileRefused, read_limited
from xqdecl.spec.issues import SpecIssues, format_issues, pydantic_issues
from xqdecl.spec.models import Spec
from xqdecl.spec.positions import (
    Positions,
    YamlShapeError,
    check_flow_depth,
    toml_positions,
    yaml_tree,
)
from xqdecl.spec.values import kind

Format = Literal["toml", "yaml"]
SUFFIXES: dict[str, Format] = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def load_spec(path: str | os.PathLike[str], *, host_checks: bool = True) -> Spec:
    """Read, parse and validate the spec file at `path` (raises SpecError).

    `host_checks=False` skips what only matters for running jobs on this host
    (a local `cwd` that must exist): for commands that read a run's state."""
    if not host_checks:
        from xqdecl.spec.guards import HOST_CHECKS

        token = HOST_CHECKS.set(False)
        try:
            return load_spec(path)
        finally:
            HOST_CHECKS.reset(token)
    source = os.fspath(path)
    text = read_text(source)
    base = Path(os.path.abspath(source)).parent
    stem = _UNSAFE_NAME.sub("-", Path(source).stem).strip("-") or "run"
    return loads_spec(text, SUFFIXES.get(Path(source).suffix.lower()), source, base, stem)


def loads_spec(text: str, fmt: Format | None, source: str = "<text>",
               base_dir: str | os.PathLike[str] = ".", default_name: str = "run") -> Spec:
    """Parse and validate spec text; `fmt=None` guesses TOML or YAML."""
    try:
        data, positions = parse_text(text, fmt, source)
        return _build(data, positions, Path(base_dir), source, default_name)
    except SpecError:
        raise
    except Exception as exc:  # never a traceback for a bad spec: say what happened
        raise SpecError(
            f"{source}: internal error while reading the spec: {type(exc).__name__}: {exc}"
        ) from exc


def spec_from_dict(data: dict[str, Any], base_dir: str | os.PathLike[str] = ".",
                   source: str = "<dict>") -> Spec:
    """Validate a spec given as plain data (errors carry paths, no lines)."""
    return _build(data, {}, Path(base_dir), source, "run")


def read_text(source: str) -> str:
    """The spec file's text, or a SpecError saying why it cannot be read."""
    try:
        raw = read_limited(source, MAX_SPEC_BYTES)
    except FileNotFoundError:
        raise SpecError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{source}: is a directory, not a spec file") from None
    except FileRefused as exc:
        if os.path.isdir(source):
            raise SpecError(f"{source}: is a directory, not a spec file") from None
        raise SpecError(f"{source}: cannot read the spec: it {exc}") from None
    except PermissionError:
        raise SpecError(f"{source}: cannot read the file (permission denied)") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(f"{source}: cannot read the file ({reason})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def parse_text(text: str, fmt: Format | None, source: str) -> tuple[Any, Positions]:
    """Plain data and value positions of spec text."""
    if fmt == "toml":
        return _parse_toml(text, source)
    if fmt == "yaml":
        return _parse_yaml(text, source)
    try:
        return _parse_toml(text, source)
    except SpecError as toml_error:
        try:
            data, positions = _parse_yaml(text, source)
        except SpecError:
            data = None
        if isinstance(data, dict):
            return data, positions
        raise SpecError(
            f"{source}: cannot tell whether this is TOML or YAML (name the file .toml, .yaml"
            f" or .yml); read as TOML: {toml_error.issues[0].removeprefix(source + ':')}"
        ) from None


def _parse_toml(text: str, source: str) -> tuple[Any, Positions]:
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        message = getattr(exc, "msg", str(exc))
        line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        where = f"{source}:{line}:{col}" if line else source
        raise SpecError(f"{where}: syntax error: {message}") from None
    except RecursionError:
        raise SpecError(f"{source}: syntax error: values nested too deeply") from None
    return data, toml_positions(text, data)


def _parse_yaml(text: str, source: str) -> tuple[Any, Positions]:
    yaml = YAML(typ="rt")
    try:
        check_flow_depth(text)
    except YamlShapeError as exc:
        raise SpecError(f"{source}: syntax error: {exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        message = " ".join(message.split())
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError(f"{where}: syntax error: {message}") from None
    except YAMLError as exc:
        raise SpecError(f"{source}: syntax error: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise SpecError(f"{source}: syntax error: values nested too deeply") from None
    except Exception as exc:  # ruamel can fail oddly on malformed scalars
        raise SpecError(f"{source}: syntax error: cannot parse YAML ({exc})") from None
    if document is None:
        raise SpecError(f"{source}: the spec is empty")
    try:
        return yaml_tree(document)
    except YamlShapeError as exc:
        raise SpecError(f"{source}: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: values nested too deeply") from None


def _build(data: Any, positions: Positions, base_dir: Path, source: str,
           default_name: str) -> Spec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the spec must be a table of keys, got {kind(data)}")
    context = {
        "base_dir": base_dir.absolute(),
        "source": source,
        "default_name": default_name,
    }
    try:
        return Spec.model_validate(data, context=context)
    except ValidationError as exc:
        issues = pydantic_issues(exc, data)
    except SpecIssues as exc:
        issues = exc.items
    raise SpecError(format_issues(source, issues, data, positions))
