"""Placeholder templates: `{param}` fields, `{{`/`}}` literal braces.

A template is parsed once, when the spec is validated, into a Python format
string whose fields are plain identifiers; rendering is then a single
`str.format_map` call. Substituted values are inserted as they are and never
parsed again, so a value holding `{x}` stays literal.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping
from difflib import get_close_matches

Loc = tuple[str | int, ...]

#: What a parameter (and so a placeholder) may be called.
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_LITERAL = "write '{{' or '}}' for a literal brace"
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\{|\}")


class TemplateError(ValueError):
    """A template that cannot be parsed, or that uses an unknown placeholder."""

    def __init__(self, message: str, loc: Loc = ()):
        super().__init__(message)
        self.message = message
        self.loc = loc


def _as_loc(field_path: Loc | str) -> Loc:
    if isinstance(field_path, tuple):
        return field_path
    if not field_path:
        return ()
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(field_path):
        parts.append(int(index) if index else name)
    return tuple(parts)


class Template:
    """A text with `{name}` placeholders.

    `Template(text, field_path)` parses `text` (raising `TemplateError` with
    `loc == field_path` on a malformed brace); `names` are the placeholders
    used; `render(params)` substitutes them.
    """

    __slots__ = ("_constant", "_format", "loc", "names", "text")

    def __init__(self, text: str, field_path: Loc | str = ()):
        self.text = text
        self.loc = _as_loc(field_path)
        pieces: list[str] = []
        names: list[str] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            pieces.append(_escape(text[pos : match.start()]))
            pos = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                pieces.append(token)
            elif token == "{":
                self._fail(f"unclosed '{{' in {_near(text, match.start())}; {_LITERAL}")
            elif token == "}":
                self._fail(f"single '}}' in {_near(text, match.start())}; {_LITERAL}")
            else:
                name = match.group(1)
                if not PARAM_NAME.fullmatch(name):
                    self._fail(
                        f"invalid placeholder {token!r}: a placeholder is a parameter name"
                        " in braces; write '{{' and '}}' for literal braces"
                    )
                pieces.append("{" + name + "}")
                if name not in names:
                    names.append(name)
        pieces.append(_escape(text[pos:]))
        self._format = "".join(pieces)
        self.names: tuple[str, ...] = tuple(names)
        self._constant: str | None = None if names else self._format.format()

    def _fail(self, message: str) -> None:
        raise TemplateError(message, self.loc)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def is_constant(self) -> bool:
        """True when the text has no placeholder."""
        return self._constant is not None

    def unknown(self, known: Collection[str]) -> list[str]:
        """The placeholders of this template that are not in `known`."""
        return [name for name in self.names if name not in known]

    def check(self, known: Collection[str], where: str = "") -> None:
        """Raise `TemplateError` if a placeholder is not in `known`."""
        missing = self.unknown(known)
        if not missing:
            return
        name = missing[0]
        message = f"unknown placeholder {{{name}}}"
        hint = get_close_matches(name, list(known), n=1)
        if hint:
            message += f" (did you mean {{{hint[0]}}}?)"
        message += "; known: " + ", ".join(sorted(known))
        if where:
            message += f" ({where})"
        if "${" + name + "}" in self.text:
            message += "; for a shell variable write ${{" + name + "}}"
        raise TemplateError(message, self.loc)

    def render(self, params: Mapping[str, str], quote: bool = False) -> str:
        """Substitute the placeholders with `params` (shell-quoted if `quote`)."""
        if self._constant is not None:
            return self._constant
        try:
            if quote:
                return self._format.format_map({n: shlex.quote(params[n]) for n in self.names})
            return self._format.format_map(params)
        except KeyError as exc:
            raise KeyError(f"no value for placeholder {{{exc.args[0]}}} in {self.text!r}") from None


def _near(text: str, at: int) -> str:
    """A short excerpt of `text` around offset `at`, for messages."""
    start, end = max(0, at - 12), min(len(text), at + 12)
    return repr(("..." if start else "") + text[start:end] + ("..." if end < len(text) else ""))


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")
