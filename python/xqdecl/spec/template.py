"""Placeholder templates: `{param}` fields, `{{`/`}}` literal braces.

A template is parsed once, when the spec is validated, into literal parts and
placeholder names; rendering calls a function generated from those parts.
Substituted values are inserted as they are and never parsed again, so a
value holding `{x}` stays literal.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Mapping
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

    __slots__ = ("_constant", "_parts", "_plain", "_quoted", "loc", "names", "text")

    def __init__(self, text: str, field_path: Loc | str = ()):
        self.text = text
        self.loc = _as_loc(field_path)
        parts: list[tuple[bool, str]] = []  # (is a placeholder, its name or literal text)
        names: list[str] = []
        literal: list[str] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            literal.append(text[pos : match.start()])
            pos = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
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
                parts.append((False, "".join(literal)))
                literal = []
                parts.append((True, name))
                if name not in names:
                    names.append(name)
        literal.append(text[pos:])
        parts.append((False, "".join(literal)))
        self._parts = tuple(part for part in parts if part[0] or part[1])
        self.names: tuple[str, ...] = tuple(names)
        self._constant: str | None = None if names else "".join(t for _, t in self._parts)
        self._plain = None if names else _constant_renderer(self._constant or "")
        self._quoted = self._plain

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

    def renderer(self, quote: bool = False) -> Callable[[Mapping[str, str]], str]:
        """`render` as one function of the params, for rendering many jobs.

        The function is generated once per template (an f-string of the
        literal parts and `params[name]` lookups), several times faster than
        `str.format_map`."""
        if quote:
            if self._quoted is None:
                self._quoted = _compile(self._parts, quote=True)
            return self._quoted
        if self._plain is None:
            self._plain = _compile(self._parts, quote=False)
        return self._plain

    def render(self, params: Mapping[str, str], quote: bool = False) -> str:
        """Substitute the placeholders with `params` (shell-quoted if `quote`)."""
        try:
            return self.renderer(quote)(params)
        except KeyError as exc:
            raise KeyError(f"no value for placeholder {{{exc.args[0]}}} in {self.text!r}") from None


def _constant_renderer(text: str) -> Callable[[Mapping[str, str]], str]:
    return lambda _params: text


def _compile(parts: tuple[tuple[bool, str], ...], quote: bool) -> Callable[..., str]:
    """A function `params -> text` made of adjacent f-string literals.

    Literal text is embedded through `repr` (with braces doubled), names as
    `repr`-quoted dict keys, so no spec text can become code."""
    pieces: list[str] = []
    for is_name, text in parts:
        if is_name:
            lookup = f"p[{text!r}]"
            pieces.append(f'f"{{q({lookup})}}"' if quote else f'f"{{{lookup}}}"')
        else:
            pieces.append("f" + repr(text).replace("{", "{{").replace("}", "}}"))
    source = "lambda p: " + (" ".join(pieces) or "''")
    function: Callable[..., str] = eval(source, {"q": shlex.quote})
    return function


def _near(text: str, at: int) -> str:
    """A short excerpt of `text` around offset `at`, for messages."""
    start, end = max(0, at - 12), min(len(text), at + 12)
    return repr(("..." if start else "") + text[start:end] + ("..." if end < len(text) else ""))
